import { BadInputError, InvalidOptionError } from '../errors.ts';
import { deriveSeed, Rng } from './random.ts';
import type { InputFingerprint, Source, SourceContext, StageCounts } from './stage.ts';

export interface MixEntry<T> {
  /** Name shown in per-source counts; unique within the mix. */
  name: string;
  source: Source<T>;
  /** Relative share when mixing by ratio (default 1). */
  weight?: number;
  /** Exact number of records to take from this source (count mode: every entry has one). */
  count?: number;
}

export interface MixOptions {
  /** Mixing seed; defaults to the run seed. Same seed, same interleaving. */
  seed?: number;
  /**
   * false (default): every record at most once; a source that ends drops out.
   * true: a source that ends is read again from its start (oversampling).
   */
  replacement?: boolean;
  /**
   * Ratio mode only. 'all-exhausted' (default): go on until every source has ended (at least once,
   * with replacement). 'first-exhausted': stop as soon as one source ends, which keeps the ratio
   * exact for the whole output.
   */
  stopOn?: 'first-exhausted' | 'all-exhausted';
  /** Name of the mixed source (default "mix"). */
  name?: string;
}

export interface MixedSource<T> extends Source<T> {
  /** Records taken from each entry by the latest read, by entry name. */
  counts(): Record<string, number>;
}

/**
 * A seeded, weighted interleaving of several sources, pull-based: a record is read from a
 * source only when it is its turn, so backpressure reaches every source.
 *
 * Ratio mode: each record comes from a source drawn with probability weight / (sum of weights
 * of sources still active). Count mode: exactly `count` records from each entry (its first
 * `count` records; shuffle upstream for a random subset), in a uniformly random interleaving
 * (each draw is proportional to what every entry still owes). Without replacement a source
 * shorter than its count is a BadInputError; with replacement it is re-read.
 * The per-entry counts are in `counts()` and in a final `ctx.note`.
 */
export function mixSources<T>(entries: readonly MixEntry<T>[], options: MixOptions = {}): MixedSource<T> {
  if (!Array.isArray(entries) || entries.length === 0) throw new InvalidOptionError('entries', 'mixSources needs at least one entry');
  const names = new Set<string>();
  const withCount = entries.filter((e) => e.count !== undefined).length;
  if (withCount !== 0 && withCount !== entries.length) {
    throw new InvalidOptionError('entries', 'either every entry has a `count` or none has', { fix: 'mix by counts or by weights, not both' });
  }
  entries.forEach((e, i) => {
    if (typeof e.name !== 'string' || e.name === '') throw new InvalidOptionError(`entries[${i}].name`, 'must be a non-empty string');
    if (names.has(e.name)) throw new InvalidOptionError(`entries[${i}].name`, `"${e.name}" appears twice`);
    names.add(e.name);
    if (!e.source || typeof e.source.read !== 'function') throw new InvalidOptionError(`entries[${i}].source`, 'must be a Source');
    if (e.weight !== undefined && !(Number.isFinite(e.weight) && e.weight > 0)) {
      throw new InvalidOptionError(`entries[${i}].weight`, `must be a finite number > 0, got ${String(e.weight)}`);
    }
    if (e.count !== undefined && !(Number.isInteger(e.count) && e.count >= 0)) {
      throw new InvalidOptionError(`entries[${i}].count`, `must be an integer >= 0, got ${String(e.count)}`);
    }
    if (e.count !== undefined && e.weight !== undefined) throw new InvalidOptionError(`entries[${i}].weight`, 'is ignored when counts are given: remove it');
  });
  const stopOn = options.stopOn ?? 'all-exhausted';
  if (stopOn !== 'first-exhausted' && stopOn !== 'all-exhausted') {
    throw new InvalidOptionError('stopOn', `must be "first-exhausted" or "all-exhausted", got ${JSON.stringify(stopOn)}`);
  }
  if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new InvalidOptionError('seed', `must be an integer, got ${String(options.seed)}`);
  const replacement = options.replacement ?? false;
  const name = options.name ?? 'mix';
  const byCount = withCount > 0;
  let taken: number[] = entries.map(() => 0);

  return {
    name,
    async inputs(): Promise<InputFingerprint[]> {
      const all = await Promise.all(entries.map((e) => (e.source.inputs ? e.source.inputs() : Promise.resolve([]))));
      return all.flat();
    },
    counts: () => Object.fromEntries(entries.map((e, i) => [e.name, taken[i]!])),
    async *read(ctx: SourceContext): AsyncIterable<T> {
      const rng = new Rng(deriveSeed(options.seed ?? ctx.seed, `mix:${name}`));
      taken = entries.map(() => 0);
      const totals: (number | undefined)[] = entries.map(() => undefined);
      if (byCount) ctx.setTotal(entries.reduce((a, e) => a + e.count!, 0));
      const subContext = (i: number): SourceContext => {
        const counts: StageCounts = { in: 0, out: 0, rejected: 0 };
        return {
          name: entries[i]!.name, signal: ctx.signal, seed: ctx.seed, partition: ctx.partition, counts,
          reject: (record, reason, origin) => { counts.rejected++; ctx.reject(record, reason, origin); },
          setTotal: (total) => {
            totals[i] = total;
            // A total for the mix is only known without replacement, when every source is read to its end.
            if (!byCount && !replacement && stopOn === 'all-exhausted' && totals.every((t) => t !== undefined)) {
              ctx.setTotal(totals.reduce<number>((a, t) => a + t!, 0));
            }
          },
          note: (text) => ctx.note(`${entries[i]!.name}: ${text}`),
        };
      };
      const iters: (AsyncIterator<T> | undefined)[] = entries.map(() => undefined);
      const open = (i: number): AsyncIterator<T> => (iters[i] ??= entries[i]!.source.read(subContext(i))[Symbol.asyncIterator]());
      const closeIter = async (i: number): Promise<void> => {
        const it = iters[i];
        iters[i] = undefined;
        await it?.return?.();
      };
      try {
        if (byCount) {
          const owed = entries.map((e) => e.count!);
          let left = owed.reduce((a, b) => a + b, 0);
          while (left > 0) {
            const i = drawIndex(rng, owed, left);
            let n = await open(i).next();
            if (n.done) {
              await closeIter(i);
              if (replacement && taken[i]! > 0) n = await open(i).next();
              if (n.done) {
                throw new BadInputError(`mix entry "${entries[i]!.name}" has only ${taken[i]} records but its count is ${entries[i]!.count}`, {
                  fix: replacement ? 'the source is empty: remove it or set its count to 0' : 'lower its count, or mix with `replacement: true` to re-read it',
                });
              }
            }
            owed[i]!--;
            left--;
            taken[i]!++;
            yield n.value;
            if (owed[i] === 0) await closeIter(i);
          }
        } else {
          const weights = entries.map((e) => e.weight ?? 1);
          const active = entries.map(() => true);
          const endedOnce = entries.map(() => false);
          const sinceOpen = entries.map(() => 0);
          let activeWeight = weights.reduce((a, b) => a + b, 0);
          while (activeWeight > 0) {
            const i = drawIndex(rng, weights.map((w, k) => (active[k] ? w : 0)), activeWeight);
            let n = await open(i).next();
            if (n.done) {
              await closeIter(i);
              endedOnce[i] = true;
              if (stopOn === 'first-exhausted') break;
              const restart = replacement && sinceOpen[i]! > 0 && !endedOnce.every(Boolean);
              if (restart) {
                sinceOpen[i] = 0;
                n = await open(i).next();
              }
              if (n.done) {
                active[i] = false;
                activeWeight = weights.reduce((a, w, k) => a + (active[k] ? w : 0), 0);
                if (replacement && endedOnce.every(Boolean)) break;
                continue;
              }
            }
            sinceOpen[i]!++;
            taken[i]!++;
            yield n.value;
          }
        }
        ctx.note(entries.map((e, i) => `${e.name} ${taken[i]}`).join(', '));
      } finally {
        await Promise.all(entries.map((_, i) => closeIter(i).catch(() => {})));
      }
    },
  };
}

/** Index k with probability weights[k] / total (weights >= 0, total = their sum > 0). */
function drawIndex(rng: Rng, weights: readonly number[], total: number): number {
  let r = rng.next() * total;
  let last = 0;
  for (let k = 0; k < weights.length; k++) {
    const w = weights[k]!;
    if (w <= 0) continue;
    last = k;
    if (r < w) return k;
    r -= w;
  }
  return last; // float rounding at the top end
}
