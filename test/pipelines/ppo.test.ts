import test from 'ava';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import ppo from '../../pipelines/ppo.ts';
import type { Manifest } from '../../schemas/manifest.ts';
import { rlPromptSchema, type RlPrompt } from '../../schemas/rl-prompt.ts';
import { rolloutSchema, type Rollout } from '../../schemas/rollout.ts';
import { shardSink } from '../../sinks/shard-sink.ts';
import { shardSource } from '../../sources/shards.ts';
import { FactflowError } from '../../src/errors.ts';
import { buildTokenizer, tokenizerConfigFor } from '../../src/model/build-tokenizer.ts';
import { VICUNA_SYSTEM_PROMPT } from '../../src/model/chat-template.ts';
import { loadModel, saveCheckpoint } from '../../src/model/checkpoint.ts';
import { resolveModelConfig, TINY_MODEL_CONFIG } from '../../src/model/config.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { REWARD_PROMPT_CORPUS } from '../../src/model/reward-prompt.ts';
import { tokenizerFromJson } from '../../src/model/tokenizer.ts';
import { runPipeline } from '../../src/pipeline/run-pipeline.ts';
import { runFlow } from '../../src/stream/flow.ts';
import type { PpoMetrics } from '../../sinks/ppo-trainer.ts';

tf.env().set('PROD', true);

let tmp: string;
const dirs = { sft: '', rm: '', prompts: '', images: '' };

const PROMPTS: RlPrompt[] = [
  { id: 'p0', image: 'a.png', conversations: [{ from: 'human', value: '<image>\nIs there a red square?' }], caption_type: 6, length_bonus: 1, facts: ['A blue circle.', 'One blue circle on grey.'] },
  { id: 'p1', image: 'b.png', conversations: [{ from: 'human', value: '<image>\nDescribe the image.' }], caption_type: 1, length_bonus: 1, facts: ['A red square and a star.'] },
  { id: 'p2', image: null, conversations: [{ from: 'human', value: 'Name a shape.' }], caption_type: 1, length_bonus: 0.5, facts: [] },
];

test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-ppo-'));
  dirs.images = path.join(tmp, 'images');
  await mkdir(dirs.images);
  await sharp({ create: { width: 24, height: 16, channels: 3, background: { r: 20, g: 40, b: 220 } } }).png().toFile(path.join(dirs.images, 'a.png'));
  await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 220, g: 40, b: 20 } } }).png().toFile(path.join(dirs.images, 'b.png'));
  // rl-prompt shards
  dirs.prompts = path.join(tmp, 'prompts');
  await runFlow({
    source: { name: 'prompts', async *read() { yield* PROMPTS; } },
    sink: shardSink({ dir: dirs.prompts, schema: rlPromptSchema, format: 'jsonl' }) as never,
  }, { seed: 1, deadLetterPath: path.join(tmp, 'prompts-rejected.jsonl') });
  // stand-ins for the SFT and reward-model runs: tiny models with a tokenizer that knows the prompts
  await tf.setBackend('wasm');
  const corpus = [VICUNA_SYSTEM_PROMPT, 'USER: ASSISTANT:', ...REWARD_PROMPT_CORPUS, ...REWARD_PROMPT_CORPUS, ...PROMPTS.flatMap((p) => [p.conversations[0]!.value.replace('<image>', ''), ...p.facts])];
  const tok = tokenizerFromJson(buildTokenizer(corpus, { vocabSize: 400 }), tokenizerConfigFor());
  const cfg = resolveModelConfig({ language: { vocabSize: tok.vocabSize, contextLength: 256 }, heads: ['lm'] }, TINY_MODEL_CONFIG);
  dirs.sft = path.join(tmp, 'sft');
  dirs.rm = path.join(tmp, 'rm');
  const sft = createModel(cfg, { seed: 1 });
  await saveCheckpoint(path.join(dirs.sft, 'checkpoint'), { model: sft, tokenizer: tok });
  const rm = createModel({ ...cfg, heads: ['reward'] }, { seed: 2 });
  await saveCheckpoint(path.join(dirs.rm, 'checkpoint'), { model: rm, tokenizer: tok });
  await writeFile(path.join(dirs.rm, 'summary.json'), JSON.stringify({ pipeline: 'reward-train', result: { facts: true } }));
  sft.dispose();
  rm.dispose();
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const params = (extra: Record<string, unknown> = {}) => ({
  policy: dirs.sft, reward_model: dirs.rm, prompts: dirs.prompts, images: dirs.images,
  batch_size: 2, minibatch_size: 2, max_response_tokens: 8, checkpoint_every: 2, format: 'jsonl', ...extra,
});

async function metricsOf(out: string): Promise<PpoMetrics[]> {
  return (await readFile(path.join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as PpoMetrics);
}

test.serial('runs PPO end to end: metrics per step, a loadable policy checkpoint, rollout shards with every reward term; a rerun with more steps resumes', async (t) => {
  const out = path.join(tmp, 'ppo');
  const summary = await runPipeline(ppo, { out, backend: 'wasm', params: params({ steps: 3 }) });
  const result = summary.result as { steps: number; facts: boolean; reward_norm: unknown; rollouts: { written: number }; time: { prompts_per_s: number } };
  t.is(result.steps, 3);
  t.is(result.reward_norm, null, 'a reward model without held-out statistics is used raw');
  t.true(result.facts, 'facts=auto follows the reward model summary');
  t.true(result.time.prompts_per_s > 0);
  const ms = await metricsOf(out);
  t.deepEqual(ms.map((m) => m.step), [1, 2, 3]);
  for (const m of ms) {
    for (const k of ['reward_mean', 'reward_model_mean', 'length_penalty_mean', 'kl_mean', 'response_length_mean', 'clipfrac', 'value_loss'] as const) {
      t.true(typeof m[k] === 'number', `${k} at step ${m.step}`);
    }
  }
  // rollout shards: every rollout of the run, schema fields only, each reward term kept
  const manifest = JSON.parse(await readFile(path.join(out, 'rollouts', 'manifest.json'), 'utf8')) as Manifest;
  t.is(manifest.schema, 'rollout');
  t.is(manifest.total_rows, 6);
  t.is(result.rollouts.written, 6);
  const rows: Rollout[] = [];
  const source = shardSource<Rollout>({ path: path.join(out, 'rollouts'), schema: rolloutSchema });
  const sctx = { name: 's', signal: new AbortController().signal, seed: 1, partition: { index: 0, count: 1 }, counts: { in: 0, out: 0, rejected: 0 }, reject() {}, setTotal() {}, note() {} };
  for await (const r of source.read(sctx)) rows.push(r);
  for (const r of rows) {
    t.is(rolloutSchema.validate(r), null);
    t.false('response_ids' in r);
    t.true(Math.abs(r.reward_model + r.reward_length + r.reward_correctness + r.reward_no_eos - r.reward_total) < 1e-4);
    t.is(r.ref_logprobs.length, r.response_tokens, 'the rollout stage filled the reference log-probs');
  }
  t.deepEqual([...new Set(rows.map((r) => r.policy_version))], [0, 1, 2]);
  const { model, checkpoint } = await loadModel(path.join(out, 'checkpoint'));
  t.is(checkpoint.state.step, 3);
  model.dispose();

  const more = await runPipeline(ppo, { out, backend: 'wasm', params: params({ steps: 5 }) });
  t.is((more.result as { resumed_from: number }).resumed_from, 3);
  t.deepEqual((await metricsOf(out)).map((m) => m.step), [1, 2, 3, 4, 5]);
  const manifest2 = JSON.parse(await readFile(path.join(out, 'rollouts', 'manifest.json'), 'utf8')) as Manifest;
  const rejectedByScoring = more.flows[0]!.stages.find((s) => s.name === 'reward-score')!.rejected;
  t.is(manifest2.total_rows, 10 - rejectedByScoring, 'the 6 rollouts of steps 1-3 and the 4 new ones (less any the scoring rejected)');
});

test.serial('reward_norm: a reward model with held-out score statistics is standardised by them', async (t) => {
  const rmDir = path.join(tmp, 'rm-stats');
  const { model, checkpoint } = await loadModel(path.join(dirs.rm, 'checkpoint'));
  const stats = { score_mean: 0.25, score_std: 0.5 };
  await saveCheckpoint(path.join(rmDir, 'checkpoint'), { model, tokenizer: checkpoint.tokenizer, state: { facts: true, heldout: stats } });
  model.dispose();
  const run = async (norm: boolean) => {
    const out = path.join(tmp, `ppo-norm-${norm}`);
    const summary = await runPipeline(ppo, { out, backend: 'wasm', seed: 4, params: params({ steps: 1, reward_model: rmDir, reward_norm: norm }) });
    const rows = (await readFile(path.join(out, 'rollouts.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Rollout);
    return { result: summary.result as { reward_norm: unknown }, rows };
  };
  const on = await run(true);
  const off = await run(false);
  t.deepEqual(on.result.reward_norm, { mean: 0.25, std: 0.5 });
  t.is(off.result.reward_norm, null);
  // same seed, same rollouts: only the reward-model term differs, by the standardisation
  t.deepEqual(on.rows.map((r) => r.response), off.rows.map((r) => r.response));
  on.rows.forEach((r, i) => t.true(Math.abs(r.reward_model - (off.rows[i]!.reward_model - 0.25) / 0.5) < 1e-4, `${r.reward_model} vs ${off.rows[i]!.reward_model}`));
});

test.serial('a missing policy or reward-model checkpoint is a CheckpointError naming the folder', async (t) => {
  const missing = path.join(tmp, 'no-such-sft');
  const err = await t.throwsAsync(runPipeline(ppo, { out: path.join(tmp, 'ppo-missing'), backend: 'wasm', params: params({ policy: missing, steps: 1 }) }));
  t.is((err as FactflowError).code, 'FF_ERR_CHECKPOINT');
  t.true(err!.message.includes(missing), err!.message);
  const missingRm = path.join(tmp, 'no-such-rm');
  const err2 = await t.throwsAsync(runPipeline(ppo, { out: path.join(tmp, 'ppo-missing2'), backend: 'wasm', params: params({ reward_model: missingRm, steps: 1 }) }));
  t.is((err2 as FactflowError).code, 'FF_ERR_CHECKPOINT');
  t.true(err2!.message.includes(missingRm), err2!.message);
});

test.serial('facts must match how the reward model was trained', async (t) => {
  const err = await t.throwsAsync(runPipeline(ppo, { out: path.join(tmp, 'ppo-facts'), backend: 'wasm', params: params({ facts: 'false', steps: 1 }) }));
  t.is((err as FactflowError).code, 'FF_ERR_INVALID_OPTION');
  t.regex(err!.message, /params\.facts.*trained with facts=true/);
});
