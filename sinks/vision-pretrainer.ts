/**
 * Vision pretraining as a sink (src/model/vision-pretrain.ts): consumes batches of tagged images
 * and trains the vision encoder, with a throw-away linear tag head, to tell which tags each image
 * holds. Writes `vision_metrics.jsonl` into `out` (step, loss, lr, elapsed_s, and at eval steps the
 * held-out tag scores). The model's other parts are untouched. Batches after `steps` are drained.
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AbortedError, InvalidOptionError } from '../src/errors.ts';
import type { ProgressSink } from '../src/stream/progress.ts';
import type { Sink, SinkContext } from '../src/stream/stage.ts';
import { createAdamW } from '../src/model/adamw.ts';
import type { MultimodalModel } from '../src/model/multimodal-model.ts';
import { cosineSchedule } from '../src/model/schedule.ts';
import { applyGradients, computeGradients } from '../src/model/train-step.ts';
import { createTagHead, predictTags, scoreTagGroups, scoreTags, tagLoss, visionParameters, type TagHead, type TagPooling, type TagScores } from '../src/model/vision-pretrain.ts';

export const VISION_METRICS_FILE = 'vision_metrics.jsonl';

/** One image ready for pretraining: normalised pixels (image-input.ts) and its 0/1 tags. */
export interface TaggedImage {
  image: string;
  pixels: Float32Array;
  tags: Float32Array;
}

export interface VisionPretrainerOptions {
  model: MultimodalModel;
  /** Tags per image (the length of every `tags` vector). */
  tags: number;
  steps: number;
  lr: number;
  warmup?: number;
  /** Folder for vision_metrics.jsonl. */
  out: string;
  /** Images scored every `evalEvery` steps and at the end. */
  heldout?: readonly TaggedImage[];
  /** Tag columns scored apart at the end, per group name (e.g. colours, shapes, kinds). */
  groups?: Readonly<Record<string, readonly number[]>>;
  evalEvery?: number;
  logEvery?: number;
  clipNorm?: number;
  seed?: number;
  /** How the tag head pools the patches (vision-pretrain.ts); default 'max'. */
  pooling?: TagPooling;
  progress?: ProgressSink;
  /** Called with the trained tag head before it is disposed (sft-train aligns the projector with it). */
  withHead?: (head: TagHead) => Promise<void> | void;
}

export interface VisionPretrainerSummary {
  steps: number;
  images: number;
  final_loss: number;
  /** Held-out tag scores at the end (absent without held-out images). */
  heldout?: TagScores & { images: number; by_group?: Record<string, TagScores> };
  ms_per_step: number;
  unused_batches: number;
}

function flatten(items: readonly TaggedImage[], field: 'pixels' | 'tags'): Float32Array {
  const size = items[0]![field].length;
  const out = new Float32Array(items.length * size);
  items.forEach((x, i) => out.set(x[field], i * size));
  return out;
}

export function visionPretrainer(options: VisionPretrainerOptions): Sink<TaggedImage[], VisionPretrainerSummary> {
  const { model, out } = options;
  if (!Number.isInteger(options.steps) || options.steps < 1) throw new InvalidOptionError('steps', `must be a positive integer, got ${options.steps}`);
  if (!Number.isInteger(options.tags) || options.tags < 1) throw new InvalidOptionError('tags', `must be a positive integer, got ${options.tags}`);
  if (!(options.lr > 0)) throw new InvalidOptionError('lr', `must be positive, got ${options.lr}`);
  const steps = options.steps;
  const schedule = cosineSchedule({ peakLr: options.lr, warmupSteps: Math.min(options.warmup ?? 0, steps), totalSteps: steps, minLr: options.lr / 10 });
  const evalEvery = options.evalEvery ?? 0;
  const logEvery = options.logEvery ?? 10;
  const heldout = options.heldout ?? [];
  const metricsFile = path.join(out, VISION_METRICS_FILE);

  const evaluate = async (head: ReturnType<typeof createTagHead>, byGroup = false): Promise<TagScores & { images: number; by_group?: Record<string, TagScores> }> => {
    const probs: number[] = [];
    for (let i = 0; i < heldout.length; i += 64) {
      const part = heldout.slice(i, i + 64);
      probs.push(...await predictTags(model, head, flatten(part, 'pixels'), part.length));
    }
    const labels = flatten(heldout, 'tags');
    const scores = { ...scoreTags(probs, labels, options.tags), images: heldout.length };
    return byGroup && options.groups ? { ...scores, by_group: scoreTagGroups(probs, labels, options.tags, options.groups) } : scores;
  };

  return {
    name: 'vision-pretrainer',
    async write(input: AsyncIterable<TaggedImage[]>, ctx: SinkContext): Promise<VisionPretrainerSummary> {
      await mkdir(out, { recursive: true });
      await writeFile(metricsFile, '');
      const head = createTagHead(model, options.tags, options.seed ?? ctx.seed, options.pooling ?? 'max');
      const params = [...visionParameters(model), ...head.parameters];
      const optimizer = createAdamW(params);
      const bar = options.progress?.start('vision', { total: steps, unit: 'steps' });
      let step = 0, images = 0, unused = 0, ms = 0, iLoss = 0, iSteps = 0, lastLoss = NaN;
      let scores: (TagScores & { images: number }) | undefined;
      const began = performance.now();
      try {
        for await (const items of input) {
          if (ctx.signal.aborted) throw new AbortedError('vision pretraining was aborted', { cause: ctx.signal.reason });
          if (step >= steps) { unused++; continue; }
          if (items.length === 0) continue;
          for (const x of items) {
            if (x.tags.length !== options.tags) throw new InvalidOptionError('tags', `image ${x.image} has ${x.tags.length} tags, expected ${options.tags}`);
          }
          const t0 = performance.now();
          const pixels = flatten(items, 'pixels');
          const tags = flatten(items, 'tags');
          const { loss, grads } = await computeGradients(model, () => tagLoss(model, head, pixels, tags, items.length), params);
          await applyGradients(optimizer, grads, { lr: schedule(step), clipNorm: options.clipNorm ?? 1 });
          ms += performance.now() - t0;
          step++;
          images += items.length;
          if (Number.isFinite(loss)) { iLoss += loss; iSteps++; }
          bar?.update(step, `step ${step}/${steps} loss ${loss.toFixed(4)}`);
          const last = step === steps;
          const evalNow = heldout.length > 0 && ((evalEvery > 0 && step % evalEvery === 0) || last);
          if (evalNow) scores = await evaluate(head, last);
          if (evalNow || step % logEvery === 0 || last) {
            lastLoss = iSteps > 0 ? iLoss / iSteps : lastLoss;
            const line = { step, loss: lastLoss, lr: schedule(step - 1), elapsed_s: Math.round(performance.now() - began) / 1000, ...(evalNow && scores ? { heldout: scores } : {}) };
            iLoss = iSteps = 0;
            await appendFile(metricsFile, JSON.stringify(line) + '\n');
          }
        }
        if (ctx.signal.aborted) throw new AbortedError('vision pretraining was aborted', { cause: ctx.signal.reason });
        if (step > 0 && step < steps && heldout.length > 0) scores = await evaluate(head, true);
        if (step > 0) await options.withHead?.(head);
      } finally {
        bar?.stop();
        optimizer.dispose();
        head.dispose();
      }
      return {
        steps: step,
        images,
        final_loss: iSteps > 0 ? iLoss / iSteps : lastLoss,
        ...(scores ? { heldout: scores } : {}),
        ms_per_step: step > 0 ? Math.round((ms / step) * 10) / 10 : 0,
        unused_batches: unused,
      };
    },
  };
}
