import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sftMix from '../../pipelines/sft-mix.ts';
import rlPrompts from '../../pipelines/rl-prompts.ts';
import shapesWorld from '../../pipelines/shapes-world.ts';
import { runPipeline } from '../../src/pipeline/run-pipeline.ts';
import type { Manifest } from '../../schemas/manifest.ts';
import { conversationSchema, type Conversation } from '../../schemas/conversation.ts';
import { spottingBoxes } from '../../transforms/flickr30k-spotting.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let tmp: string;
let world: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-sft-full-'));
  // made once here; the pipelines' ensure() reuses it (same params and seed)
  world = path.join(tmp, 'world');
  await runPipeline(shapesWorld, { out: world, cwd: ROOT });
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function readJsonl<T>(dir: string): Promise<T[]> {
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const text = (await Promise.all(manifest.shards.map((s) => readFile(path.join(dir, s.path), 'utf8')))).join('');
  return text.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as T);
}

test('full LLaVA-SFT+ mix on the shapes world; the LLaVA holdout is exactly what rl-prompts takes', async (t) => {
  const out = path.join(tmp, 'sft');
  const summary = await runPipeline(sftMix, { out, params: { world, images: path.join(world, 'images'), format: 'jsonl' }, cwd: ROOT });
  const flow = summary.flows[0]!;
  for (const s of flow.stages) t.is(s.in, s.out + s.rejected, s.name);
  const result = summary.result as { per_source: Record<string, { read: number; out: number; rejected: number; taken: number }>; written: number };
  t.deepEqual(Object.keys(result.per_source).sort(), ['aokvqa', 'flickr30k', 'llava', 'vqav2']);
  const records = await readJsonl<Conversation>(out);
  t.is(records.length, result.written);
  t.is(Object.values(result.per_source).reduce((a, s) => a + s.taken, 0), flow.stages[0]!.out);
  const bySource = new Map<string, number>();
  for (const r of records) {
    bySource.set(r.source, (bySource.get(r.source) ?? 0) + 1);
    t.is(conversationSchema.validate(r), null, r.id);
    t.false(r.image!.split('/').includes('..'));
  }
  t.deepEqual([...bySource.keys()].sort(), ['aokvqa', 'flickr30k', 'llava', 'vqav2']);
  // every box in every spotting caption: four numbers in [0,1], x0 <= x1, y0 <= y1
  let boxes = 0;
  for (const r of records.filter((x) => x.source === 'flickr30k')) {
    for (const b of spottingBoxes(r.conversations[1]!.value)) {
      boxes++;
      t.is(b.length, 4);
      t.true(b.every((v) => v >= 0 && v <= 1) && b[0]! <= b[2]! && b[1]! <= b[3]!, JSON.stringify(b));
    }
  }
  t.true(boxes > 0);
  // A-OKVQA reasoning answers end with the option the RL bonus checks for
  t.true(records.filter((x) => x.source === 'aokvqa').every((r) => /So the correct option is [A-D]\.$/.test(r.conversations[1]!.value)));

  // the held-out LLaVA conversations are exactly the ones rl-prompts uses
  const rl = path.join(tmp, 'rl');
  await runPipeline(rlPrompts, { out: rl, params: { world, aokvqa: 'none', vqav2: 'none', format: 'jsonl' }, cwd: ROOT });
  const prompts = await readJsonl<{ id: string }>(rl);
  const sftIds = new Set(records.filter((r) => r.source === 'llava').map((r) => r.id));
  t.true(prompts.length > 0);
  t.true(prompts.every((p) => !sftIds.has(p.id)));
  t.is(prompts.length + sftIds.size, result.per_source['llava']!.read);
});

test('a token limit drops long conversations into the dead letters', async (t) => {
  const out = path.join(tmp, 'short');
  const summary = await runPipeline(sftMix, { out, params: { world, max_tokens: 40, vqav2: 'none', flickr30k: 'none', aokvqa: 'none' }, cwd: ROOT });
  const tl = summary.flows[0]!.stages.find((s) => s.name === 'token-length')!;
  t.true(tl.rejected > 0);
  const dead = (await readFile(path.join(out, 'rejected.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { stage: string; reason: string });
  t.true(dead.every((d) => d.stage === 'token-length' && /tokens \(word-estimate\) is over the limit of 40/.test(d.reason)));
});
