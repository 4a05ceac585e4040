import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { DuckDBInstance } from '@duckdb/node-api';
import preference from '../../pipelines/preference.ts';
import { runPipeline } from '../../src/pipeline/run-pipeline.ts';
import type { Manifest } from '../../schemas/manifest.ts';
import type { FactflowError } from '../../src/errors.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PREF = path.join(ROOT, 'test', 'fixtures', 'llava', 'llava_preference_sample.json');

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-preference-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test('preference JSON -> Parquet with COCO-caption facts; a bad preference and a broken image go to the dead letters', async (t) => {
  const coco = path.join(tmp, 'captions_train2014.json');
  await writeFile(coco, JSON.stringify({
    images: [{ id: 33471, file_name: 'COCO_train2014_000000033471.jpg', width: 64, height: 48 }],
    annotations: [{ image_id: 33471, id: 1, caption: 'A white and red bus.' }],
  }));
  const items = JSON.parse(await readFile(PREF, 'utf8')) as Record<string, unknown>[];
  items.push({ ...items[0], id: 'bad-pref', preference: 3 });
  items.push({ ...items[0], id: 'no-image', image: '000000000099.jpg' });
  const file = path.join(tmp, 'pref.json');
  await writeFile(file, JSON.stringify(items));
  const images = path.join(tmp, 'images');
  await mkdir(path.join(images, 'coco', 'train2017'), { recursive: true });
  await sharp({ create: { width: 64, height: 48, channels: 3, background: '#c00' } }).jpeg().toFile(path.join(images, 'coco', 'train2017', '000000033471.jpg'));

  const out = path.join(tmp, 'out');
  const summary = await runPipeline(preference, { out, params: { preference: file, coco, images }, cwd: ROOT });
  const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as Manifest;
  t.is(manifest.schema, 'preference');
  t.is(manifest.total_rows, 2);
  const flow = summary.flows[0]!;
  t.deepEqual(flow.stages.map((s) => [s.name, s.in, s.out, s.rejected]), [
    ['preference-json', 4, 3, 1],
    ['image-check', 3, 2, 1],
    ['to-preference', 2, 2, 0],
    ['shards', 2, 2, 0],
  ]);
  const dead = (await readFile(path.join(out, 'rejected.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { stage: string; reason: string; file: string; index: number });
  t.is(dead[0]!.stage, 'preference-json');
  t.regex(dead[0]!.reason, /item bad-pref: "preference" must be 1 or 2/);
  t.deepEqual([dead[0]!.file, dead[0]!.index], [file, 2]);
  t.is(dead[1]!.stage, 'image-check');
  t.regex(dead[1]!.reason, /image coco\/train2017\/000000000099\.jpg does not exist/);

  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const rows = (await conn.runAndReadAll(`SELECT id, preference, hallucination, facts, conversations FROM read_parquet('${path.join(out, '*.parquet')}') ORDER BY id`)).getRowObjectsJson();
  const types = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${path.join(out, '*.parquet')}')`)).getRowObjectsJson();
  conn.closeSync();
  db.closeSync();
  t.deepEqual(rows.map((r) => [r.id, r.preference, r.hallucination, r.facts]), [
    ['hand-pref-1', 1, false, ['A white and red bus.']],
    ['preference-1', 2, true, ['A white and red bus.']],
  ]);
  t.deepEqual(Object.fromEntries(types.map((r) => [r.column_name, r.column_type])), {
    id: 'VARCHAR', image: 'VARCHAR', conversations: 'STRUCT("from" VARCHAR, "value" VARCHAR)[]', output_1: 'VARCHAR', output_2: 'VARCHAR',
    preference: 'TINYINT', hallucination: 'BOOLEAN', facts: 'VARCHAR[]',
  });
});

test('image_check without an image root is a clear parameter error', async (t) => {
  const err = await runPipeline(preference, { out: path.join(tmp, 'bad'), params: { preference: PREF, coco: 'none', image_check: 'reject' }, cwd: ROOT }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(err?.code, 'FF_ERR_INVALID_OPTION');
  t.regex(err!.message, /params\.image_check/);
});
