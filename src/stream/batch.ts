import { InvalidOptionError } from '../errors.ts';
import type { Stage } from './stage.ts';

export interface BatchOptions {
  name?: string;
}

/**
 * Groups records into arrays of `size`; the last, partial batch is emitted too.
 * Its `out` counts batches, so it carries `conserves: false` (the summary check skips it).
 */
export function batch<T>(size: number, options: BatchOptions = {}): Stage<T, T[]> & { readonly conserves: false } {
  if (!Number.isInteger(size) || size < 1) throw new InvalidOptionError('size', `must be a positive integer, got ${String(size)}`);
  return {
    name: options.name ?? `batch(${size})`,
    conserves: false,
    async *run(input) {
      let buf: T[] = [];
      for await (const x of input) {
        buf.push(x);
        if (buf.length === size) {
          const out = buf;
          buf = [];
          yield out;
        }
      }
      if (buf.length > 0) yield buf;
    },
  };
}

/** The inverse of batch: flattens arrays back into records (also `conserves: false`). */
export function unbatch<T>(options: BatchOptions = {}): Stage<readonly T[], T> & { readonly conserves: false } {
  return {
    name: options.name ?? 'unbatch',
    conserves: false,
    async *run(input) {
      for await (const xs of input) yield* xs;
    },
  };
}
