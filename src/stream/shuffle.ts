import { InvalidOptionError } from '../errors.ts';
import { deriveSeed, Rng } from './random.ts';
import type { Stage } from './stage.ts';

export interface ShuffleOptions {
  /** Defaults to the run seed. */
  seed?: number;
  /** Records held at once (the shuffle's reach and its memory bound). */
  bufferSize: number;
  name?: string;
}

/**
 * Seeded buffer shuffle (as HF datasets' IterableDataset.shuffle): fill a buffer of
 * `bufferSize`, then for each new record emit a random buffered one and put the new one in
 * its place; at the end emit the rest in random order. A permutation of the input,
 * deterministic for a seed; a record moves at most about bufferSize positions earlier.
 */
export function shuffle<T>(options: ShuffleOptions): Stage<T, T> {
  const size = options?.bufferSize;
  if (!Number.isInteger(size) || size < 1) throw new InvalidOptionError('bufferSize', `must be a positive integer, got ${String(size)}`);
  if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new InvalidOptionError('seed', `must be an integer, got ${String(options.seed)}`);
  const name = options.name ?? 'shuffle';
  return {
    name,
    async *run(input, ctx) {
      const rng = new Rng(deriveSeed(options.seed ?? ctx.seed, `shuffle:${name}`));
      const buf: T[] = [];
      for await (const x of input) {
        if (buf.length < size) { buf.push(x); continue; }
        const j = rng.int(size);
        const out = buf[j]!;
        buf[j] = x;
        yield out;
      }
      rng.shuffle(buf);
      yield* buf;
    },
  };
}
