/**
 * The (factually augmented) reward model trainer as a sink over batches of preference records.
 *
 * The model starts from the SFT checkpoint's trunk with a fresh reward head (the LM head is not
 * kept). Each record gives two reward prompts (src/model/reward-prompt.ts; captions when `facts`)
 * that go through the model in one batch; the loss is LLaVA-RLHF's
 * `-log sigmoid(r_chosen - r_rejected) + 1e-3 * |mean(r_chosen + r_rejected)|`, with AdamW,
 * linear warmup and cosine decay. Every `evalEvery` steps the held-out pairs are scored:
 * accuracy overall and on hallucination pairs (`hallucination === true`: exactly one response
 * names an absent object). The checkpoint with the best accuracy on the `validation` pairs (ties: a
 * loss lower by 1e-3; without validation pairs, on the held-out ones) is kept in `checkpoint/`;
 * `patience` evaluations without improvement stop training early. Into `out`:
 *
 *   metrics.jsonl   {step, loss, accuracy, lr, tokens_per_s, elapsed_s, epoch?, heldout_accuracy?,
 *                    heldout_hallucination_pair_accuracy?, heldout_loss?, validation_accuracy?,
 *                    validation_hallucination_pair_accuracy?, validation_loss?} (loss, accuracy:
 *                    means since the previous line; accuracy is on the training batches)
 *   checkpoint/     the best reward model: weights, config.json (heads ["reward"]), tokenizer.json,
 *                   trainer_state.json with its held-out figures
 *   last/           the latest state with optimizer moments, saved at every evaluation and at the
 *                   end: a rerun resumes from it, skipping the batches already trained on (the data
 *                   order is fixed by the run seed), so it continues the same metrics sequence
 *
 * Records whose prompt cannot be built (over-long, bad turns) are rejected with the reason (once,
 * though every epoch brings them back).
 */
import { appendFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { cutMetrics } from './metrics-log.ts';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AbortedError, CheckpointError, FactflowError, InvalidOptionError } from '../src/errors.ts';
import type { ProgressSink } from '../src/stream/progress.ts';
import type { Sink, SinkContext } from '../src/stream/stage.ts';
import type { Preference } from '../schemas/preference.ts';
import { createAdamW, type AdamWOptions } from '../src/model/adamw.ts';
import { restoreOptimizer, saveCheckpoint } from '../src/model/checkpoint.ts';
import { loadRewardTrunk } from '../src/model/reward-trunk.ts';
import { REWARD_POOLINGS, type RewardPooling } from '../src/model/config.ts';
import { FACTS_PLACEMENTS, type FactsPlacement } from '../src/model/reward-prompt.ts';
import { realTokens, type TrainExample } from '../src/model/collate.ts';
import { createImageLoader, type ImageLoader } from '../src/model/image-input.ts';
import type { MultimodalModel } from '../src/model/multimodal-model.ts';
import {
  encodeRewardPair,
  pairwiseRewardLoss,
  REWARD_CENTERING_COEF,
  rewardBatch,
  rewardForward,
  scoreExamples,
  type RewardItem,
  type RewardPromptSettings,
} from '../src/model/reward-model.ts';
import { cosineSchedule } from '../src/model/schedule.ts';
import type { TextTokenizer } from '../src/model/tokenizer.ts';
import { computeGradients, applyGradients, disposeGradients } from '../src/model/train-step.ts';

export const REWARD_METRICS_FILE = 'metrics.jsonl';
export const REWARD_CHECKPOINT_DIR = 'checkpoint';
export const REWARD_LAST_DIR = 'last';

export interface RewardMetrics {
  step: number;
  loss: number;
  /** Share of training pairs ranked right, since the previous line. */
  accuracy: number;
  lr: number;
  tokens_per_s: number;
  elapsed_s: number;
  epoch?: number;
  heldout_accuracy?: number;
  heldout_hallucination_pair_accuracy?: number | null;
  heldout_loss?: number;
  validation_accuracy?: number;
  validation_hallucination_pair_accuracy?: number | null;
  validation_loss?: number;
}

export interface HeldoutReport {
  pairs: number;
  accuracy: number;
  hallucination_pairs: number;
  /** null when no held-out pair is a hallucination pair. */
  hallucination_pair_accuracy: number | null;
  /** Mean pairwise loss (without the centring term). */
  loss: number;
  /** Held-out pairs left out because their prompt could not be built. */
  skipped: number;
  /** Mean and standard deviation of the scores of every held-out response: PPO divides by them (reward_norm). */
  score_mean: number;
  score_std: number;
}

export interface RewardTrainerOptions {
  /** SFT checkpoint folder: its trunk starts the reward model (a fresh reward head is added). */
  sft: string;
  /** Folder for metrics.jsonl, checkpoint/ and last/. */
  out: string;
  /** Fact-RLHF (captions in the prompt) or vanilla RLHF. */
  facts: boolean;
  /** Where the captions go in the reward prompt (reward-prompt.ts); default 'end'. */
  factsAt?: FactsPlacement;
  /** Which positions the reward head reads (ModelConfig.rewardPooling); default 'last'. */
  pooling?: RewardPooling;
  /** The reward head also weighs each token's likelihood under the trunk's LM head (ModelConfig.rewardLikelihood); default false. */
  likelihood?: boolean;
  /** With likelihood and facts: each response token that occurs in the captions adds (w.h + g) (ModelConfig.rewardFactMatch); default false. */
  factMatch?: boolean;
  /** Folder the records' image paths are relative to. */
  imageRoot: string;
  /** Optimizer steps (one batch each); also the cosine schedule's length. */
  steps: number;
  lr: number;
  /** Linear warmup steps. Default 0. */
  warmup?: number;
  /** Learning rate at the end of the cosine. Default lr / 10. */
  minLr?: number;
  optimizer?: AdamWOptions;
  /** Global gradient-norm clip; 0 disables. Default 1. */
  clipNorm?: number;
  /** Weight of |mean(r_chosen + r_rejected)|. Default 1e-3 (LLaVA-RLHF). */
  centeringCoef?: number;
  /** Held-out pairs scored at each evaluation (the reported figures). */
  heldout?: readonly Preference[];
  /**
   * Pairs that choose the kept checkpoint (and count patience), scored beside the held-out ones.
   * Absent or empty: the held-out pairs choose, and the reported figure is then the best of several
   * looks at the same pairs (optimistic by the noise of those pairs).
   */
  validation?: readonly Preference[];
  /** Evaluate every N steps (0: only at the end). Default 0. */
  evalEvery?: number;
  /** Evaluations without a better accuracy on the choosing pairs (validation, else held out) before stopping (0: never stop early). Default 0. */
  patience?: number;
  /** A metrics line every N steps (and at evaluations and the last step). Default 10. */
  logEvery?: number;
  /** Records per epoch (for the fractional `epoch` field). */
  examplesPerEpoch?: number;
  /** Resume from `out/last` when present. Default true. */
  resume?: boolean;
  /** Caption-order seed; default the run seed. */
  promptSeed?: number;
  /** Longest reward prompt; default the model's context length. */
  maxLength?: number;
  /**
   * Context of the reward model; longer than the SFT model's extends its position table (new
   * positions start as copies of the last one). Default: the SFT model's.
   */
  contextLength?: number;
  /** Sequences per forward pass when scoring held-out pairs. Default 32. */
  evalBatchSize?: number;
  /** Seed of the fresh reward head. Default 0. */
  seed?: number;
  progress?: ProgressSink;
  onLog?: (m: RewardMetrics) => void;
  /** Called after every step (e.g. to stop a run from outside). */
  onStep?: (step: number) => void;
}

export interface RewardTrainerSummary {
  facts: boolean;
  facts_at: FactsPlacement;
  pooling: RewardPooling;
  likelihood: boolean;
  fact_match: boolean;
  steps: number;
  resumed_from: number;
  /** Step of the kept (best) checkpoint. */
  best_step: number;
  stopped_early: boolean;
  /** Held-out figures of the kept checkpoint (null without held-out pairs). */
  heldout: HeldoutReport | null;
  /** Validation figures of the kept checkpoint, which chose it (null without validation pairs). */
  validation: HeldoutReport | null;
  pairs: number;
  tokens: number;
  tokens_per_s: number;
  ms_per_step: number;
  train_s: number;
  final_loss: number;
  final_accuracy: number;
  skipped_updates: number;
  unused_batches: number;
  rejected: number;
  checkpoint: string;
  parameters: number;
}

interface TrainerState {
  step: number;
  batches: number;
  examples: number;
  seed: number;
  facts: boolean;
  facts_at: FactsPlacement;
  pooling: RewardPooling;
  likelihood: boolean;
  fact_match?: boolean;
  best_step: number;
  best_accuracy: number;
  best_loss: number;
  /** Evaluations since the best one. */
  stale: number;
  stopped_early: boolean;
  best_heldout: HeldoutReport | null;
  best_validation?: HeldoutReport | null;
}

function nonNegativeInt(name: string, v: unknown, allowZero = true): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || (!allowZero && v === 0)) {
    throw new InvalidOptionError(name, `must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

async function exists(p: string): Promise<boolean> {
  try { await stat(p); return true; } catch { return false; }
}

/** The two reward items of a preference record: [chosen, rejected]. */
export function preferenceItems(r: Preference, pixels: Float32Array | null): [RewardItem, RewardItem] {
  const item = (response: string): RewardItem => ({ id: r.id, pixels, turns: r.conversations, response, facts: r.facts });
  const [chosen, rejected] = r.preference === 1 ? [r.output_1, r.output_2] : [r.output_2, r.output_1];
  return [item(chosen), item(rejected)];
}

async function pixelsOf(images: ImageLoader, r: Preference): Promise<Float32Array | null> {
  return r.image === null ? null : images.load(r.image);
}

/**
 * Scores every held-out pair: accuracy overall and on hallucination pairs, mean pairwise loss.
 * A pair whose prompt cannot be built is left out (counted in `skipped`).
 */
export async function evaluatePreferences(
  model: MultimodalModel,
  tokenizer: TextTokenizer,
  images: ImageLoader,
  records: readonly Preference[],
  settings: RewardPromptSettings & { batchSize?: number },
): Promise<HeldoutReport> {
  let right = 0;
  let hallRight = 0;
  let hall = 0;
  let lossSum = 0;
  let n = 0;
  let skipped = 0;
  let sum = 0;
  let sumSq = 0;
  const chunk = Math.max(1, Math.floor((settings.batchSize ?? 32) / 2));
  for (let i = 0; i < records.length; i += chunk) {
    const part: Preference[] = [];
    const examples: TrainExample[] = [];
    for (const r of records.slice(i, i + chunk)) {
      try {
        const [c, o] = preferenceItems(r, await pixelsOf(images, r));
        examples.push(...encodeRewardPair(model, tokenizer, c, o, settings));
        part.push(r);
      } catch (e) {
        if (!(e instanceof FactflowError)) throw e;
        skipped++;
      }
    }
    const s = await scoreExamples(model, tokenizer, examples, settings.batchSize ?? 32);
    part.forEach((r, k) => {
      const d = s[2 * k]! - s[2 * k + 1]!;
      sum += s[2 * k]! + s[2 * k + 1]!;
      sumSq += s[2 * k]! ** 2 + s[2 * k + 1]! ** 2;
      const ok = d > 0 ? 1 : 0;
      n++;
      right += ok;
      lossSum += Math.max(-d, 0) + Math.log1p(Math.exp(-Math.abs(d)));
      if (r.hallucination === true) { hall++; hallRight += ok; }
    });
  }
  return {
    pairs: n,
    accuracy: n > 0 ? right / n : NaN,
    hallucination_pairs: hall,
    hallucination_pair_accuracy: hall > 0 ? hallRight / hall : null,
    loss: n > 0 ? lossSum / n : NaN,
    skipped,
    score_mean: n > 0 ? sum / (2 * n) : NaN,
    score_std: n > 0 ? Math.sqrt(Math.max(0, sumSq / (2 * n) - (sum / (2 * n)) ** 2)) : NaN,
  };
}

export function rewardTrainer(options: RewardTrainerOptions): Sink<Preference[], RewardTrainerSummary> {
  if (!options || typeof options !== 'object') throw new InvalidOptionError('options', 'expected an object');
  const { out, sft } = options;
  if (typeof sft !== 'string' || sft === '') throw new InvalidOptionError('sft', 'expected the SFT checkpoint folder');
  if (typeof out !== 'string' || out === '') throw new InvalidOptionError('out', 'expected the output folder');
  if (typeof options.facts !== 'boolean') throw new InvalidOptionError('facts', `must be true or false, got ${JSON.stringify(options.facts)}`);
  const factsAt = options.factsAt ?? 'end';
  const pooling = options.pooling ?? 'last';
  if (!REWARD_POOLINGS.includes(pooling)) throw new InvalidOptionError('pooling', `must be one of ${REWARD_POOLINGS.join(', ')}, got ${JSON.stringify(pooling)}`);
  const likelihood = options.likelihood ?? false;
  if (typeof likelihood !== 'boolean') throw new InvalidOptionError('likelihood', `must be true or false, got ${JSON.stringify(likelihood)}`);
  const factMatch = options.factMatch ?? false;
  if (typeof factMatch !== 'boolean') throw new InvalidOptionError('factMatch', `must be true or false, got ${JSON.stringify(factMatch)}`);
  if (factMatch && !likelihood) throw new InvalidOptionError('factMatch', 'the caption-match term is part of the likelihood-reading head', { fix: 'set likelihood=true too, or fact_match=false' });
  if (factMatch && !options.facts) throw new InvalidOptionError('factMatch', 'without facts there are no captions to match', { fix: 'set facts=true, or fact_match=false' });
  if (!FACTS_PLACEMENTS.includes(factsAt)) throw new InvalidOptionError('factsAt', `must be one of ${FACTS_PLACEMENTS.join(', ')}, got ${JSON.stringify(factsAt)}`);
  if (typeof options.imageRoot !== 'string' || options.imageRoot === '') throw new InvalidOptionError('imageRoot', 'expected the image folder');
  const steps = nonNegativeInt('steps', options.steps, false);
  if (typeof options.lr !== 'number' || !(options.lr > 0)) throw new InvalidOptionError('lr', `must be a positive number, got ${JSON.stringify(options.lr)}`);
  const warmup = nonNegativeInt('warmup', options.warmup ?? 0);
  const minLr = options.minLr ?? options.lr / 10;
  const schedule = cosineSchedule({ peakLr: options.lr, warmupSteps: Math.min(warmup, steps), totalSteps: steps, minLr });
  const clipNorm = options.clipNorm ?? 1;
  if (typeof clipNorm !== 'number' || !(clipNorm >= 0)) throw new InvalidOptionError('clipNorm', `must be >= 0, got ${JSON.stringify(clipNorm)}`);
  const centering = options.centeringCoef ?? REWARD_CENTERING_COEF;
  if (typeof centering !== 'number' || !(centering >= 0)) throw new InvalidOptionError('centeringCoef', `must be >= 0, got ${JSON.stringify(centering)}`);
  const evalEvery = nonNegativeInt('evalEvery', options.evalEvery ?? 0);
  const patience = nonNegativeInt('patience', options.patience ?? 0);
  const logEvery = nonNegativeInt('logEvery', options.logEvery ?? 10, false);
  const evalBatchSize = nonNegativeInt('evalBatchSize', options.evalBatchSize ?? 32, false);
  const perEpoch = options.examplesPerEpoch;
  if (perEpoch !== undefined) nonNegativeInt('examplesPerEpoch', perEpoch, false);
  if (options.promptSeed !== undefined && !Number.isInteger(options.promptSeed)) throw new InvalidOptionError('promptSeed', `must be an integer, got ${options.promptSeed}`);
  if (options.maxLength !== undefined) nonNegativeInt('maxLength', options.maxLength, false);
  if (options.contextLength !== undefined) nonNegativeInt('contextLength', options.contextLength, false);
  const heldout = options.heldout ?? [];
  if (!Array.isArray(heldout)) throw new InvalidOptionError('heldout', 'expected an array of preference records');
  const validation = options.validation ?? [];
  if (!Array.isArray(validation)) throw new InvalidOptionError('validation', 'expected an array of preference records');
  if (validation.length > 0 && heldout.length === 0) throw new InvalidOptionError('validation', 'validation pairs choose among evaluations of the held-out pairs: give heldout pairs too');
  const checkpointDir = path.join(out, REWARD_CHECKPOINT_DIR);
  const lastDir = path.join(out, REWARD_LAST_DIR);
  const metricsFile = path.join(out, REWARD_METRICS_FILE);

  return {
    name: 'reward-trainer',
    async write(input: AsyncIterable<Preference[]>, ctx: SinkContext): Promise<RewardTrainerSummary> {
      await mkdir(out, { recursive: true });
      let resuming = options.resume !== false && (await exists(path.join(lastDir, 'config.json')));
      if (resuming) {
        // a run of the other kind (facts on/off) in this folder is not continued but replaced
        let saved: { facts?: unknown; facts_at?: unknown; pooling?: unknown; likelihood?: unknown; fact_match?: unknown } = {};
        try { saved = JSON.parse(await readFile(path.join(lastDir, 'trainer_state.json'), 'utf8')) as typeof saved; } catch { /* checked below */ }
        if (typeof saved.facts === 'boolean' && saved.facts !== options.facts) {
          ctx.note(`${lastDir} was trained with facts=${saved.facts}; starting a fresh facts=${options.facts} model`);
          resuming = false;
        } else if ((saved.pooling ?? 'last') !== pooling) {
          ctx.note(`${lastDir} was trained with pooling=${String(saved.pooling ?? 'last')}; starting a fresh pooling=${pooling} model`);
          resuming = false;
        } else if ((saved.likelihood ?? false) !== likelihood) {
          ctx.note(`${lastDir} was trained with likelihood=${String(saved.likelihood ?? false)}; starting a fresh likelihood=${likelihood} model`);
          resuming = false;
        } else if ((saved.fact_match ?? false) !== factMatch) {
          ctx.note(`${lastDir} was trained with fact_match=${String(saved.fact_match ?? false)}; starting a fresh fact_match=${factMatch} model`);
          resuming = false;
        } else if (options.facts && (saved.facts_at ?? 'end') !== factsAt) {
          ctx.note(`${lastDir} was trained with facts_at=${String(saved.facts_at ?? 'end')}; starting a fresh facts_at=${factsAt} model`);
          resuming = false;
        }
      }
      // the trunk: from last/ when resuming (it already has the trained head), else from SFT
      const { model, checkpoint } = await loadRewardTrunk(resuming ? lastDir : sft, { contextLength: options.contextLength, seed: options.seed ?? 0, rewardPooling: pooling, rewardLikelihood: likelihood, rewardFactMatch: factMatch });
      const tokenizer = checkpoint.tokenizer;
      const parameters = model.parameterCount();
      const promptSeed = options.promptSeed ?? ctx.seed;
      const settings = { facts: options.facts, factsAt, seed: promptSeed, maxLength: options.maxLength };
      const images = createImageLoader({ size: model.config.vision.imageSize, root: options.imageRoot });
      const optimizer = createAdamW(model.parameters(), options.optimizer);
      const state: TrainerState = {
        step: 0, batches: 0, examples: 0, seed: ctx.seed, facts: options.facts, facts_at: factsAt, pooling, likelihood, fact_match: factMatch,
        best_step: 0, best_accuracy: -1, best_loss: 1e30, stale: 0, stopped_early: false, best_heldout: null,
      };
      let resumedFrom = 0;
      try {
        if (resuming) {
          const saved = checkpoint.state as Partial<TrainerState>;
          if (typeof saved.step !== 'number' || typeof saved.batches !== 'number') {
            throw new CheckpointError('the checkpoint has no trainer step (trainer_state.json)', { file: lastDir, fix: 'remove the last/ folder to start fresh, or use another out folder' });
          }
          if (saved.seed !== ctx.seed) {
            throw new CheckpointError(`the checkpoint was trained with seed ${saved.seed}, this run has seed ${ctx.seed}: the data order would differ`, { file: lastDir, fix: `rerun with --seed ${saved.seed}, or use a fresh out folder` });
          }
          restoreOptimizer(optimizer, checkpoint);
          Object.assign(state, saved);
          resumedFrom = state.step;
          await cutMetrics(metricsFile, resumedFrom);
        } else {
          await writeFile(metricsFile, '');
        }
      } catch (e) {
        model.dispose();
        optimizer.dispose();
        throw e;
      }

      const bar = options.progress?.start('reward-train', { total: steps, unit: 'steps' });
      bar?.update(state.step);
      let tokens = 0;
      let trainMs = 0;
      let stepsHere = 0;
      let skipped = 0;
      let unused = 0;
      let rejected = 0;
      let toSkip = state.batches;
      const rejectedIds = new Set<string>();
      let iLoss = 0;
      let iAcc = 0;
      let iSteps = 0;
      let iTokens = 0;
      let iMs = 0;
      let lastLoss = NaN;
      let lastAcc = NaN;
      let lastEvalStep = -1;
      const began = performance.now();

      const saveLast = () => saveCheckpoint(lastDir, { model, tokenizer, optimizer, state: { ...state } });
      const log = async (report?: HeldoutReport, chooser?: HeldoutReport): Promise<void> => {
        if (iSteps === 0 && report === undefined) return;
        const m: RewardMetrics = {
          step: state.step,
          loss: iSteps > 0 ? iLoss / iSteps : lastLoss,
          accuracy: iSteps > 0 ? iAcc / iSteps : lastAcc,
          lr: schedule(Math.max(0, state.step - 1)),
          tokens_per_s: iMs > 0 ? Math.round((iTokens * 1000) / iMs) : 0,
          elapsed_s: Math.round(performance.now() - began) / 1000,
          ...(perEpoch ? { epoch: Math.round((state.examples / perEpoch) * 1000) / 1000 } : {}),
          ...(report ? {
            heldout_accuracy: report.accuracy,
            heldout_hallucination_pair_accuracy: report.hallucination_pair_accuracy,
            heldout_loss: report.loss,
          } : {}),
          ...(chooser && chooser !== report ? {
            validation_accuracy: chooser.accuracy,
            validation_hallucination_pair_accuracy: chooser.hallucination_pair_accuracy,
            validation_loss: chooser.loss,
          } : {}),
        };
        if (iSteps > 0) { lastLoss = m.loss; lastAcc = m.accuracy; }
        iLoss = iAcc = iSteps = iTokens = iMs = 0;
        await appendFile(metricsFile, JSON.stringify(m) + '\n');
        options.onLog?.(m);
      };
      /**
       * Held-out evaluation; keeps the best model in checkpoint/ and counts patience. The validation
       * pairs choose when there are any, so the held-out figures of the kept model are not selected on.
       */
      const evaluate = async (): Promise<[HeldoutReport, HeldoutReport]> => {
        const report = await evaluatePreferences(model, tokenizer, images, heldout, { ...settings, batchSize: evalBatchSize });
        const chooser = validation.length > 0 ? await evaluatePreferences(model, tokenizer, images, validation, { ...settings, batchSize: evalBatchSize }) : report;
        lastEvalStep = state.step;
        // equal accuracy counts as better only with a clearly lower loss (ties are common on small sets)
        const better = chooser.accuracy > state.best_accuracy || (chooser.accuracy === state.best_accuracy && chooser.loss < state.best_loss - 1e-3);
        if (better) {
          const best_validation = validation.length > 0 ? chooser : null;
          Object.assign(state, { best_step: state.step, best_accuracy: chooser.accuracy, best_loss: chooser.loss, stale: 0, best_heldout: report, best_validation });
          await saveCheckpoint(checkpointDir, { model, tokenizer, state: { step: state.step, facts: options.facts, facts_at: factsAt, seed: ctx.seed, heldout: report, validation: best_validation } });
        } else {
          state.stale++;
          if (patience > 0 && state.stale >= patience) state.stopped_early = true;
        }
        return [report, chooser];
      };

      try {
        for await (const records of input) {
          if (ctx.signal.aborted) throw new AbortedError('training was aborted', { cause: ctx.signal.reason });
          if (toSkip > 0) { toSkip--; continue; }
          if (state.step >= steps || state.stopped_early) { unused++; continue; }
          // encode both responses of every pair; a record that cannot be encoded is rejected
          const chosen = [];
          const other = [];
          for (const r of records) {
            try {
              const [c, o] = preferenceItems(r, await pixelsOf(images, r));
              const [ec, eo] = encodeRewardPair(model, tokenizer, c, o, settings);
              chosen.push(ec);
              other.push(eo);
            } catch (e) {
              if (!(e instanceof FactflowError)) throw e;
              // a record comes back every epoch: report it once
              if (!rejectedIds.has(r.id)) {
                rejectedIds.add(r.id);
                rejected++;
                ctx.reject(r, e);
              }
            }
          }
          state.batches++;
          state.examples += records.length;
          if (chosen.length === 0) continue;
          const t0 = performance.now();
          const n = chosen.length;
          const batch = rewardBatch(model, tokenizer, [...chosen, ...other]);
          let margins: tf.Tensor | undefined;
          const { loss, grads } = await computeGradients(model, () => {
            const s = rewardForward(model, batch);
            const c = tf.slice(s, 0, n) as tf.Tensor1D;
            const o = tf.slice(s, n, n) as tf.Tensor1D;
            margins = tf.keep(tf.sub(c, o));
            return pairwiseRewardLoss(c, o, centering);
          });
          const d = await margins!.data();
          margins!.dispose();
          let accuracy = 0;
          for (let i = 0; i < n; i++) accuracy += d[i]! > 0 ? 1 : 0;
          accuracy /= n;
          if (!Number.isFinite(loss)) {
            disposeGradients(grads);
            skipped++;
          } else if ((await applyGradients(optimizer, grads, { lr: schedule(state.step), clipNorm })).skipped) skipped++;
          const ms = performance.now() - t0;
          const real = realTokens(batch);
          state.step++;
          stepsHere++;
          trainMs += ms;
          tokens += real;
          if (Number.isFinite(loss)) { iLoss += loss; iAcc += accuracy; iSteps++; }
          iTokens += real;
          iMs += ms;
          const note = `step ${state.step}/${steps} loss ${loss.toFixed(3)} acc ${accuracy.toFixed(2)} ${Math.round((iTokens * 1000) / Math.max(iMs, 1))} tok/s`;
          bar?.update(state.step, note);
          ctx.note(note);

          const last = state.step === steps;
          if (heldout.length > 0 && ((evalEvery > 0 && state.step % evalEvery === 0) || last)) {
            await log(...(await evaluate()));
            await saveLast();
          } else if (state.step % logEvery === 0 || last) {
            await log();
            if (last) await saveLast();
          }
          options.onStep?.(state.step);
        }
        if (ctx.signal.aborted) throw new AbortedError('training was aborted', { cause: ctx.signal.reason });
        // the data ran out before `steps` (or nothing was trained here): end with an evaluation
        if (stepsHere > 0 && state.step < steps && !state.stopped_early) {
          if (heldout.length > 0 && lastEvalStep !== state.step) await log(...(await evaluate()));
          else await log();
          await saveLast();
        }
        if (heldout.length === 0 && (stepsHere > 0 || !(await exists(path.join(checkpointDir, 'config.json'))))) {
          // nothing to select by: the final model is the kept one
          state.best_step = state.step;
          await saveCheckpoint(checkpointDir, { model, tokenizer, state: { step: state.step, facts: options.facts, facts_at: factsAt, seed: ctx.seed, heldout: null } });
        }
        if (heldout.length > 0 && state.best_heldout === null) await evaluate();
      } finally {
        bar?.stop();
        optimizer.dispose();
        model.dispose();
      }
      return {
        facts: options.facts,
        facts_at: factsAt,
        pooling,
        likelihood,
        fact_match: factMatch,
        steps: state.step,
        resumed_from: resumedFrom,
        best_step: state.best_step,
        stopped_early: state.stopped_early,
        heldout: state.best_heldout,
        validation: state.best_validation ?? null,
        pairs: state.examples,
        tokens,
        tokens_per_s: trainMs > 0 ? Math.round((tokens * 1000) / trainMs) : 0,
        ms_per_step: stepsHere > 0 ? Math.round((trainMs / stepsHere) * 10) / 10 : 0,
        train_s: Math.round(trainMs) / 1000,
        final_loss: iSteps > 0 ? iLoss / iSteps : lastLoss,
        final_accuracy: iSteps > 0 ? iAcc / iSteps : lastAcc,
        skipped_updates: skipped,
        unused_batches: unused,
        rejected,
        checkpoint: checkpointDir,
        parameters,
      };
    },
  };
}
