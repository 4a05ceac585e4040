import test from 'ava';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { generateShapesWorld } from '../../sources/shapes-world.ts';
import { repeatEpochs } from '../../sources/repeat-epochs.ts';
import type { GroundTruth } from '../../schemas/shapes-world.ts';
import type { Preference } from '../../schemas/preference.ts';
import { runFlow } from '../../src/stream/flow.ts';
import { batch } from '../../src/stream/batch.ts';
import { withOrigin } from '../../src/stream/origin.ts';
import type { Source, Stage } from '../../src/stream/stage.ts';
import { Rng } from '../../src/stream/random.ts';
import { buildTokenizer, tokenizerConfigFor } from '../../src/model/build-tokenizer.ts';
import { VICUNA_SYSTEM_PROMPT } from '../../src/model/chat-template.ts';
import { loadModel, saveCheckpoint } from '../../src/model/checkpoint.ts';
import { TINY_MODEL_CONFIG, resolveModelConfig } from '../../src/model/config.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { loadRewardModel, scoreResponses } from '../../src/model/reward-model.ts';
import { REWARD_PROMPT_CORPUS } from '../../src/model/reward-prompt.ts';
import { tokenizerFromJson } from '../../src/model/tokenizer.ts';
import { createImageLoader } from '../../src/model/image-input.ts';
import { rewardTrainer, type RewardMetrics, type RewardTrainerOptions, type RewardTrainerSummary } from '../../sinks/reward-trainer.ts';
import { removeAfterAll } from '../helpers/temp-dir.ts';

tf.env().set('PROD', true);
await tf.setBackend('wasm');

const root = await mkdtemp(path.join(os.tmpdir(), 'ff-rm-'));
const world = path.join(root, 'world');
await generateShapesWorld({ out: world, seed: 3, images: 12, flickrImages: 0, evalImages: 2, mmhalPerType: 0, preferencePerImage: 0 });
const imageFiles = (await readFile(path.join(world, 'ground_truth.jsonl'), 'utf8')).trim().split('\n')
  .map((l) => JSON.parse(l) as GroundTruth).filter((g) => g.split !== 'eval').map((g) => g.image);

const COLORS = ['red', 'green', 'blue', 'yellow'];

/**
 * Pairs whose preferred response is recognisable from its text: it names a circle, the other a
 * star. Half have an image, half are flagged as hallucination pairs.
 */
function makeRecords(n: number, seed: number, prefix: string): Preference[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const color = rng.pick(COLORS);
    const good = `There is a ${color} circle.`;
    const bad = `There is a ${rng.pick(COLORS)} star.`;
    const image = i % 2 === 0 ? imageFiles[i % imageFiles.length]! : null;
    const first = rng.next() < 0.5;
    return {
      id: `${prefix}-${i}`,
      image,
      conversations: [{ from: 'human', value: image ? '<image>\nDescribe the image.' : 'Describe the shapes.' }],
      output_1: first ? good : bad,
      output_2: first ? bad : good,
      preference: first ? 1 : 2,
      hallucination: i % 3 !== 0,
      facts: [`A ${color} circle.`, `One ${color} shape.`],
    } satisfies Preference;
  });
}
const TRAIN = makeRecords(48, 1, 'train');
const HELDOUT = makeRecords(16, 2, 'held');

const tok = tokenizerFromJson(buildTokenizer([
  VICUNA_SYSTEM_PROMPT, 'USER: ASSISTANT:', ...REWARD_PROMPT_CORPUS, ...REWARD_PROMPT_CORPUS, 'Describe the image. Describe the shapes.',
  ...TRAIN.flatMap((r) => [r.output_1, r.output_2, ...r.facts]),
], { vocabSize: 400 }), tokenizerConfigFor());
const config = resolveModelConfig({ language: { vocabSize: tok.vocabSize, contextLength: 192 }, heads: ['lm'] }, TINY_MODEL_CONFIG);

// the "SFT checkpoint": a fresh policy (LM head, no reward head) with the tokenizer
const sft = path.join(root, 'sft', 'checkpoint');
{
  const policy = createModel(config, { seed: 5 });
  await saveCheckpoint(sft, { model: policy, tokenizer: tok, state: { step: 0 } });
  policy.dispose();
}

function arraySource(items: readonly Preference[]): Source<Preference> {
  return { name: 'preferences', async *read() { let i = 0; for (const r of items) yield withOrigin({ ...r }, { file: 'memory.jsonl', line: i + 1, index: i++ }); } };
}

interface RunResult { summary: RewardTrainerSummary; metrics: RewardMetrics[]; rejected: number }

async function train(out: string, extra: Partial<RewardTrainerOptions> = {}, options: { records?: Preference[]; signal?: AbortSignal; epochs?: number } = {}): Promise<RunResult> {
  const flow = await runFlow({
    source: repeatEpochs({ source: arraySource(options.records ?? TRAIN), epochs: options.epochs ?? 10 }),
    stages: [batch<Preference>(4)] as Stage<never, unknown>[],
    sink: rewardTrainer({
      sft, out, facts: true, imageRoot: path.join(world, 'images'), steps: 40, lr: 5e-3, warmup: 3, logEvery: 1,
      heldout: HELDOUT, evalEvery: 10, examplesPerEpoch: TRAIN.length, ...extra,
    }),
  }, { seed: 11, deadLetterPath: path.join(out, 'rejected.jsonl'), signal: options.signal });
  const metrics = (await readFile(path.join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as RewardMetrics);
  return { summary: flow.result, metrics, rejected: flow.rejected };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

removeAfterAll(root); // after the setup above: no top-level await may follow a hook

test.serial('facts=true: loss goes down, accuracy rises above chance, best checkpoint is a loadable reward model', async (t) => {
  const out = path.join(root, 'run-facts');
  const r = await train(out);
  t.is(r.summary.steps, 40);
  t.true(r.summary.facts);
  t.deepEqual(r.metrics.map((m) => m.step), Array.from({ length: 40 }, (_, i) => i + 1));
  for (const m of r.metrics) {
    for (const k of ['step', 'loss', 'accuracy', 'lr', 'tokens_per_s', 'elapsed_s', 'epoch'] as const) t.is(typeof m[k], 'number', `${k} in ${JSON.stringify(m)}`);
  }
  const evals = r.metrics.filter((m) => m.heldout_accuracy !== undefined);
  t.deepEqual(evals.map((m) => m.step), [10, 20, 30, 40]);
  for (const m of evals) t.is(typeof m.heldout_hallucination_pair_accuracy, 'number');
  t.true(r.metrics[0]!.lr < r.metrics[2]!.lr, 'warmup');
  const first = mean(r.metrics.slice(0, 5).map((m) => m.loss));
  const last = mean(r.metrics.slice(-5).map((m) => m.loss));
  t.true(last < first * 0.6, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  t.true(mean(r.metrics.slice(-10).map((m) => m.accuracy)) > 0.8, 'training accuracy above chance');
  // summary: the kept checkpoint's held-out figures
  const h = r.summary.heldout!;
  t.is(h.pairs, HELDOUT.length);
  t.is(h.hallucination_pairs, HELDOUT.filter((x) => x.hallucination === true).length);
  t.true(h.accuracy > 0.8, `held-out accuracy ${h.accuracy}`);
  t.true(typeof h.hallucination_pair_accuracy === 'number' && h.hallucination_pair_accuracy > 0.7);
  t.is(h.accuracy, Math.max(...evals.map((m) => m.heldout_accuracy!)));
  t.is(r.summary.best_step, evals.find((m) => m.heldout_accuracy === h.accuracy && m.heldout_loss === h.loss)!.step);
  // checkpoint/: reward head only, tokenizer, held-out figures
  const cfg = JSON.parse(await readFile(path.join(out, 'checkpoint', 'config.json'), 'utf8')) as { heads: string[] };
  t.deepEqual(cfg.heads, ['reward']);
  t.true((await stat(path.join(out, 'checkpoint', 'tokenizer.json'))).size > 0);
  const rm = await loadRewardModel(path.join(out, 'checkpoint'));
  t.is((rm.checkpoint.state as { step: number }).step, r.summary.best_step);
  t.true(rm.facts);
  const images = createImageLoader({ size: rm.model.config.vision.imageSize, root: path.join(world, 'images') });
  const rec = HELDOUT[0]!;
  const pixels = rec.image ? await images.load(rec.image) : null;
  const [s1, s2] = await scoreResponses(rm.model, rm.tokenizer, [
    { id: rec.id, pixels, turns: rec.conversations, response: 'There is a red circle.', facts: rec.facts },
    { id: rec.id, pixels, turns: rec.conversations, response: 'There is a red star.', facts: rec.facts },
  ], { facts: true, seed: 11 });
  t.true(s1! > s2!, `circle ${s1} vs star ${s2}`);
  rm.model.dispose();
});

test.serial('facts=false (vanilla RLHF) trains from the same code', async (t) => {
  const out = path.join(root, 'run-vanilla');
  const r = await train(out, { facts: false, steps: 30 });
  t.false(r.summary.facts);
  t.is(r.summary.steps, 30);
  t.true(r.summary.heldout!.accuracy > 0.7, `held-out accuracy ${r.summary.heldout!.accuracy}`);
  const state = JSON.parse(await readFile(path.join(out, 'last', 'trainer_state.json'), 'utf8')) as { facts: boolean; step: number };
  t.false(state.facts);
  t.is(state.step, 30);
});

test.serial('likelihood=true, response-sum pooling: trains; the checkpoint keeps the LM head the scores read; a value model loads from it', async (t) => {
  const out = path.join(root, 'run-likelihood');
  const r = await train(out, { facts: false, steps: 30, likelihood: true, pooling: 'response-sum' });
  t.true(r.summary.likelihood);
  t.is(r.summary.pooling, 'response-sum');
  t.true(r.summary.heldout!.accuracy > 0.7, `held-out accuracy ${r.summary.heldout!.accuracy}`);
  const cfg = JSON.parse(await readFile(path.join(out, 'checkpoint', 'config.json'), 'utf8')) as { heads: string[]; rewardLikelihood?: boolean; rewardPooling?: string };
  t.deepEqual(cfg.heads, ['reward', 'lm']);
  t.true(cfg.rewardLikelihood);
  t.is(cfg.rewardPooling, 'response-sum');
  const rm = await loadRewardModel(path.join(out, 'checkpoint'));
  t.true(rm.model.params.has('head.reward.likelihood.weight'));
  const rec = HELDOUT[1]!;
  const [good, bad] = await scoreResponses(rm.model, rm.tokenizer, [
    { id: rec.id, pixels: null, turns: rec.conversations, response: rec.preference === 1 ? rec.output_1 : rec.output_2 },
    { id: rec.id, pixels: null, turns: rec.conversations, response: rec.preference === 1 ? rec.output_2 : rec.output_1 },
  ], { facts: false, seed: 11 });
  t.true(good! > bad!, `preferred ${good} vs other ${bad}`);
  rm.model.dispose();
  // PPO's value model: the reward trunk with a fresh value head (the likelihood head is not needed there)
  const { model: value } = await loadModel(path.join(out, 'checkpoint'), { heads: ['value'] });
  t.true(value.params.has('head.value.weight'));
  t.false(value.params.has('head.reward.likelihood.weight'));
  value.dispose();
  // a rerun with likelihood=false in the same folder starts fresh instead of resuming the other kind
  const again = await train(out, { facts: false, steps: 2, likelihood: false, pooling: 'response-sum' });
  t.is(again.summary.resumed_from, 0);
  t.false(again.summary.likelihood);
});

/** Pairs that differ only in a colour, which only the captions give (no image). */
function colourPairs(n: number, seed: number, prefix: string): Preference[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const color = rng.pick(COLORS);
    const other = rng.pick(COLORS.filter((c) => c !== color));
    const first = rng.next() < 0.5;
    const good = `There is a ${color} circle.`, bad = `There is a ${other} circle.`;
    return {
      id: `${prefix}-${i}`, image: null, conversations: [{ from: 'human', value: 'Describe the shapes.' }],
      output_1: first ? good : bad, output_2: first ? bad : good, preference: first ? 1 : 2, hallucination: true,
      facts: [`A ${color} circle.`, `One ${color} shape.`],
    } satisfies Preference;
  });
}

test.serial('fact_match: on pairs that only the captions tell apart, the caption-matching head learns them and the plain one does not', async (t) => {
  const records = colourPairs(48, 3, 'colour');
  const heldout = colourPairs(32, 4, 'colour-held');
  const run = (factMatch: boolean) => train(path.join(root, `run-fact-match-${factMatch}`), { facts: true, steps: 30, likelihood: true, factMatch, pooling: 'response-sum', heldout }, { records });
  const matched = await run(true);
  const plain = await run(false);
  t.true(matched.summary.fact_match);
  t.false(plain.summary.fact_match);
  const [a, b] = [matched.summary.heldout!.accuracy, plain.summary.heldout!.accuracy];
  t.log(`held-out accuracy: ${a} with caption matches, ${b} without`);
  t.true(a >= 0.9, `held-out accuracy with caption matches ${a}`);
  t.true(a > b + 0.2, `with caption matches ${a}, without ${b}`);
  const out = path.join(root, 'run-fact-match-true');
  const cfg = JSON.parse(await readFile(path.join(out, 'checkpoint', 'config.json'), 'utf8')) as { rewardFactMatch?: boolean };
  t.true(cfg.rewardFactMatch);
  const rm = await loadRewardModel(path.join(out, 'checkpoint'));
  t.true(rm.model.params.has('head.reward.fact.weight'));
  rm.model.dispose();
});

test.serial('resume: a run stopped mid-way continues from last/ with the same metrics as an uninterrupted run', async (t) => {
  const whole = await train(path.join(root, 'run-whole'), { steps: 16, evalEvery: 4 });
  const out = path.join(root, 'run-split');
  const ac = new AbortController();
  await t.throwsAsync(train(out, { steps: 16, evalEvery: 4, onStep: (s) => { if (s === 10) ac.abort(new Error('stop')); } }, { signal: ac.signal }), { code: 'FF_ERR_ABORTED' });
  const again = await train(out, { steps: 16, evalEvery: 4 });
  t.is(again.summary.resumed_from, 8);
  t.deepEqual(again.metrics.map((m) => m.step), whole.metrics.map((m) => m.step));
  again.metrics.forEach((m, i) => {
    const w = whole.metrics[i]!;
    t.true(Math.abs(m.loss - w.loss) < 1e-4, `step ${m.step}: loss ${m.loss} vs ${w.loss}`);
    t.is(m.heldout_accuracy, w.heldout_accuracy);
  });
  t.deepEqual(again.summary.heldout, whole.summary.heldout);
});

test.serial('early stopping: no held-out improvement for `patience` evaluations stops training, keeping the best', async (t) => {
  const out = path.join(root, 'run-patience');
  const r = await train(out, { steps: 40, lr: 1e-9, warmup: 0, evalEvery: 2, patience: 2 });
  t.true(r.summary.stopped_early);
  t.is(r.summary.best_step, 2);
  t.is(r.summary.steps, 6);
  t.true(r.summary.unused_batches > 0);
});

test.serial('validation pairs choose the kept checkpoint; the held-out figures reported are those of that step', async (t) => {
  const out = path.join(root, 'run-validation');
  // validation labels reversed: the better the model gets, the worse it does there, so validation
  // keeps the first evaluation, where the held-out pairs (loss falling) would keep a later one
  const reversed = makeRecords(16, 3, 'val').map((r) => ({ ...r, preference: (r.preference === 1 ? 2 : 1) as 1 | 2 }));
  const r = await train(out, { steps: 8, evalEvery: 2, validation: reversed });
  const evals = r.metrics.filter((m) => m.heldout_accuracy !== undefined);
  t.deepEqual(evals.map((m) => m.step), [2, 4, 6, 8]);
  for (const m of evals) t.is(typeof m.validation_accuracy, 'number');
  const [first, last] = [evals[0]!, evals[3]!];
  t.true(last.heldout_accuracy! > first.heldout_accuracy! || last.heldout_loss! < first.heldout_loss! - 1e-3, 'held-out pairs would keep a later step');
  t.true(last.validation_accuracy! <= first.validation_accuracy! && last.validation_loss! > first.validation_loss!, 'reversed validation gets worse');
  const best = Math.max(...evals.map((m) => m.validation_accuracy!));
  t.is(r.summary.best_step, evals.find((m) => m.validation_accuracy === best)!.step);
  t.is(r.summary.best_step, 2);
  const kept = evals.find((m) => m.step === r.summary.best_step)!;
  t.is(r.summary.heldout!.accuracy, kept.heldout_accuracy!);
  t.is(r.summary.heldout!.pairs, HELDOUT.length);
  t.is(r.summary.validation!.accuracy, kept.validation_accuracy!);
  t.is(r.summary.validation!.pairs, 16);
  const rm = await loadRewardModel(path.join(out, 'checkpoint'));
  t.is((rm.checkpoint.state as { step: number }).step, 2);
  rm.model.dispose();
  // without validation pairs the held-out ones choose (and the summary says so by its null)
  t.is((await train(path.join(root, 'run-no-validation'), { steps: 2, evalEvery: 2 })).summary.validation, null);
});

test.serial('a record whose prompt does not fit is rejected with the reason; the rest train', async (t) => {
  const out = path.join(root, 'run-reject');
  const long = { ...TRAIN[1]!, id: 'too-long', output_1: Array.from({ length: 100 }, () => 'red circle').join(' ') };
  const r = await train(out, { steps: 6, evalEvery: 0 }, { records: [long, ...TRAIN.slice(2, 25)], epochs: 1 });
  t.is(r.rejected, 1);
  t.is(r.summary.rejected, 1);
  t.is(r.summary.steps, 6);
  const letters = (await readFile(path.join(out, 'rejected.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { reason: string; stage: string });
  t.is(letters.length, 1);
  t.regex(letters[0]!.reason, /tokens without facts .* over the limit 192/);
});

test('a missing SFT checkpoint is a CheckpointError naming the folder', async (t) => {
  const missing = path.join(root, 'no-such-sft', 'checkpoint');
  const out = path.join(root, 'run-missing');
  const err = await t.throwsAsync(train(out, { sft: missing }));
  t.is((err as { code?: string }).code, 'FF_ERR_CHECKPOINT');
  t.true(err!.message.includes(missing), err!.message);
});

test('options are checked when the sink is made', (t) => {
  const base = { sft, out: root, facts: true, imageRoot: root, steps: 1, lr: 1e-3 };
  const e1 = t.throws(() => rewardTrainer({ ...base, steps: 0 }));
  t.is((e1 as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e1!.message, /"steps"/);
  t.regex(t.throws(() => rewardTrainer({ ...base, facts: 'no' as unknown as boolean }))!.message, /"facts"/);
  t.regex(t.throws(() => rewardTrainer({ ...base, sft: '' }))!.message, /"sft"/);
  t.regex(t.throws(() => rewardTrainer({ ...base, lr: -1 }))!.message, /"lr"/);
  t.regex(t.throws(() => rewardTrainer({ ...base, factMatch: true }))!.message, /"factMatch".*likelihood/);
  t.regex(t.throws(() => rewardTrainer({ ...base, facts: false, likelihood: true, factMatch: true }))!.message, /no captions/);
  t.regex(t.throws(() => rewardTrainer({ ...base, validation: HELDOUT }))!.message, /"validation".*heldout/);
});
