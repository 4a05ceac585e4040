/**
 * A raw source seen through its conversion stages, as one source: what `mixSources` needs to
 * interleave several converted datasets (VQA-v2 -> conversations, A-OKVQA -> conversations,
 * ...). The stages run with the source's context, so their rejections reach the flow's dead
 * letters. `limit` stops reading once that many converted records came out (the first ones,
 * in input order; shuffle downstream), which is how per-source caps are applied.
 *
 * `stats()` tells, for the latest read: records read from the raw source, rejected (by the
 * source or a stage), converted records out, and whether the limit cut the input short.
 */
import { InvalidOptionError } from '../src/errors.ts';
import type { InputFingerprint, Source, SourceContext, Stage, StageContext } from '../src/stream/stage.ts';

export interface ConvertedSourceOptions<O> {
  readonly name: string;
  readonly source: Source<unknown>;
  /** Conversion chain; the last stage's output type is `O`. */
  readonly stages: readonly Stage<never, unknown>[];
  /** Most converted records to give (default: all). */
  readonly limit?: number;
  /** Only for typing the output. */
  readonly output?: (record: O) => void;
}

export interface ConvertedStats {
  read: number;
  rejected: number;
  out: number;
  /** True when `limit` was reached (records after it, if any, were not read). */
  limited: boolean;
}

export function convertedSource<O>(options: ConvertedSourceOptions<O>): Source<O> & { stats(): ConvertedStats } {
  const { name, source, stages } = options;
  if (typeof name !== 'string' || name === '') throw new InvalidOptionError('name', 'must be a non-empty string');
  if (!source || typeof source.read !== 'function') throw new InvalidOptionError('source', 'must be a Source');
  stages.forEach((s, i) => {
    if (!s || typeof s.run !== 'function') throw new InvalidOptionError(`stages[${i}]`, 'is not a stage');
  });
  const limit = options.limit ?? Infinity;
  if (!(limit >= 0)) throw new InvalidOptionError('limit', `must be >= 0, got ${String(limit)}`);
  let stats: ConvertedStats = { read: 0, rejected: 0, out: 0, limited: false };

  return {
    name,
    inputs(): Promise<InputFingerprint[]> {
      return source.inputs ? source.inputs() : Promise.resolve([]);
    },
    stats: () => ({ ...stats }),
    async *read(ctx: SourceContext): AsyncIterable<O> {
      const s: ConvertedStats = { read: 0, rejected: 0, out: 0, limited: false };
      stats = s;
      const reject: SourceContext['reject'] = (record, reason, origin) => {
        s.rejected++;
        ctx.reject(record, reason, origin);
      };
      // The raw source's total counts its items, not the converted records: not a total for the mix.
      const sctx: SourceContext = { ...ctx, name: source.name, reject, counts: { in: 0, out: 0, rejected: 0 }, setTotal() {} };
      async function* counted(): AsyncGenerator<unknown> {
        for await (const x of source.read(sctx)) {
          s.read++;
          yield x;
        }
      }
      let it: AsyncIterable<unknown> = counted();
      for (const stage of stages) {
        const stx: StageContext = {
          name: stage.name, signal: ctx.signal, seed: ctx.seed, counts: { in: 0, out: 0, rejected: 0 }, reject,
          note: (text) => ctx.note(`${stage.name}: ${text}`),
        };
        it = (stage.run as (input: AsyncIterable<unknown>, c: StageContext) => AsyncIterable<unknown>)(it, stx);
      }
      if (limit === 0) return;
      for await (const x of it) {
        s.out++;
        yield x as O;
        if (s.out >= limit) {
          s.limited = true;
          break;
        }
      }
    },
  };
}
