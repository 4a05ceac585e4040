import { BadRecordError, InvalidOptionError } from '../errors.ts';
import { hashUnit } from './random.ts';
import type { Stage } from './stage.ts';

export interface SplitOptions<T> {
  /** Split seed; defaults to the run seed. Fix it to keep the same holdout across runs with other seeds. */
  seed?: number;
  /** Stable identity of a record (e.g. its id). */
  key: (record: T) => string;
  /** Share held out, in [0, 1]. Give this or `count` + `total`. */
  fraction?: number;
  /** Records to hold out of `total` (see the exactness note below). */
  count?: number;
  /** Records in the input, for `count`. */
  total?: number;
  /** Which side this stage passes on. */
  take: 'holdout' | 'rest';
  name?: string;
}

/**
 * Seeded hash split: a record is in the holdout when hashUnit(key(record), seed) < threshold,
 * with threshold = fraction, or count / total. A record's side depends only on its key and the
 * seed, so it is stable across runs, partitions and input order, and two flows taking
 * 'holdout' and 'rest' are exact complements.
 *
 * Exactness of `count`: streaming without a first pass, the threshold count/total gives `count`
 * records in expectation (binomial, sd ~ sqrt(count)), not exactly; an exact N-of-M split would
 * need every hash before the first record could go to 'rest'.
 * Records whose key is not a string are rejected (BadRecordError). The stage drops the other
 * side on purpose, so it carries `conserves: false`.
 */
export function split<T>(options: SplitOptions<T>): Stage<T, T> & { readonly conserves: false } {
  const { key, fraction, count, total, take } = options;
  if (typeof key !== 'function') throw new InvalidOptionError('key', 'must be a function (record) => string');
  if (take !== 'holdout' && take !== 'rest') throw new InvalidOptionError('take', `must be "holdout" or "rest", got ${JSON.stringify(take)}`);
  if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new InvalidOptionError('seed', `must be an integer, got ${String(options.seed)}`);
  let threshold: number;
  if (fraction !== undefined) {
    if (count !== undefined) throw new InvalidOptionError('count', 'give either fraction or count, not both');
    if (!(fraction >= 0 && fraction <= 1)) throw new InvalidOptionError('fraction', `must be in [0, 1], got ${String(fraction)}`);
    threshold = fraction;
  } else if (count !== undefined) {
    if (!Number.isInteger(total) || total! < 1) throw new InvalidOptionError('total', `must be a positive integer when count is given, got ${String(total)}`);
    if (!Number.isInteger(count) || count < 0 || count > total!) throw new InvalidOptionError('count', `must be an integer in [0, total=${total}], got ${String(count)}`);
    threshold = count / total!;
  } else {
    throw new InvalidOptionError('fraction', 'give fraction, or count and total');
  }
  const name = options.name ?? `split(${take})`;
  return {
    name,
    conserves: false,
    async *run(input, ctx) {
      const seed = options.seed ?? ctx.seed;
      let held = 0;
      let seen = 0;
      for await (const x of input) {
        const k = key(x);
        if (typeof k !== 'string') {
          ctx.reject(x, new BadRecordError(`split key is ${typeof k}, not a string`, { fix: 'make the key function return a string id for every record' }));
          continue;
        }
        seen++;
        const inHoldout = hashUnit(k, seed) < threshold;
        if (inHoldout) held++;
        if (inHoldout === (take === 'holdout')) yield x;
      }
      ctx.note(`holdout ${held} of ${seen}`);
    },
  };
}

/**
 * Exact split of an in-memory list by key: the keys in seeded hash order, the first
 * round(fraction x keys) of them taken, every record of a key on the same side. Where the
 * streaming split above gives a share in expectation, this gives it exactly, which matters when
 * there are few keys (a threshold of 0.5 over 20 images can take 2 of them).
 */
export function exactShareByKey<T>(records: readonly T[], key: (record: T) => string, fraction: number, seed: number): { taken: T[]; rest: T[] } {
  if (!(fraction >= 0 && fraction <= 1)) throw new InvalidOptionError('fraction', `must be in [0, 1], got ${String(fraction)}`);
  const keys = [...new Set(records.map(key))]
    .map((k) => ({ k, h: hashUnit(k, seed) }))
    .sort((a, b) => a.h - b.h || (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  const chosen = new Set(keys.slice(0, Math.round(fraction * keys.length)).map((x) => x.k));
  const taken: T[] = [];
  const rest: T[] = [];
  for (const r of records) (chosen.has(key(r)) ? taken : rest).push(r);
  return { taken, rest };
}
