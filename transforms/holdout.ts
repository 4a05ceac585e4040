/**
 * LLaVA instruct holdout: a seeded split that holds out conversations for preference and RL
 * (the paper holds out 60k of LLaVA's 158k), so `sft-mix` (take `rest`) and `rl-prompts`
 * (take `holdout`) see complementary sets.
 *
 * Three ways to say which records are held out, all keyed by record id:
 * - `fraction`: hashUnit(id, seed) < fraction (streaming, ~fraction of the records);
 * - `count` + `of`: exactly `count` records, those with the smallest (hash, id): a first pass
 *   reads the ids from `of` (the same source the records come from) and keeps the `count`
 *   smallest in a bounded max-heap (60k entries), then the threshold is exact;
 * - `ids`: an explicit list (the shapes world's `world.json` names its held-out images).
 *
 * The seed defaults to a constant (0), not the run seed: the two pipelines must agree on the
 * split even when run with different seeds.
 */
import { InvalidOptionError } from '../src/errors.ts';
import { hashUnit } from '../src/stream/random.ts';
import type { Source, SourceContext, Stage, StageContext } from '../src/stream/stage.ts';

export interface HoldoutOptions<T> {
  /** Which side this stage passes on. */
  readonly take: 'holdout' | 'rest';
  /** Share held out, in [0, 1]. */
  readonly fraction?: number;
  /** Exact number held out; needs `of`. */
  readonly count?: number;
  /** The source the records come from, read once more for their ids (exact `count`). */
  readonly of?: Source<T>;
  /** Explicit held-out keys. */
  readonly ids?: Iterable<string>;
  /** Key of a record (default its `id`). */
  readonly key?: (record: T) => string;
  /** Split seed (default 0, independent of the run seed). */
  readonly seed?: number;
  /** Stage name (default `holdout(<take>)`). */
  readonly name?: string;
}

export interface HoldoutReport {
  readonly seen: number;
  readonly held: number;
  readonly passed: number;
}

/** Max-heap on (hash, key) of the `k` smallest, for the exact threshold. */
class SmallestK {
  private readonly h: number[] = [];
  private readonly k: string[] = [];
  constructor(private readonly cap: number) {}
  private less(i: number, j: number): boolean {
    return this.h[i]! < this.h[j]! || (this.h[i] === this.h[j] && this.k[i]! < this.k[j]!);
  }
  private swap(i: number, j: number): void {
    [this.h[i], this.h[j]] = [this.h[j]!, this.h[i]!];
    [this.k[i], this.k[j]] = [this.k[j]!, this.k[i]!];
  }
  push(hash: number, key: string): void {
    if (this.cap === 0) return;
    if (this.h.length < this.cap) {
      this.h.push(hash);
      this.k.push(key);
      for (let i = this.h.length - 1; i > 0;) {
        const p = (i - 1) >> 1;
        if (!this.less(p, i)) break;
        this.swap(p, i);
        i = p;
      }
      return;
    }
    // Replace the largest if the new one is smaller.
    if (hash > this.h[0]! || (hash === this.h[0] && key >= this.k[0]!)) return;
    this.h[0] = hash;
    this.k[0] = key;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.h.length && this.less(m, l)) m = l;
      if (r < this.h.length && this.less(m, r)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }
  size(): number {
    return this.h.length;
  }
  /** The largest kept (hash, key): records at or below it are held out. */
  top(): { hash: number; key: string } | undefined {
    return this.h.length ? { hash: this.h[0]!, key: this.k[0]! } : undefined;
  }
}

/** A seeded holdout split by id (see the module comment). */
export function holdout<T>(options: HoldoutOptions<T>): Stage<T, T> & { readonly conserves: false; report(): HoldoutReport } {
  const { take, fraction, count, of, ids } = options ?? ({} as HoldoutOptions<T>);
  if (take !== 'holdout' && take !== 'rest') throw new InvalidOptionError('take', `must be "holdout" or "rest", got ${JSON.stringify(take)}`);
  const modes = [fraction !== undefined, count !== undefined, ids !== undefined].filter(Boolean).length;
  if (modes !== 1) throw new InvalidOptionError('fraction', 'give exactly one of fraction, count (with of) or ids');
  if (fraction !== undefined && !(fraction >= 0 && fraction <= 1)) throw new InvalidOptionError('fraction', `must be in [0, 1], got ${String(fraction)}`);
  if (count !== undefined) {
    if (!Number.isInteger(count) || count < 0) throw new InvalidOptionError('count', `must be an integer >= 0, got ${String(count)}`);
    if (!of || typeof of.read !== 'function') throw new InvalidOptionError('of', 'an exact count needs the source the records come from (read once for their ids)', { fix: 'pass of: <source>, or use fraction' });
  }
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new InvalidOptionError('seed', `must be an integer, got ${String(seed)}`);
  const key = options.key ?? ((r: T) => (r as { id: string }).id);
  const idSet = ids !== undefined ? new Set(ids) : undefined;
  const name = options.name ?? `holdout(${take})`;
  let report: HoldoutReport = { seen: 0, held: 0, passed: 0 };

  async function threshold(ctx: StageContext): Promise<{ hash: number; key: string } | null | undefined> {
    if (count === undefined) return undefined;
    const heap = new SmallestK(count);
    const sctx: SourceContext = {
      name: `${name}:ids`, signal: ctx.signal, seed: ctx.seed, partition: { index: 0, count: 1 },
      counts: { in: 0, out: 0, rejected: 0 },
      // The main pass rejects (and dead-letters) bad records; the id pass only needs good ones.
      reject() {}, setTotal() {}, note() {},
    };
    for await (const r of of!.read(sctx)) {
      const k = key(r);
      if (typeof k === 'string') heap.push(hashUnit(k, seed), k);
    }
    return heap.top() ?? null;
  }

  return {
    name,
    conserves: false,
    report: () => report,
    async *run(input: AsyncIterable<T>, ctx: StageContext): AsyncIterable<T> {
      const top = await threshold(ctx);
      let seen = 0;
      let held = 0;
      for await (const r of input) {
        const k = key(r);
        if (typeof k !== 'string') {
          ctx.reject(r, `holdout key is ${typeof k}, not a string`);
          continue;
        }
        seen++;
        let inHoldout: boolean;
        if (idSet) inHoldout = idSet.has(k);
        else {
          const h = hashUnit(k, seed);
          if (top === undefined) inHoldout = h < fraction!;
          else inHoldout = top !== null && (h < top.hash || (h === top.hash && k <= top.key));
        }
        if (inHoldout) held++;
        if (inHoldout === (take === 'holdout')) yield r;
      }
      report = { seen, held, passed: take === 'holdout' ? held : seen - held };
      ctx.note(`held out ${held} of ${seen}, passed ${report.passed} (${take})`);
    },
  };
}
