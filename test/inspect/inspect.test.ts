import test from 'ava';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { IntCounter } from '../../src/inspect/histogram.ts';
import { headRecords } from '../../src/inspect/head-records.ts';
import { inspectShards } from '../../src/inspect/inspect-shards.ts';
import { inspectSchema } from '../../src/inspect/inspect-schema.ts';
import { validateShards } from '../../src/inspect/validate-shards.ts';
import { renderBoxes } from '../../src/inspect/render-boxes.ts';
import { tempDir } from '../helpers/temp-dir.ts';

function conversation(i: number, rounds: number, source: string) {
  const turns = [];
  for (let r = 0; r < rounds; r++) {
    turns.push({ from: 'human', value: `${r === 0 ? '<image>\n' : ''}Question ${r} about image ${i}?` });
    turns.push({ from: 'gpt', value: r % 2 ? 'No' : 'Yes' });
  }
  return { id: `c${i}`, image: `img/${i}.png`, conversations: turns, source, meta: '' };
}

async function jsonl(dir: string, name: string, lines: unknown[]): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return file;
}

test('IntCounter bins exactly for small ranges and by powers of two otherwise', (t) => {
  const c = new IntCounter();
  for (const v of [2, 2, 4, 6]) c.add(v);
  const h = c.histogram(16)!;
  t.deepEqual(h.bins.map((b) => [b.label, b.count]), [['2', 2], ['3', 0], ['4', 1], ['5', 0], ['6', 1]]);
  t.is(h.mean, 3.5);
  const d = new IntCounter();
  for (const v of [0, 1, 3, 100]) d.add(v);
  t.deepEqual(d.histogram(4)!.bins.map((b) => [b.label, b.count]), [['0', 1], ['1', 1], ['2-3', 1], ['4-7', 0], ['8-15', 0], ['16-31', 0], ['32-63', 0], ['64-127', 1]]);
  t.is(new IntCounter().histogram(), null);
});

test('inspectShards on a JSONL file: rows, per-source counts and turn histograms', async (t) => {
  const dir = await tempDir(t, 'ff-inspect-');
  const file = await jsonl(dir, 'c.jsonl', [conversation(0, 1, 'vqav2'), conversation(1, 2, 'vqav2'), conversation(2, 2, 'aokvqa')]);
  const r = await inspectShards(file);
  t.is(r.kind, 'file');
  t.is(r.total_rows, 3);
  t.deepEqual(r.schema, { name: 'conversation', version: 1, from: 'guess' });
  t.deepEqual(r.sources, [{ source: 'vqav2', rows: 2 }, { source: 'aokvqa', rows: 1 }]);
  t.deepEqual(r.turns_per_conversation!.bins.map((b) => [b.label, b.count]), [['2', 1], ['3', 0], ['4', 2]]);
  t.is(r.chars_per_turn!.count, 10);
  t.is(r.rejected, null);
});

test('validateShards lists failures with file and row; unreadable lines count too', async (t) => {
  const dir = await tempDir(t, 'ff-inspect-');
  const bad = { ...conversation(1, 1, 'vqav2'), conversations: [{ from: 'gpt', value: 'starts with gpt' }] };
  const file = await jsonl(dir, 'v.jsonl', [conversation(0, 1, 'vqav2'), bad, '{not json', conversation(3, 1, '')]);
  const r = await validateShards(file, { schema: 'conversation' });
  t.is(r.rows, 4);
  t.is(r.invalid, 3);
  t.deepEqual(r.failures.map((f) => [path.basename(f.file), f.row]), [['v.jsonl', 1], ['v.jsonl', 2], ['v.jsonl', 3]]);
  t.regex(r.failures[1]!.reason, /not valid JSON/);
  t.regex(r.failures[2]!.reason, /source/);
  const few = await validateShards(file, { schema: 'conversation', maxFailures: 1 });
  t.is(few.failures.length, 1);
  t.is(few.invalid, 3);
  const e = await t.throwsAsync(validateShards(file, { schema: 'nope' }));
  t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e!.message, /option "--schema": unknown schema "nope"; known: conversation/);
});

test('a file whose schema cannot be told needs --schema', async (t) => {
  const dir = await tempDir(t, 'ff-inspect-');
  const file = await jsonl(dir, 'x.jsonl', [{ a: 1 }]);
  const e = await t.throwsAsync(validateShards(file));
  t.is((e as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(e!.message, /x\.jsonl: cannot tell which schema these records have Fix: pass --schema NAME/);
  const s = await inspectSchema(file);
  t.is(s.schema, null);
  t.deepEqual(s.columns, ['a']);
});

test('headRecords: first n, or the n highest and lowest by reward', async (t) => {
  const dir = await tempDir(t, 'ff-inspect-');
  const rollouts = [0.5, -2, 3, 1, -1].map((r, i) => ({ id: `r${i}`, response: `answer ${i}`, reward_model: r - 0.1, reward_total: r }));
  const file = await jsonl(dir, 'r.jsonl', rollouts);
  const first = await headRecords(file, { n: 2 });
  t.deepEqual(first.records!.map((x) => [(x.record as { id: string }).id, x.row]), [['r0', 0], ['r1', 1]]);
  const sorted = await headRecords(file, { n: 2, sort: 'reward' });
  t.deepEqual(sorted.highest!.map((x) => (x.record as { id: string }).id), ['r2', 'r3']);
  t.deepEqual(sorted.lowest!.map((x) => (x.record as { id: string }).id), ['r1', 'r4']);
  const bad = await t.throwsAsync(headRecords(file, { sort: 'score' }));
  t.regex(bad!.message, /option "--sort": no record has a numeric "score" field/);
  await t.throwsAsync(headRecords(file, { n: 0 }), { message: /option "-n"/ });
});

test('renderBoxes draws labelled boxes on upscaled images', async (t) => {
  const dir = await tempDir(t, 'ff-inspect-');
  await sharp({ create: { width: 64, height: 64, channels: 3, background: '#ffffff' } }).png().toFile(path.join(dir, 'white.png'));
  const record = {
    id: 'f1',
    image: 'white.png',
    conversations: [
      { from: 'human', value: '<image>\nDescribe the image with boxes.' },
      { from: 'gpt', value: 'A red square [0.250,0.250,0.750,0.750] sits next to two men [0.1,0.1,0.2,0.2;0.8,0.8,0.9,0.9].' },
    ],
    source: 'flickr30k',
    meta: '',
  };
  const file = await jsonl(dir, 'f.jsonl', [{ ...record, image: null, id: 'no-image' }, record]);
  const out = path.join(dir, 'png');
  const written = await renderBoxes(file, { n: 5, images: dir, to: out });
  t.is(written.length, 1);
  t.is(written[0]!.id, 'f1');
  t.deepEqual(written[0]!.phrases.map((p) => [p.label, p.boxes.length]), [['A red square', 1], ['sits next to two men', 2]]);
  const { data, info } = await sharp(written[0]!.file).raw().toBuffer({ resolveWithObject: true });
  t.is(info.width, 768);
  t.is(info.height, 768);
  const px = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
  t.deepEqual(px(192, 384), [0xe6, 0x19, 0x4b], 'the first box\'s left edge is drawn in its colour');
  t.deepEqual(px(384, 384), [255, 255, 255], 'the inside stays as it was');
  const e = await t.throwsAsync(renderBoxes(file, { images: path.join(dir, 'nowhere'), to: out }));
  t.is((e as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(e!.message, /nowhere\/white\.png: cannot read the image of record "f1"/);
});
