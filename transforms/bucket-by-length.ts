/**
 * Encoded examples -> batches of similar length (`bucketByLength` in src/model/collate.ts): a
 * window of `windowBatches` x `batchSize` examples is sorted by length, cut into batches, and the
 * batches leave in a seeded order. Less padding means fewer wasted FLOPs; the order is
 * deterministic for the run seed (a resumed run sees the same batches). `out` counts batches.
 */
import { InvalidOptionError } from '../src/errors.ts';
import { deriveSeed } from '../src/stream/random.ts';
import type { Stage } from '../src/stream/stage.ts';
import { bucketByLength, type TrainExample } from '../src/model/collate.ts';

export interface BucketBatchOptions {
  batchSize: number;
  /** Batches' worth of examples sorted together; default 8 (1 = no bucketing, plain batches). */
  windowBatches?: number;
  /** Default: derived from the run seed. */
  seed?: number;
  name?: string;
}

export function bucketBatch(options: BucketBatchOptions): Stage<TrainExample, TrainExample[]> & { readonly conserves: false } {
  const { batchSize } = options;
  const windowBatches = options.windowBatches ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidOptionError('batchSize', `must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(windowBatches) || windowBatches < 1) throw new InvalidOptionError('windowBatches', `must be a positive integer, got ${windowBatches}`);
  const name = options.name ?? `bucket(${batchSize})`;
  return {
    name,
    conserves: false,
    run: (input, ctx) => bucketByLength(input, (e) => e.ids.length, { batchSize, windowBatches, seed: options.seed ?? deriveSeed(ctx.seed, `bucket:${name}`) }),
  };
}
