/**
 * Data-parallel supervised steps on CPU threads. tfjs runs wasm single-threaded in Node, so on a
 * 2-core machine one core idles during training. Here worker threads hold replicas of the model;
 * each step the batch's rows are split into `threads` parts, every thread computes the gradients
 * of its part's masked cross-entropy, and the main thread combines them weighted by each part's
 * loss tokens (sum of part means x tokens / total tokens = the full-batch mean's gradient, up to
 * float rounding) before one clipped AdamW update. Weights reach the replicas through a
 * SharedArrayBuffer before every step; gradients come back through one buffer per worker.
 *
 * Deterministic for a given thread count (fixed split, fixed summation order). A parameter no
 * part has a gradient for (the vision tower on a text-only batch) is left out of the update, as
 * in a single-threaded step.
 */
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { BackendError, InvalidOptionError } from '../errors.ts';
import type { AdamW } from './adamw.ts';
import type { ModelConfig } from './config.ts';
import type { MultimodalModel } from './multimodal-model.ts';
import { applyGradients, computeGradients, disposeGradients, supervisedLoss, trainableParameters, type ApplyOptions, type StepResult, type TrainBatch } from './train-step.ts';

export interface DataParallelOptions {
  /** Threads in all, the main one included (>= 2; 1 needs no data parallelism). */
  threads: number;
  /** tfjs backend the workers select (`wasm` or `cpu`). */
  backend: string;
  /** Parameter-name prefixes that do not train (no gradients computed for them). */
  frozen?: readonly string[];
}

export interface DataParallel {
  readonly threads: number;
  /** One step on `parts` (at most `threads` batches: the rows of one logical batch). */
  step(parts: readonly TrainBatch[], optimizer: AdamW, options: ApplyOptions): Promise<StepResult>;
  close(): Promise<void>;
}

/** What a worker receives at start (see grad-worker.ts). */
export interface GradWorkerData {
  config: ModelConfig;
  backend: string;
  names: string[];
  offsets: number[];
  sizes: number[];
  weights: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  frozen: string[];
}

export type GradWorkerReply =
  | { type: 'ready' }
  | { type: 'done'; loss: number; tokens: number; has: Uint8Array }
  | { type: 'error'; message: string; stack?: string };

interface Handle {
  worker: Worker;
  grads: Float32Array;
  /** Resolves with the next reply. */
  next(): Promise<GradWorkerReply>;
}

function startWorker(data: GradWorkerData): Handle {
  const worker = new Worker(new URL('./grad-worker-boot.mjs', import.meta.url), { workerData: data });
  const queue: GradWorkerReply[] = [];
  const waiting: { resolve: (r: GradWorkerReply) => void; reject: (e: Error) => void }[] = [];
  let failure: Error | undefined;
  worker.on('message', (m: GradWorkerReply) => {
    const w = waiting.shift();
    if (w) w.resolve(m); else queue.push(m);
  });
  const fail = (e: Error): void => {
    failure = e;
    for (const w of waiting.splice(0)) w.reject(e);
  };
  worker.on('error', (e) => fail(new BackendError(`training worker failed: ${e.message}`, { cause: e })));
  worker.on('exit', (code) => { if (code !== 0) fail(new BackendError(`training worker exited with code ${code}`)); });
  return {
    worker,
    grads: new Float32Array(data.grads),
    next: () => {
      if (queue.length > 0) return Promise.resolve(queue.shift()!);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
  };
}

function expectReply(r: GradWorkerReply, type: 'ready' | 'done'): void {
  if (r.type === 'error') throw new BackendError(`training worker: ${r.message}`, { fix: 'run with threads=1 to see the error in the main thread' });
  if (r.type !== type) throw new BackendError(`training worker sent "${r.type}", expected "${type}"`);
}

/** Starts `threads - 1` workers holding replicas of `model`. */
export async function createDataParallel(model: MultimodalModel, options: DataParallelOptions): Promise<DataParallel> {
  const { threads, backend } = options;
  const frozen = [...(options.frozen ?? [])];
  if (!Number.isInteger(threads) || threads < 2) throw new InvalidOptionError('threads', `must be an integer >= 2, got ${threads}`);
  if (backend !== 'wasm' && backend !== 'cpu') throw new InvalidOptionError('threads', `data-parallel threads are for the CPU backends (wasm, cpu), not ${backend}`, { fix: 'use threads=1 on a GPU backend' });
  const params = model.parameters();
  const trainable = trainableParameters(model, frozen);
  const names = params.map((p) => p.name);
  const sizes = params.map((p) => p.shape.reduce((a, b) => a * b, 1));
  const offsets: number[] = [];
  let total = 0;
  for (const s of sizes) { offsets.push(total); total += s; }
  const weightsBuffer = new SharedArrayBuffer(total * 4);
  const weights = new Float32Array(weightsBuffer);
  const handles: Handle[] = [];
  try {
    for (let i = 1; i < threads; i++) {
      handles.push(startWorker({ config: model.config, backend, names, offsets, sizes, weights: weightsBuffer, grads: new SharedArrayBuffer(total * 4), frozen }));
    }
    for (const h of handles) expectReply(await h.next(), 'ready');
  } catch (e) {
    await Promise.all(handles.map((h) => h.worker.terminate()));
    throw e;
  }

  const publishWeights = (): void => {
    params.forEach((p, i) => weights.set(p.variable.dataSync() as Float32Array, offsets[i]!));
  };

  return {
    threads,
    async step(parts, optimizer, applyOptions) {
      if (parts.length === 0 || parts.length > threads) throw new InvalidOptionError('parts', `expected 1..${threads} parts, got ${parts.length}`);
      publishWeights();
      const remote = parts.slice(1);
      remote.forEach((batch, k) => handles[k]!.worker.postMessage({ type: 'step', batch }));
      let mainTokens = 0;
      const mine = await computeGradients(model, () => {
        const r = supervisedLoss(model, parts[0]!);
        mainTokens = r.tokens;
        return r.loss;
      }, trainable);
      const replies: { loss: number; tokens: number; has: Uint8Array }[] = [];
      try {
        for (let k = 0; k < remote.length; k++) {
          const r = await handles[k]!.next();
          expectReply(r, 'done');
          replies.push(r as { loss: number; tokens: number; has: Uint8Array });
        }
      } catch (e) {
        disposeGradients(mine.grads);
        throw e;
      }
      const tokens = mainTokens + replies.reduce((a, r) => a + r.tokens, 0);
      const loss = (mine.loss * mainTokens + replies.reduce((a, r) => a + r.loss * r.tokens, 0)) / tokens;
      const combined = new Map<string, tf.Tensor>();
      params.forEach((p, i) => {
        const terms: tf.Tensor[] = [];
        const own = mine.grads.get(p.name);
        if (own) terms.push(tf.mul(own, mainTokens / tokens));
        replies.forEach((r, k) => {
          if (!r.has[i]) return;
          const g = tf.tensor(handles[k]!.grads.subarray(offsets[i]!, offsets[i]! + sizes[i]!), p.shape as number[], 'float32');
          terms.push(tf.mul(g, r.tokens / tokens));
          g.dispose();
        });
        if (terms.length === 0) return;
        combined.set(p.name, terms.length === 1 ? terms[0]! : tf.addN(terms));
        if (terms.length > 1) for (const t of terms) t.dispose();
      });
      disposeGradients(mine.grads);
      if (!Number.isFinite(loss)) {
        disposeGradients(combined);
        return { loss, gradNorm: NaN, tokens, skipped: true };
      }
      const { gradNorm, skipped } = await applyGradients(optimizer, combined, applyOptions);
      return { loss, gradNorm, tokens, skipped };
    },
    async close() {
      await Promise.all(handles.map((h) => h.worker.terminate()));
    },
  };
}

/** Splits a batch's examples into at most `parts` contiguous shares of near-equal size. */
export function splitRows<T>(items: readonly T[], parts: number): T[][] {
  const n = Math.min(parts, items.length);
  const out: T[][] = [];
  let start = 0;
  for (let k = 0; k < n; k++) {
    const size = Math.ceil((items.length - start) / (n - k));
    out.push(items.slice(start, start + size));
    start += size;
  }
  return out;
}
