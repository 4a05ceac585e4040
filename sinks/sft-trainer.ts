/**
 * Supervised fine-tuning as a sink: it consumes batches of encoded examples (tokenize-conversation
 * -> bucket-by-length) and trains the model on them: masked cross-entropy on assistant tokens,
 * global-norm clipping, AdamW, linear warmup then cosine decay. Into `out` it writes:
 *
 *   metrics.jsonl   one object per logged step: {step, loss, lr, grad_norm, tokens_per_s, epoch,
 *                   elapsed_s, heldout_loss?} (loss and grad_norm: means since the last line)
 *   checkpoint/     every `checkpointEvery` steps and at the end (checkpoint.ts: weights
 *                   .safetensors, config.json, tokenizer.json, optimizer state, trainer_state.json)
 *
 * Resume: when `out/checkpoint` exists, weights, optimizer moments and the step are restored and
 * the batches already trained on are skipped (the data order is deterministic for a run seed),
 * so the losses that follow equal those of an uninterrupted run. metrics.jsonl is cut back to
 * the checkpoint's step first.
 *
 * With `threads` > 1 each step's rows are split over worker threads holding model replicas
 * (src/model/data-parallel.ts): wasm is single-threaded in Node, so this is what uses a second core.
 *
 * After `steps` steps the rest of the input is drained without training (so every stage's counts
 * still add up). Aborts are checked between steps, so a checkpoint is never half-written by us
 * (saveCheckpoint is atomic besides).
 */
import { mkdir, stat, writeFile, appendFile } from 'node:fs/promises';
import { cutMetrics } from './metrics-log.ts';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AbortedError, CheckpointError, InvalidOptionError } from '../src/errors.ts';
import type { ProgressSink } from '../src/stream/progress.ts';
import type { Sink, SinkContext } from '../src/stream/stage.ts';
import { createAdamW, type AdamW, type AdamWOptions } from '../src/model/adamw.ts';
import { assignWeights, loadCheckpoint, restoreOptimizer, saveCheckpoint } from '../src/model/checkpoint.ts';
import { collate, realTokens, type LossWeighting, type TrainExample } from '../src/model/collate.ts';
import { configDifferences, imageTokenCount } from '../src/model/config.ts';
import { createDataParallel, splitRows, type DataParallel } from '../src/model/data-parallel.ts';
import type { MultimodalModel } from '../src/model/multimodal-model.ts';
import { cosineSchedule } from '../src/model/schedule.ts';
import type { TextTokenizer } from '../src/model/tokenizer.ts';
import { supervisedLoss, trainableParameters, trainStep, type StepResult, type TrainBatch } from '../src/model/train-step.ts';

export const METRICS_FILE = 'metrics.jsonl';
export const CHECKPOINT_DIR = 'checkpoint';

export interface SftMetrics {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens_per_s: number;
  /** Examples seen / examples per epoch (fractional); absent when the epoch size is unknown. */
  epoch?: number;
  elapsed_s: number;
  heldout_loss?: number;
}

export interface SftTrainerOptions {
  model: MultimodalModel;
  tokenizer: TextTokenizer;
  /** Folder for metrics.jsonl and checkpoint/. */
  out: string;
  /** Optimizer steps (one batch each); also the cosine schedule's length. */
  steps: number;
  /** Peak learning rate. */
  lr: number;
  /** Linear warmup steps. Default 0. */
  warmup?: number;
  /** Learning rate at the end of the cosine. Default lr / 10. */
  minLr?: number;
  /** AdamW options; weight decay default 0. */
  optimizer?: AdamWOptions;
  /** Global gradient-norm clip; 0 disables. Default 1. */
  clipNorm?: number;
  /** Checkpoint every N steps (0: only at the end). Default 0. */
  checkpointEvery?: number;
  /** Held-out loss every N steps (0: only at the end). Default 0. */
  evalEvery?: number;
  /** Held-out batches (collated) for the held-out loss. */
  heldout?: readonly TrainBatch[];
  /** A metrics line every N steps (and at eval steps and the last step). Default 10. */
  logEvery?: number;
  /** Records per epoch (for the fractional `epoch` field). */
  examplesPerEpoch?: number;
  /** Restore from `out/checkpoint` when present. Default true. */
  resume?: boolean;
  /** Batch length padded up to a multiple of this. Default 8. */
  padMultiple?: number;
  /** How answer tokens share the loss: per token (default) or per assistant turn (collate.ts). */
  lossWeighting?: LossWeighting;
  /**
   * CPU threads computing gradients (data parallel, src/model/data-parallel.ts): wasm runs on one
   * core in Node, so 2 uses a 2-core machine fully. Losses then differ from threads=1 by float
   * rounding; runs with the same thread count are identical. Default 1.
   */
  threads?: number;
  /**
   * Parameter-name prefixes kept as they are (e.g. `['vision.']`: LLaVA trains its projector and
   * language model on a frozen vision encoder). They get no gradient and no optimizer state.
   */
  frozen?: readonly string[];
  /** A "train" progress bar (steps). */
  progress?: ProgressSink;
  /** Called after every logged metrics line (tests, custom reporting). */
  onLog?: (m: SftMetrics) => void;
  /** Called after every step with the step number (e.g. to stop a run from outside). */
  onStep?: (step: number) => void;
}

export interface SftTrainerSummary {
  steps: number;
  /** Step the run resumed from (0: fresh). */
  resumed_from: number;
  examples: number;
  /** Real (non-padding) tokens trained on in this process. */
  tokens: number;
  /** Assistant tokens the loss covered in this process. */
  loss_tokens: number;
  epochs?: number;
  /** Mean loss over the last logged interval. */
  final_loss: number;
  heldout_loss?: number;
  /** Training tokens per second in this process (steps only, not eval or checkpoints). */
  tokens_per_s: number;
  /** Mean milliseconds per step in this process. */
  ms_per_step: number;
  train_s: number;
  skipped_updates: number;
  /** Batches consumed after the last step (drained, not trained). */
  unused_batches: number;
  checkpoint: string;
  parameters: number;
}

interface TrainerState {
  step: number;
  batches: number;
  examples: number;
  seed: number;
}

function positiveInt(name: string, v: unknown, allowZero = false): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || (!allowZero && v === 0)) {
    throw new InvalidOptionError(name, `must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

async function exists(p: string): Promise<boolean> {
  try { await stat(p); return true; } catch { return false; }
}

/** Mean loss over held-out batches, weighted by their loss tokens (forward only). */
export async function heldoutLoss(model: MultimodalModel, batches: readonly TrainBatch[]): Promise<number> {
  let sum = 0;
  let tokens = 0;
  for (const b of batches) {
    let n = 0;
    const loss = tf.tidy(() => {
      const r = supervisedLoss(model, b);
      n = r.tokens;
      return r.loss;
    });
    const value = (await loss.data())[0]!;
    loss.dispose();
    sum += value * n;
    tokens += n;
  }
  return tokens > 0 ? sum / tokens : NaN;
}

export function sftTrainer(options: SftTrainerOptions): Sink<TrainExample[], SftTrainerSummary> {
  if (!options || typeof options !== 'object') throw new InvalidOptionError('options', 'expected an object');
  const { model, tokenizer, out } = options;
  if (!model || typeof model.forward !== 'function') throw new InvalidOptionError('model', 'expected a model (createModel / loadModel)');
  if (!tokenizer || typeof tokenizer.encode !== 'function') throw new InvalidOptionError('tokenizer', 'expected a TextTokenizer');
  if (typeof out !== 'string' || out === '') throw new InvalidOptionError('out', 'expected the output folder');
  const steps = positiveInt('steps', options.steps);
  if (typeof options.lr !== 'number' || !(options.lr > 0)) throw new InvalidOptionError('lr', `must be a positive number, got ${JSON.stringify(options.lr)}`);
  const warmup = positiveInt('warmup', options.warmup ?? 0, true);
  const minLr = options.minLr ?? options.lr / 10;
  const schedule = cosineSchedule({ peakLr: options.lr, warmupSteps: warmup, totalSteps: steps, minLr });
  const clipNorm = options.clipNorm ?? 1;
  if (typeof clipNorm !== 'number' || !(clipNorm >= 0)) throw new InvalidOptionError('clipNorm', `must be >= 0, got ${JSON.stringify(clipNorm)}`);
  const checkpointEvery = positiveInt('checkpointEvery', options.checkpointEvery ?? 0, true);
  const evalEvery = positiveInt('evalEvery', options.evalEvery ?? 0, true);
  const logEvery = positiveInt('logEvery', options.logEvery ?? 10);
  const padMultiple = positiveInt('padMultiple', options.padMultiple ?? 8);
  const perEpoch = options.examplesPerEpoch;
  if (perEpoch !== undefined) positiveInt('examplesPerEpoch', perEpoch);
  const heldout = options.heldout ?? [];
  const threads = positiveInt('threads', options.threads ?? 1);
  if (!model.config.heads.includes('lm')) throw new InvalidOptionError('model.heads', 'the SFT trainer needs a model with an "lm" head');
  const frozen = [...(options.frozen ?? [])];
  const trainable = trainableParameters(model, frozen);
  if (trainable.length === 0) throw new InvalidOptionError('frozen', `freezes every parameter (${JSON.stringify(frozen)})`);
  const cfg = model.config;
  const collateOptions = { padId: tokenizer.padId, imageTokens: imageTokenCount(cfg), pixelsPerImage: cfg.vision.imageSize ** 2 * 3, padMultiple, lossWeighting: options.lossWeighting ?? 'token' };
  const checkpointDir = path.join(out, CHECKPOINT_DIR);
  const metricsFile = path.join(out, METRICS_FILE);

  return {
    name: 'sft-trainer',
    async write(input: AsyncIterable<TrainExample[]>, ctx: SinkContext): Promise<SftTrainerSummary> {
      await mkdir(out, { recursive: true });
      const optimizer = createAdamW(trainable, options.optimizer);
      const state: TrainerState = { step: 0, batches: 0, examples: 0, seed: ctx.seed };
      let resumedFrom = 0;
      if (options.resume !== false && (await exists(path.join(checkpointDir, 'config.json')))) {
        const ck = await loadCheckpoint(checkpointDir);
        const saved = ck.state as Partial<TrainerState>;
        if (typeof saved.step !== 'number' || typeof saved.batches !== 'number') {
          throw new CheckpointError('the checkpoint has no trainer step (trainer_state.json)', { file: checkpointDir, fix: 'remove the checkpoint folder to start fresh, or point out= at another folder' });
        }
        if (saved.seed !== undefined && saved.seed !== ctx.seed) {
          throw new CheckpointError(`the checkpoint was trained with seed ${saved.seed}, this run has seed ${ctx.seed}: the data order would differ`, { file: checkpointDir, fix: `rerun with --seed ${saved.seed}, or use a fresh out folder` });
        }
        const differs = configDifferences(ck.config, cfg);
        if (differs.length > 0) {
          throw new CheckpointError(`the checkpoint was trained as another model (${differs.join(', ')}): resuming would load its weights into a model that computes something else`, {
            file: checkpointDir, fix: 'rerun with the settings it was trained with (its config.json), or use a fresh out folder',
          });
        }
        assignWeights(model, ck.weights, { file: checkpointDir });
        restoreOptimizer(optimizer, ck);
        Object.assign(state, { step: saved.step, batches: saved.batches, examples: saved.examples ?? 0 });
        resumedFrom = saved.step;
        await cutMetrics(metricsFile, resumedFrom);
      } else {
        await writeFile(metricsFile, '');
      }
      const parallel = threads > 1 ? await createDataParallel(model, { threads, backend: tf.getBackend(), frozen }) : undefined;
      try {
        return await loop(input, ctx, optimizer, state, resumedFrom, parallel);
      } finally {
        await parallel?.close();
        optimizer.dispose();
      }
    },
  };

  async function loop(input: AsyncIterable<TrainExample[]>, ctx: SinkContext, optimizer: AdamW, state: TrainerState, resumedFrom: number, parallel: DataParallel | undefined): Promise<SftTrainerSummary> {
    const bar = options.progress?.start('train', { total: steps, unit: 'steps' });
    bar?.update(state.step);

    let tokens = 0;
    let lossTokens = 0;
    let trainMs = 0;
    let stepsHere = 0;
    let skipped = 0;
    let unused = 0;
    let toSkip = state.batches;
    let lastHeldout: number | undefined;
    // interval accumulators for the metrics line
    let iLoss = 0;
    let iNorm = 0;
    let iSteps = 0;
    let iTokens = 0;
    let iMs = 0;
    let lastLoss = NaN;
    const began = performance.now();

    const save = async (): Promise<void> => {
      await saveCheckpoint(checkpointDir, { model, tokenizer, optimizer, state: { ...state } });
    };
    const log = async (heldoutLossValue?: number): Promise<void> => {
      if (iSteps === 0 && heldoutLossValue === undefined) return;
      const m: SftMetrics = {
        step: state.step,
        loss: iSteps > 0 ? iLoss / iSteps : lastLoss,
        lr: schedule(Math.max(0, state.step - 1)),
        grad_norm: iSteps > 0 ? iNorm / iSteps : NaN,
        tokens_per_s: iMs > 0 ? Math.round((iTokens * 1000) / iMs) : 0,
        ...(perEpoch ? { epoch: Math.round((state.examples / perEpoch) * 1000) / 1000 } : {}),
        elapsed_s: Math.round(performance.now() - began) / 1000,
        ...(heldoutLossValue !== undefined ? { heldout_loss: heldoutLossValue } : {}),
      };
      if (iSteps > 0) lastLoss = m.loss;
      iLoss = iNorm = iSteps = iTokens = iMs = 0;
      await appendFile(metricsFile, JSON.stringify(m) + '\n');
      options.onLog?.(m);
    };

    for await (const examples of input) {
      if (ctx.signal.aborted) throw new AbortedError('training was aborted', { cause: ctx.signal.reason });
      if (toSkip > 0) { toSkip--; continue; }
      if (state.step >= steps) { unused++; continue; }
      if (examples.length === 0) continue;
      const t0 = performance.now();
      let real = 0;
      let r: StepResult;
      if (parallel) {
        const parts = splitRows(examples, parallel.threads).map((rows) => collate(rows, collateOptions));
        for (const b of parts) real += realTokens(b);
        r = await parallel.step(parts, optimizer, { lr: schedule(state.step), clipNorm });
      } else {
        const batch = collate(examples, collateOptions);
        real = realTokens(batch);
        r = await trainStep(model, optimizer, batch, { lr: schedule(state.step), clipNorm, params: trainable });
      }
      const ms = performance.now() - t0;
      state.step++;
      state.batches++;
      state.examples += examples.length;
      stepsHere++;
      trainMs += ms;
      tokens += real;
      lossTokens += r.tokens;
      if (r.skipped) skipped++;
      if (Number.isFinite(r.loss)) { iLoss += r.loss; iNorm += r.gradNorm; iSteps++; }
      iTokens += real;
      iMs += ms;
      const tps = iMs > 0 ? (iTokens * 1000) / iMs : 0;
      const note = `step ${state.step}/${steps} loss ${Number.isFinite(r.loss) ? r.loss.toFixed(3) : r.loss} ${Math.round(tps)} tok/s`;
      bar?.update(state.step, note);
      ctx.note(note);

      const last = state.step === steps;
      const evalNow = heldout.length > 0 && ((evalEvery > 0 && state.step % evalEvery === 0) || last);
      if (evalNow) {
        lastHeldout = await heldoutLoss(model, heldout);
        await log(lastHeldout);
      } else if (state.step % logEvery === 0 || last) await log();
      if ((checkpointEvery > 0 && state.step % checkpointEvery === 0) || last) await save();
      options.onStep?.(state.step);
    }
    if (ctx.signal.aborted) throw new AbortedError('training was aborted', { cause: ctx.signal.reason });
    if (stepsHere > 0 && state.step < steps) {
      // the data ran out before `steps`: still end with a checkpoint and a held-out loss
      if (heldout.length > 0) lastHeldout = await heldoutLoss(model, heldout);
      await log(lastHeldout);
      await save();
    } else if (stepsHere === 0 && heldout.length > 0) {
      lastHeldout = await heldoutLoss(model, heldout);
    }
    bar?.stop();
    return {
      steps: state.step,
      resumed_from: resumedFrom,
      examples: state.examples,
      tokens,
      loss_tokens: lossTokens,
      ...(perEpoch ? { epochs: Math.round((state.examples / perEpoch) * 1000) / 1000 } : {}),
      final_loss: iSteps > 0 ? iLoss / iSteps : lastLoss,
      ...(lastHeldout !== undefined ? { heldout_loss: lastHeldout } : {}),
      tokens_per_s: trainMs > 0 ? Math.round((tokens * 1000) / trainMs) : 0,
      ms_per_step: stepsHere > 0 ? Math.round((trainMs / stepsHere) * 10) / 10 : 0,
      train_s: Math.round(trainMs) / 1000,
      skipped_updates: skipped,
      unused_batches: unused,
      checkpoint: checkpointDir,
      parameters: model.parameterCount(),
    };
  }
}
