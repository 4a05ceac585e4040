import test from 'ava';
import { readFile, readdir, rm, mkdir, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { FactflowError } from '../../src/errors.ts';
import { loadModel } from '../../src/model/checkpoint.ts';
import { Rng } from '../../src/stream/random.ts';
import type { Stage } from '../../src/stream/stage.ts';
import type { RolloutRecord } from '../../transforms/rollout.ts';
import { ppoTrainer, PPO_TIMING_FIELDS, type PpoMetrics, type PpoTrainerOptions, type ScoredRollout } from '../../sinks/ppo-trainer.ts';
import { countScorer, makeToy, RESUME_RUN, runToy, toyPrompts, type Toy } from './ppo-toy.ts';
import { fakeSinkContext } from './sink-harness.ts';
import { sharedTempDir, tempDir } from '../helpers/temp-dir.ts';

tf.env().set('PROD', true);
await tf.setBackend('wasm');

async function readMetrics(out: string): Promise<PpoMetrics[]> {
  const text = await readFile(path.join(out, 'metrics.jsonl'), 'utf8');
  return text.trim().split('\n').map((l) => JSON.parse(l) as PpoMetrics);
}

/** Metrics without the wall-clock fields (those differ between any two runs). */
function deterministic(m: PpoMetrics): Record<string, unknown> {
  const out: Record<string, unknown> = { ...m };
  for (const k of PPO_TIMING_FIELDS) delete out[k];
  return out;
}

const wholeRunDir = sharedTempDir('ppo-trainer-');
let wholeRun: Promise<string> | undefined;
/** The uninterrupted resume-test run (made once, compared by both resume tests). */
function uninterrupted(): Promise<string> {
  wholeRun ??= (async () => {
    const toy = makeToy();
    await runToy({ ...RESUME_RUN, toy, out: wholeRunDir });
    toy.dispose();
    return wholeRunDir;
  })();
  return wholeRun;
}

const meanOf = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

test.serial('toy task: reward rises far with KL held below a bound at kl_coef 0.1; at kl_coef 0 it rises faster and KL grows larger', async (t) => {
  // reward = 0.35 x (times token "x" appears in 8 tokens). With the KL penalty 0.1 the policy
  // settles where the penalty of emitting "x" matches its reward (p(x) ~ 0.26, KL ~ 1 nat per
  // token); without it the policy collapses onto "x" (8 per response, KL ~ log(vocab)).
  const scale = 0.35;
  const steps = 30;
  const runs: Record<string, PpoMetrics[]> = {};
  for (const klCoef of [0.1, 0]) {
    const toy = makeToy();
    const out = await tempDir(t, 'ppo-trainer-');
    const flow = await runToy({ toy, out, steps, batchSize: 16, scale, trainer: { klCoef } });
    t.is(flow.result.steps, steps);
    runs[klCoef] = await readMetrics(out);
    t.is(runs[klCoef]!.length, steps);
    toy.dispose();
  }
  const count = (ms: PpoMetrics[]): number[] => ms.map((m) => m.reward_mean / scale);
  const withKl = runs['0.1']!;
  const noKl = runs['0']!;
  const first = meanOf(count(withKl).slice(0, 5));
  const lastKl = meanOf(count(withKl).slice(-10));
  const lastNoKl = meanOf(count(noKl).slice(-5));
  const lastKl5 = meanOf(count(withKl).slice(-5));
  const maxKlWithPenalty = Math.max(...withKl.map((m) => m.kl_mean));
  t.log(`reward (count of "x" per response): first 5 steps ${first.toFixed(2)}; last 10 at kl 0.1 ${lastKl.toFixed(2)}; last 5: kl 0.1 ${lastKl5.toFixed(2)}, kl 0 ${lastNoKl.toFixed(2)}`);
  t.log(`per-token KL: kl 0.1 max ${maxKlWithPenalty.toFixed(3)}; kl 0 final ${noKl.at(-1)!.kl_mean.toFixed(3)}`);
  t.true(first < 0.5, `starts near chance (8/vocab): ${first}`);
  t.true(lastKl > first + 1, `kl 0.1: reward rises by a large margin (${first} -> ${lastKl})`);
  t.true(maxKlWithPenalty < 2.5, `kl 0.1: KL stays below 2.5 nats per token (max ${maxKlWithPenalty})`);
  t.true(lastNoKl > lastKl5 + 2, `kl 0: reward rises faster (${lastNoKl} vs ${lastKl5} over the last 5 steps)`);
  t.true(meanOf(count(noKl).slice(15)) > meanOf(count(withKl).slice(15)), 'kl 0 is ahead over the second half');
  t.true(noKl.at(-1)!.kl_mean > 2.5 && noKl.at(-1)!.kl_mean > maxKlWithPenalty, `kl 0: KL grows larger (${noKl.at(-1)!.kl_mean})`);
  t.true(withKl.every((m) => m.kl_coef === 0.1) && noKl.every((m) => m.kl_coef === 0));
  for (const m of withKl) {
    for (const k of ['reward_mean', 'kl_mean', 'clipfrac', 'value_loss', 'policy_loss', 'entropy', 'approx_kl', 'response_length_mean', 'tokens_per_s'] as const) {
      t.true(Number.isFinite(m[k]), `${k} at step ${m.step} is ${m[k]}`);
    }
    t.is(m.rollouts, 16);
    t.true(Math.abs(m.time_generation_share + m.time_scoring_share + m.time_update_share - 1) < 1e-9);
  }
});

test.serial('resume: interrupted after 3 steps (checkpoint at 2), the rerun continues to the same metrics, journal and weights as an uninterrupted run', async (t) => {
  const opts = RESUME_RUN;
  const whole = await uninterrupted();

  const resumed = await tempDir(t, 'ppo-trainer-');
  const toyB = makeToy();
  const crash = new Error('simulated crash after step 3');
  const err = await t.throwsAsync(runToy({
    ...opts, toy: toyB, out: resumed,
    trainer: { ...opts.trainer, afterStep: (m) => { if (m.step === 3) throw crash; } },
  }));
  t.is((err as FactflowError).cause, crash);
  toyB.dispose();
  t.is((await readMetrics(resumed)).length, 3, 'the crashed run wrote 3 metrics lines');
  const state = JSON.parse(await readFile(path.join(resumed, 'checkpoint', 'trainer_state.json'), 'utf8')) as { step: number };
  t.is(state.step, 2);

  const toyC = makeToy();
  const flow = await runToy({ ...opts, toy: toyC, out: resumed });
  toyC.dispose();
  t.is(flow.result.resumed_from, 2);
  t.is(flow.result.steps, 6);
  const a = (await readMetrics(whole)).map(deterministic);
  const b = (await readMetrics(resumed)).map(deterministic);
  t.deepEqual(b, a);
  t.deepEqual(a.map((m) => m.step), [1, 2, 3, 4, 5, 6]);
  t.is(await readFile(path.join(resumed, 'rollouts.jsonl'), 'utf8'), await readFile(path.join(whole, 'rollouts.jsonl'), 'utf8'));
  for (const f of ['model.safetensors', 'optimizer.safetensors', 'value/model.safetensors', 'value/optimizer.safetensors']) {
    t.true((await readFile(path.join(resumed, 'checkpoint', f))).equals(await readFile(path.join(whole, 'checkpoint', f))), `${f} identical`);
  }
  // the policy checkpoint loads like an SFT checkpoint
  const { model, checkpoint } = await loadModel(path.join(whole, 'checkpoint'));
  t.deepEqual(model.config.heads, ['lm']);
  t.is(checkpoint.state.step, 6);
  model.dispose();
  t.deepEqual((await readdir(resumed)).filter((n) => n.startsWith('checkpoint')), ['checkpoint']);
});

test.serial('resume after kill -9: the rerun continues from the last checkpoint to the metrics and weights of an uninterrupted run', async (t) => {
  const whole = await uninterrupted();
  const out = await tempDir(t, 'ppo-trainer-');
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ppo-kill-child.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', script, out, '400'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<string | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  // kill once step 3 is written: checkpoint 2 exists, step 3's rollouts and metrics are past it
  const until = Date.now() + 240_000;
  for (;;) {
    const lines = await readFile(path.join(out, 'metrics.jsonl'), 'utf8').then((x) => x.trim().split('\n').length, () => 0);
    if (lines >= 3) break;
    if (Date.now() > until || child.exitCode !== null) { child.kill('SIGKILL'); t.fail(`child did not reach step 3: ${stderr}`); return; }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  t.is(await exited, 'SIGKILL', 'the run finished before it could be killed');
  const killedAt = (await readMetrics(out)).length;
  t.true(killedAt >= 3 && killedAt < 6, `killed after ${killedAt} steps`);

  const toy = makeToy();
  const flow = await runToy({ ...RESUME_RUN, toy, out });
  toy.dispose();
  t.true(flow.result.resumed_from >= 2 && flow.result.resumed_from <= killedAt, `resumed from ${flow.result.resumed_from}`);
  t.deepEqual((await readMetrics(out)).map(deterministic), (await readMetrics(whole)).map(deterministic));
  t.is(await readFile(path.join(out, 'rollouts.jsonl'), 'utf8'), await readFile(path.join(whole, 'rollouts.jsonl'), 'utf8'));
  t.true((await readFile(path.join(out, 'checkpoint', 'model.safetensors'))).equals(await readFile(path.join(whole, 'checkpoint', 'model.safetensors'))));
});

test.serial('a stage that drops a whole batch (every rollout rejected by scoring): that step has no update and training goes on', async (t) => {
  const toy = makeToy();
  const out = await tempDir(t, 'ppo-trainer-');
  const count = countScorer(toy.target);
  // rejects every rollout of steps 2 and 5 (versions 1 and 4), yielding nothing for them, as reward-score does
  const scorer: Stage<RolloutRecord[], RolloutRecord[]> = {
    name: 'dropping-scorer',
    async *run(input, ctx) {
      for await (const b of count.run(input, ctx)) {
        if (b[0]!.policy_version === 1 || b[0]!.policy_version === 4) b.forEach((r) => ctx.reject(r, 'the reward model scored the response NaN'));
        else yield b;
      }
    },
  };
  const flow = await runToy({ toy, out, steps: 5, batchSize: 4, journal: true, scorer, trainer: { checkpointEvery: 2, minibatchSize: 2 } });
  t.is(flow.result.steps, 5);
  const ms = await readMetrics(out);
  t.deepEqual(ms.map((m) => [m.step, m.rollouts, m.rejected_upstream]), [[1, 4, 0], [2, 0, 4], [3, 4, 0], [4, 4, 0], [5, 0, 4]]);
  t.is(ms[1]!.reward_mean, null as unknown as number, 'NaN statistics are written as null');
  const versions = (await readFile(path.join(out, 'rollouts.jsonl'), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as RolloutRecord).policy_version);
  t.deepEqual([...new Set(versions)], [0, 2, 3]);
  t.is(flow.rejected, 8);
  const state = JSON.parse(await readFile(path.join(out, 'checkpoint', 'trainer_state.json'), 'utf8')) as { step: number };
  t.is(state.step, 5);
  toy.dispose();
});

/** Hand-made scored rollouts for the sink alone (policy_version 0). */
function fakeRollouts(toy: Toy, n: number, seed = 1): ScoredRollout[] {
  const rng = new Rng(seed);
  return toyPrompts(n).map((p, i) => {
    const len = 3 + rng.int(4);
    const ids = Array.from({ length: len }, () => 5 + rng.int(toy.tok.vocabSize - 5));
    return {
      ...p, response_ids: ids, response_tokens: len, ended_with_eos: false, logprobs: ids.map(() => -4.8), ref_logprobs: [],
      reward_model: i % 3, reward_total: i % 3, reward_length: 0, reward_correctness: 0, reward_no_eos: 0, policy_version: 0,
    };
  });
}

async function* batches<T>(...bs: T[][]): AsyncIterable<T[]> {
  for (const b of bs) yield b;
}

function weights(toy: Toy): Float32Array[] {
  return toy.policy.model.parameters().map((p) => Float32Array.from(p.variable.dataSync() as Float32Array));
}

test.serial('a rollout with NaN log-probs or reward is rejected with the reason and never updates the policy', async (t) => {
  const toy = makeToy();
  const out = await tempDir(t, 'ppo-trainer-');
  const ctx = fakeSinkContext({ dir: out });
  const before = weights(toy);
  const bad = fakeRollouts(toy, 2);
  bad[0]!.logprobs[1] = Number.NaN;
  bad[1]!.reward_total = Number.NaN;
  const sink = ppoTrainer({ policy: toy.policy, reference: toy.reference, value: toy.value, out, steps: 1, lr: 1e-2 });
  const result = await sink.write(batches(bad), ctx);
  t.is(result.steps, 1);
  t.is(ctx.rejected.length, 2);
  t.regex(ctx.rejected[0]!.reason, /logprobs\[1\] is NaN/);
  t.regex(ctx.rejected[1]!.reason, /reward_total is NaN/);
  t.regex(ctx.rejected[0]!.reason, /not used for the PPO update/);
  t.deepEqual(weights(toy), before, 'no update from rejected rollouts');
  const [m] = await readMetrics(out);
  t.is(m!.rollouts, 0);
  t.is(m!.rejected, 2);
  toy.dispose();

  // mixed batch: the good ones train, the bad one is left out
  const toy2 = makeToy();
  const out2 = await tempDir(t, 'ppo-trainer-');
  const ctx2 = fakeSinkContext({ dir: out2 });
  const mixed = fakeRollouts(toy2, 4);
  mixed[2]!.logprobs = mixed[2]!.logprobs.map(() => Number.NaN);
  const before2 = weights(toy2);
  await ppoTrainer({ policy: toy2.policy, reference: toy2.reference, value: toy2.value, out: out2, steps: 1, lr: 1e-2 }).write(batches(mixed), ctx2);
  t.is(ctx2.rejected.length, 1);
  t.is(ctx2.rejected[0]!.record, mixed[2]);
  const [m2] = await readMetrics(out2);
  t.is(m2!.rollouts, 3);
  t.notDeepEqual(weights(toy2), before2, 'the good rollouts updated the policy');
  toy2.dispose();
});

test.serial('an empty batch is a clear error naming the step', async (t) => {
  const toy = makeToy();
  const out = await tempDir(t, 'ppo-trainer-');
  const sink = ppoTrainer({ policy: toy.policy, reference: toy.reference, value: toy.value, out, steps: 3 });
  const err = await t.throwsAsync(sink.write(batches(fakeRollouts(toy, 2), []), fakeSinkContext({ dir: out })));
  t.is((err as FactflowError).code, 'FF_ERR_BAD_INPUT');
  t.regex(err!.message, /empty batch at step 2/);
  toy.dispose();
});

test.serial('a broken checkpoint in the output folder is a CheckpointError naming it', async (t) => {
  const toy = makeToy();
  const out = await tempDir(t, 'ppo-trainer-');
  // a PPO checkpoint whose value model is missing
  const sink = ppoTrainer({ policy: toy.policy, reference: toy.reference, value: toy.value, out, steps: 1 });
  await sink.write(batches(fakeRollouts(toy, 2)), fakeSinkContext({ dir: out }));
  await rm(path.join(out, 'checkpoint', 'value'), { recursive: true });
  toy.dispose();
  const toy2 = makeToy();
  const err = await t.throwsAsync(ppoTrainer({ policy: toy2.policy, reference: toy2.reference, value: toy2.value, out, steps: 2 }).write(batches(), fakeSinkContext({ dir: out })));
  t.is((err as FactflowError).code, 'FF_ERR_CHECKPOINT');
  t.true(err!.message.includes(path.join(out, 'checkpoint', 'value')), err!.message);
  // a folder that is not a PPO checkpoint at all
  await rm(path.join(out, 'checkpoint'), { recursive: true });
  await mkdir(path.join(out, 'checkpoint'));
  await writeFile(path.join(out, 'checkpoint', 'config.json'), '{"kind":');
  const toy3 = makeToy();
  const err2 = await t.throwsAsync(ppoTrainer({ policy: toy3.policy, reference: toy3.reference, value: toy3.value, out, steps: 2 }).write(batches(), fakeSinkContext({ dir: out })));
  t.is((err2 as FactflowError).code, 'FF_ERR_CHECKPOINT');
  t.true(err2!.message.includes(path.join(out, 'checkpoint')), err2!.message);
  toy2.dispose();
  toy3.dispose();
});

test.serial('a PPO checkpoint of another model (here: its config.json says 4 heads, this run has 2) is refused, naming what differs', async (t) => {
  const toy = makeToy();
  const out = await tempDir(t, 'ppo-trainer-');
  await ppoTrainer({ policy: toy.policy, reference: toy.reference, value: toy.value, out, steps: 1 }).write(batches(fakeRollouts(toy, 2)), fakeSinkContext({ dir: out }));
  toy.dispose();
  const configFile = path.join(out, 'checkpoint', 'config.json');
  const saved = JSON.parse(await readFile(configFile, 'utf8')) as { language: { heads: number } };
  t.is(saved.language.heads, 2);
  saved.language.heads = 4;
  await writeFile(configFile, JSON.stringify(saved));
  const toy2 = makeToy();
  const err = await t.throwsAsync(ppoTrainer({ policy: toy2.policy, reference: toy2.reference, value: toy2.value, out, steps: 2 }).write(batches(), fakeSinkContext({ dir: out })));
  toy2.dispose();
  t.is((err as FactflowError).code, 'FF_ERR_CHECKPOINT');
  t.regex(err!.message, /policy was another model \(language\.heads 4 -> 2\)/);
});

test.serial('options are checked when the trainer is built', (t) => {
  const toy = makeToy();
  const base = { policy: toy.policy, reference: toy.reference, value: toy.value, out: '/tmp/x', steps: 1 };
  const cases: [Partial<PpoTrainerOptions>, string][] = [
    [{ steps: 0 }, 'ppo.steps'],
    [{ klCoef: -1 }, 'ppo.klCoef'],
    [{ ppoEpochs: 0 }, 'ppo.ppoEpochs'],
    [{ clipRange: 0 }, 'ppo.clipRange'],
    [{ gamma: 2 }, 'ppo.gamma'],
    [{ klEstimator: 'k2' as never }, 'ppo.klEstimator'],
    [{ value: toy.reference }, 'ppo.value'],
    [{ rewardScaling: { mode: 'scale', factor: Number.NaN } }, 'ppo.rewardScaling.factor'],
  ];
  for (const [patch, option] of cases) {
    const err = t.throws(() => ppoTrainer({ ...base, ...patch }));
    t.is((err as FactflowError).code, 'FF_ERR_INVALID_OPTION');
    t.true(err!.message.includes(option), `${option}: ${err!.message}`);
  }
  // a live policy feeds one trainer
  ppoTrainer(base);
  const err = t.throws(() => ppoTrainer(base));
  t.regex(err!.message, /already has a trainer/);
  toy.dispose();
});
