/**
 * Backbone overhead: records per CPU-second of small records through 5 identity stages, against a bare
 * `for await` loop over the same source, measured in the same process.
 *
 * Per-record async iteration costs a few hundred ns per layer (each async generator yield is a
 * promise round trip), so 5 per-record stages (+ runFlow's counting taps) cannot stay within 10%
 * of a bare loop. The backbone's answer is to move records in arrays: `batch(n)` once, then
 * stages that loop over the array synchronously (calling a per-record function), so the async cost
 * is paid per batch (a real stage then loops over the array synchronously). Rows:
 *   - bare loop (baseline), per-record source
 *   - 5 chained async generators, per record, without runFlow; then the same through runFlow
 *   - batch(1024) + 5 array stages, chained by hand; then the same through runFlow
 *   - runFlow over a chunked source (source yields arrays, as a file reader can), 5 array stages,
 *     against a bare loop over that chunked source.
 * "vs plain chain" isolates what runFlow itself adds (counting taps, contexts, pipeline, dead letters).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { batch } from '../src/stream/batch.ts';
import { runFlow } from '../src/stream/flow.ts';
import type { Sink, Source, Stage } from '../src/stream/stage.ts';
import type { BenchFn, BenchRow } from './types.ts';

interface Rec { id: number; v: number }

async function* records(n: number): AsyncGenerator<Rec> {
  for (let i = 0; i < n; i++) yield { id: i, v: i & 255 };
}

async function* chunks(n: number, size: number): AsyncGenerator<Rec[]> {
  for (let i = 0; i < n; i += size) {
    const c: Rec[] = [];
    for (let j = i; j < Math.min(n, i + size); j++) c.push({ id: j, v: j & 255 });
    yield c;
  }
}

const source = <T>(name: string, make: () => AsyncIterable<T>): Source<T> => ({ name, read: () => make() });

// Each case gets its own copy of the stage code: V8's inline caches are per function, and one
// copy shared by the plain chain (native generators in) and runFlow (tap iterators in) turns
// polymorphic and slows whichever runs second by ~70%. A real stage sees only tap iterators.
const identity = (i: number): Stage<Rec, Rec> => ({
  name: `id${i}`,
  async *run(input) { for await (const x of input) yield x; },
});
const identityFlow = (i: number): Stage<Rec, Rec> => ({
  name: `id${i}`,
  async *run(input) { for await (const x of input) yield x; },
});

// Identity over arrays: like `identity`, it does no per-record work, so both measure pure plumbing.
const arrayIdentity = (i: number): Stage<Rec[], Rec[]> => ({
  name: `id${i}`,
  async *run(input) { for await (const xs of input) yield xs; },
});
const arrayIdentityFlow = (i: number): Stage<Rec[], Rec[]> => ({
  name: `id${i}`,
  async *run(input) { for await (const xs of input) yield xs; },
});

// The plain chain's own copy of batch (see the note on inline caches above).
async function* chainBatch(input: AsyncIterable<Rec>, size: number): AsyncGenerator<Rec[]> {
  let buf: Rec[] = [];
  for await (const x of input) {
    buf.push(x);
    if (buf.length === size) { yield buf; buf = []; }
  }
  if (buf.length > 0) yield buf;
}

const sumSink: Sink<Rec, number> = {
  name: 'sum',
  async write(input) { let s = 0; for await (const r of input) s += r.v; return s; },
};
const sumArraySink: Sink<Rec[], number> = {
  name: 'sum',
  async write(input) { let s = 0; for await (const xs of input) for (const r of xs) s += r.v; return s; },
};

// CPU time (user + system) of this process, not wall time: the bench machine is shared, and
// wall time there swings by 2-3x with other load while CPU time stays within ~15%.
async function time(fn: () => Promise<number>): Promise<{ s: number; sum: number }> {
  const c0 = process.cpuUsage();
  const sum = await fn();
  const d = process.cpuUsage(c0);
  return { s: (d.user + d.system) / 1e6, sum };
}

/**
 * Best of `reps` per case, the cases interleaved round by round so that each sees the same
 * background load (the machine is shared; the best run is the least disturbed).
 */
async function bestOf(reps: number, cases: (() => Promise<number>)[]): Promise<number[]> {
  const best = cases.map(() => Infinity);
  for (let r = 0; r < reps; r++) {
    for (let c = 0; c < cases.length; c++) best[c] = Math.min(best[c]!, (await time(cases[c]!)).s);
  }
  return best;
}

export const bench: BenchFn = async ({ quick }) => {
  const n = quick ? 100_000 : 1_000_000;
  const reps = quick ? 3 : 5;
  const dir = await mkdtemp(join(tmpdir(), 'factflow-bench-backbone-'));
  const dl = join(dir, 'dead-letters.jsonl');
  try {
    const bare = async (): Promise<number> => { let s = 0; for await (const r of records(n)) s += r.v; return s; };
    const chained = async (): Promise<number> => {
      let it: AsyncIterable<Rec> = records(n);
      for (let i = 0; i < 5; i++) it = identity(i).run(it, undefined as never);
      let s = 0;
      for await (const r of it) s += r.v;
      return s;
    };
    const flowPerRecord = async (): Promise<number> => (await runFlow({
      source: source('records', () => records(n)),
      stages: [0, 1, 2, 3, 4].map(identityFlow) as Stage<never, unknown>[],
      sink: sumSink,
    }, { seed: 1, deadLetterPath: dl })).result;
    const flowBatched = async (): Promise<number> => (await runFlow({
      source: source('records', () => records(n)),
      stages: [batch<Rec>(1024, { name: 'batch' }), ...[0, 1, 2, 3, 4].map(arrayIdentityFlow)] as Stage<never, unknown>[],
      sink: sumArraySink,
    }, { seed: 1, deadLetterPath: dl })).result;
    const chainedBatched = async (): Promise<number> => {
      let it: AsyncIterable<Rec[]> = chainBatch(records(n), 1024);
      for (let i = 0; i < 5; i++) it = arrayIdentity(i).run(it, undefined as never);
      let s = 0;
      for await (const xs of it) for (const r of xs) s += r.v;
      return s;
    };
    // 4x the records: a chunked pass is ~20 ms per million, too short to time against GC noise.
    const nc = 4 * n;
    const bareChunks = async (): Promise<number> => { let s = 0; for await (const xs of chunks(nc, 1024)) for (const r of xs) s += r.v; return s; };
    const flowChunks = async (): Promise<number> => (await runFlow({
      source: source('chunks', () => chunks(nc, 1024)),
      stages: [0, 1, 2, 3, 4].map(arrayIdentityFlow) as Stage<never, unknown>[],
      sink: sumArraySink,
    }, { seed: 1, deadLetterPath: dl })).result;

    // Same answer everywhere, and a warm-up for the JIT.
    const expect = (await time(bare)).sum;
    for (const f of [chained, flowPerRecord, chainedBatched, flowBatched]) {
      const got = (await time(f)).sum;
      if (got !== expect) throw new Error(`bench/backbone: checksum ${got} != ${expect}`);
    }
    if ((await time(bareChunks)).sum !== (await time(flowChunks)).sum) throw new Error('bench/backbone: chunked checksums differ');

    const [tBare, tChained, tFlow, tChainedBatched, tBatched, tBareChunks, tFlowChunks] = (await bestOf(reps,
      [bare, chained, flowPerRecord, chainedBatched, flowBatched, bareChunks, flowChunks])) as number[] as [number, number, number, number, number, number, number];

    const rss = `peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`;
    const row = (c: string, t: number, base: number, baseline: string, note?: string): BenchRow => ({
      suite: 'backbone', case: c, value: n / t, unit: 'records/cpu-s', ratio: base / t, baseline, note,
    });
    const pct = (t: number, base: number): string => `${Math.round((t / base - 1) * 100)}%`;
    const goal = (t: number, base: number): string => `goal <=10% overhead ${base / t >= 1 / 1.1 ? 'met' : 'missed'} (${pct(t, base)})`;
    return [
      { suite: 'backbone', case: `bare for-await loop, ${n} records`, value: n / tBare, unit: 'records/cpu-s', note: `CPU time, best of ${reps}; ${rss}` },
      row('plain chain: 5 per-record async generators', tChained, tBare, 'bare loop', 'each per-record hop costs about one bare loop'),
      row('runFlow: 5 per-record stages', tFlow, tBare, 'bare loop', `${goal(tFlow, tBare)}; vs plain chain ${pct(tFlow, tChained)}`),
      row('plain chain: batch(1024) + 5 array stages', tChainedBatched, tBare, 'bare loop', 'batch\'s own per-record hop'),
      row('runFlow: batch(1024) + 5 array stages', tBatched, tBare, 'bare loop', `${goal(tBatched, tBare)}; vs plain chain ${pct(tBatched, tChainedBatched)}`),
      { suite: 'backbone', case: `bare loop over a chunked source, ${nc} records (1024/chunk)`, value: nc / tBareChunks, unit: 'records/cpu-s' },
      { ...row('runFlow: chunked source, 5 array stages', tFlowChunks, tBareChunks, 'bare loop over chunks', goal(tFlowChunks, tBareChunks)), value: nc / tFlowChunks },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};
