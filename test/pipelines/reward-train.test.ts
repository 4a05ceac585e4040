import test from 'ava';
import { loadRewardModel } from '../../src/model/reward-model.ts';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import rewardTrain from '../../pipelines/reward-train.ts';
import { runPipeline } from '../../src/pipeline/run-pipeline.ts';
import { runFlow } from '../../src/stream/flow.ts';
import { withOrigin } from '../../src/stream/origin.ts';
import { Rng } from '../../src/stream/random.ts';
import { generateShapesWorld } from '../../sources/shapes-world.ts';
import { shardSink } from '../../sinks/shard-sink.ts';
import { preferenceSchema, type Preference } from '../../schemas/preference.ts';
import type { GroundTruth } from '../../schemas/shapes-world.ts';
import { buildTokenizer, tokenizerConfigFor } from '../../src/model/build-tokenizer.ts';
import { VICUNA_SYSTEM_PROMPT } from '../../src/model/chat-template.ts';
import { saveCheckpoint } from '../../src/model/checkpoint.ts';
import { TINY_MODEL_CONFIG, resolveModelConfig } from '../../src/model/config.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { REWARD_PROMPT_CORPUS } from '../../src/model/reward-prompt.ts';
import { tokenizerFromJson } from '../../src/model/tokenizer.ts';

tf.env().set('PROD', true);

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
let tmp: string;
let world: string;
let preferences: string;
let sft: string;

test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-reward-train-'));
  world = path.join(tmp, 'world');
  await generateShapesWorld({ out: world, seed: 2, images: 16, flickrImages: 0, evalImages: 1, mmhalPerType: 0, preferencePerImage: 0 });
  const images = (await readFile(path.join(world, 'ground_truth.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as GroundTruth).filter((g) => g.split !== 'eval').map((g) => g.image);
  const rng = new Rng(4);
  const records: Preference[] = Array.from({ length: 40 }, (_, i) => {
    const first = rng.next() < 0.5;
    const good = 'There is a red circle.';
    const bad = 'There is a blue star.';
    return {
      id: `p${i}`, image: images[i % images.length]!, conversations: [{ from: 'human', value: '<image>\nDescribe the image.' }],
      output_1: first ? good : bad, output_2: first ? bad : good, preference: first ? 1 : 2, hallucination: i % 2 === 0, facts: ['A red circle.'],
    };
  });
  preferences = path.join(tmp, 'preferences');
  await runFlow({
    source: { name: 'records', async *read() { let i = 0; for (const r of records) yield withOrigin(r, { file: 'mem', line: i + 1, index: i++ }); } },
    sink: shardSink({ dir: preferences, schema: preferenceSchema, format: 'jsonl' }),
  }, { seed: 1, deadLetterPath: path.join(tmp, 'pref-rejected.jsonl') });
  const tok = tokenizerFromJson(buildTokenizer([VICUNA_SYSTEM_PROMPT, 'USER: ASSISTANT:', ...REWARD_PROMPT_CORPUS, ...REWARD_PROMPT_CORPUS, 'Describe the image. There is a red circle. There is a blue star.'], { vocabSize: 300 }), tokenizerConfigFor());
  const policy = createModel(resolveModelConfig({ language: { vocabSize: tok.vocabSize, contextLength: 96 }, heads: ['lm'] }, TINY_MODEL_CONFIG), { seed: 1 });
  sft = path.join(tmp, 'sft');
  await saveCheckpoint(path.join(sft, 'checkpoint'), { model: policy, tokenizer: tok });
  policy.dispose();
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test.serial('facts=true and facts=false runs: summary has facts and held-out accuracy overall and on hallucination pairs', async (t) => {
  const params = { sft, preferences, world, steps: 8, batch_size: 4, eval_every: 4, heldout_fraction: 0.3, context: 160, lr: 5e-3, warmup: 1 };
  for (const facts of [true, false]) {
    const out = path.join(tmp, `rm-${facts}`);
    const summary = await runPipeline(rewardTrain, { out, params: { ...params, facts }, seed: 3, backend: 'wasm', cwd: ROOT });
    const result = summary.result as { facts: boolean; facts_at: string; pooling: string; likelihood: boolean; fact_match: boolean; heldout: { accuracy: number; hallucination_pair_accuracy: number | null; pairs: number }; validation: { pairs: number; accuracy: number } | null; data: { heldout_pairs: number; validation_pairs: number; heldout_images: number; validation_images: number }; checkpoint: string; steps: number };
    t.is(result.facts, facts);
    t.is(result.facts_at, 'start');
    t.is(result.pooling, 'response-sum');
    t.true(result.likelihood);
    t.is(result.fact_match, facts, 'caption matches are on wherever there are captions');
    t.is(result.steps, 8);
    t.true(result.heldout.pairs > 0);
    t.true(result.heldout.accuracy >= 0 && result.heldout.accuracy <= 1);
    t.is(typeof result.heldout.hallucination_pair_accuracy, 'number');
    // half the held-out images choose the checkpoint, the other half are reported
    t.true(result.validation !== null && result.validation.pairs > 0, JSON.stringify(result.data));
    t.is(result.data.validation_pairs, result.validation!.pairs);
    t.is(result.data.heldout_pairs, result.heldout.pairs);
    t.true(Math.abs(result.data.validation_images - result.data.heldout_images) <= 1, JSON.stringify(result.data));
    const written = JSON.parse(await readFile(path.join(out, 'summary.json'), 'utf8')) as { result: typeof result };
    t.deepEqual(written.result.heldout, result.heldout);
    const cfg = JSON.parse(await readFile(path.join(out, result.checkpoint, 'config.json'), 'utf8')) as { heads: string[]; language: { contextLength: number }; rewardPooling?: string; rewardLikelihood?: boolean; rewardFactMatch?: boolean };
    t.deepEqual(cfg.heads, ['reward', 'lm'], 'the likelihood head keeps the LM head');
    t.is(cfg.rewardPooling, 'response-sum');
    t.true(cfg.rewardLikelihood);
    t.is(cfg.rewardFactMatch ?? false, facts);
    const state = JSON.parse(await readFile(path.join(out, result.checkpoint, 'trainer_state.json'), 'utf8')) as { facts: boolean; facts_at: string };
    t.is(state.facts_at, 'start');
    // the held-out score statistics PPO standardises with: recorded with the kept checkpoint
    const h = written.result.heldout as unknown as { score_mean: number; score_std: number };
    t.true(Number.isFinite(h.score_mean) && h.score_std > 0, JSON.stringify(h));
    const loaded = await loadRewardModel(path.join(out, result.checkpoint));
    t.deepEqual(loaded.scoreStats, { mean: h.score_mean, std: h.score_std });
    loaded.model.dispose();
    t.is(cfg.language.contextLength, 160);
    t.true((await stat(path.join(out, 'metrics.jsonl'))).size > 0);
  }
});

test('a missing SFT run is a CheckpointError naming its folder', async (t) => {
  const missing = path.join(tmp, 'no-sft');
  const err = await t.throwsAsync(runPipeline(rewardTrain, { out: path.join(tmp, 'rm-missing'), params: { sft: missing, preferences, world, steps: 1 }, backend: 'wasm', cwd: ROOT }));
  t.is((err as { code?: string }).code, 'FF_ERR_CHECKPOINT');
  t.true(err!.message.includes(missing), err!.message);
});
