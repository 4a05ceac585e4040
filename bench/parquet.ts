/**
 * Parquet writing: the same generated conversations (100k, or 10k with `quick`) written by
 *   - our shard sink (validate + estimate + encode + fsync + manifest): the baseline,
 *   - our encoder alone (encodeParquet, in memory), and hyparquet-writer's own column path
 *     (`reference: true`, the same bytes) to show what the fast path buys,
 *   - parquetjs-lite (row by row, its own nested layout),
 *   - DuckDB `COPY (SELECT ... FROM read_json(...)) TO '...parquet'` (native, multi-threaded;
 *     timed from the JSONL file, so it includes JSON parsing),
 *   - `JSON.stringify` of every record: a floor for "touch every string once" in JS.
 * Each case prints two rows: rows/s (wall) and rows per CPU-second (user + system time of
 * the whole process, all threads: steadier on a shared machine, and fair to DuckDB's
 * threads). Ratios are against our shard sink measured in the same process, same unit.
 */
import { promises as fsp } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { conversationSchema, type Conversation } from '../schemas/conversation.ts';
import { encodeParquet } from '../sinks/parquet-encoder.ts';
import { shardSink } from '../sinks/shard-sink.ts';
import { Rng } from '../src/stream/random.ts';
import type { SinkContext } from '../src/stream/stage.ts';
import type { BenchFn, BenchRow } from './types.ts';

const WORDS = 'a the red blue green circle square star large small left right above below of in image shows there is are two three'.split(' ');

function conversations(n: number): Conversation[] {
  const rng = new Rng(11);
  const sentence = (len: number): string => Array.from({ length: len }, () => rng.pick(WORDS)).join(' ');
  return Array.from({ length: n }, (_, i) => {
    const rounds = rng.range(1, 4);
    const turns: Conversation['conversations'] = [];
    for (let k = 0; k < rounds; k++) {
      turns.push({ from: 'human', value: `${k === 0 ? '<image>\n' : ''}${sentence(rng.range(4, 14))}?` });
      turns.push({ from: 'gpt', value: `${sentence(rng.range(1, 40))}.` });
    }
    return {
      id: `bench-${i}`,
      image: `coco/train2017/${String(rng.int(1e6)).padStart(12, '0')}.jpg`,
      conversations: turns,
      source: rng.pick(['vqav2', 'aokvqa', 'flickr30k', 'llava']),
      meta: '',
    };
  });
}

function sinkContext(dir: string): SinkContext {
  let rejected = 0;
  return {
    name: 'bench',
    signal: new AbortController().signal,
    seed: 1,
    counts: { in: 0, out: 0, rejected: 0 },
    partition: { index: 0, count: 1 },
    params: {},
    inputs: async () => [],
    deadLetters: { path: path.join(dir, 'rejected.jsonl'), count: () => rejected },
    reject: () => void rejected++,
    note: () => {},
  };
}

async function* iterate<T>(items: readonly T[]): AsyncIterable<T> {
  yield* items;
}

/** Wall seconds and process CPU seconds (all threads): the machines are shared, CPU time is steadier. */
async function time<R>(fn: () => Promise<R>): Promise<{ s: number; cpu: number; result: R }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const result = await fn();
  const c = process.cpuUsage(c0);
  return { s: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6, result };
}

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

export const bench: BenchFn = async ({ quick }) => {
  const n = quick ? 10_000 : 100_000;
  const records = conversations(n);
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ff-bench-parquet-'));
  const rows: BenchRow[] = [];
  let ours: { s: number; cpu: number } = { s: Number.NaN, cpu: Number.NaN };
  /** Two rows per case: rows/s and rows/cpu-s, each with its ratio to our shard sink. */
  const push = (name: string, t: { s: number; cpu: number }, note: string): void => {
    const perS = n / t.s;
    const perCpu = n / t.cpu;
    rows.push({ suite: 'parquet', case: name, value: perS, unit: 'rows/s', ratio: perS / (n / ours.s), baseline: 'shardSink', note: `${t.s.toFixed(2)} s wall; ${note}` });
    rows.push({ suite: 'parquet', case: name, value: perCpu, unit: 'rows/cpu-s', ratio: perCpu / (n / ours.cpu), baseline: 'shardSink', note: `${t.cpu.toFixed(2)} s CPU` });
  };
  const fields = conversationSchema.fields;
  try {
    // ours, end to end, after warm-up runs: V8 needs a few 10k-row groups before the
    // encoder's loops are optimised (a cold first run is about 2x slower)
    const cold = await time(() => shardSink({ dir: path.join(work, 'cold'), schema: conversationSchema }).write(iterate(records.slice(0, 10_000)), sinkContext(path.join(work, 'cold'))));
    for (let k = 0; k < 3; k++) {
      const warmDir = path.join(work, `warm${k}`);
      await shardSink({ dir: warmDir, schema: conversationSchema }).write(iterate(records.slice(0, 10_000)), sinkContext(warmDir));
    }
    const oursDir = path.join(work, 'ours');
    const sink = await time(() => shardSink({ dir: oursDir, schema: conversationSchema }).write(iterate(records), sinkContext(oursDir)));
    ours = sink;
    push(`shardSink snappy, ${n} conversations`, sink, `${mb(sink.result.shards.reduce((s, x) => s + x.bytes, 0))}, validate + estimate + encode + sha256 + fsync`);
    push('shardSink, first 10k rows of a fresh process (JIT cold)', { s: (cold.s * n) / 10_000, cpu: (cold.cpu * n) / 10_000 }, 'scaled to n rows');

    encodeParquet({ fields, schemaName: 'conversation', schemaVersion: 1, records: records.slice(0, 5000) });
    const enc = await time(async () => encodeParquet({ fields, schemaName: 'conversation', schemaVersion: 1, records }));
    push('encodeParquet only (in memory)', enc, mb(enc.result.length));

    const refRecords = records.slice(0, Math.min(n, 20_000));
    encodeParquet({ fields, schemaName: 'conversation', schemaVersion: 1, records: refRecords.slice(0, 2000), reference: true });
    const ref = await time(async () => encodeParquet({ fields, schemaName: 'conversation', schemaVersion: 1, records: refRecords, reference: true }));
    // timed on fewer rows (it is slow): scale to n rows at the same rate
    const refScaled = { s: (ref.s * n) / refRecords.length, cpu: (ref.cpu * n) / refRecords.length };
    const same = Buffer.from(ref.result).equals(Buffer.from(encodeParquet({ fields, schemaName: 'conversation', schemaVersion: 1, records: refRecords })));
    push("hyparquet-writer's own column path (reference)", refScaled, `${refRecords.length} rows timed; ${same ? 'same bytes as encodeParquet' : 'BYTES DIFFER from encodeParquet'}`);

    let chars = 0;
    const json = await time(async () => {
      for (const r of records) chars += JSON.stringify(r).length;
    });
    push('JSON.stringify each record (floor)', json, `${(chars / 1e6).toFixed(1)} M chars`);

    // parquetjs-lite
    // CommonJS without types: load it through require.
    const parquetjs = createRequire(import.meta.url)('parquetjs-lite') as {
      ParquetSchema: new (spec: unknown) => unknown;
      ParquetWriter: { openFile(schema: unknown, file: string, opts?: unknown): Promise<{ appendRow(r: unknown): Promise<void>; close(): Promise<void> }> };
    };
    const pjFile = path.join(work, 'parquetjs.parquet');
    const pjSchema = new parquetjs.ParquetSchema({
      id: { type: 'UTF8' },
      image: { type: 'UTF8', optional: true },
      conversations: { repeated: true, fields: { from: { type: 'UTF8' }, value: { type: 'UTF8' } } },
      source: { type: 'UTF8' },
      meta: { type: 'UTF8' },
    });
    const writePj = async (rs: readonly Conversation[]): Promise<void> => {
      const w = await parquetjs.ParquetWriter.openFile(pjSchema, pjFile, { compression: 'SNAPPY' });
      for (const r of rs) await w.appendRow(r);
      await w.close();
    };
    await writePj(records.slice(0, 2000));
    const pj = await time(() => writePj(records));
    push('parquetjs-lite appendRow', pj, `${mb((await fsp.stat(pjFile)).size)}, legacy 2-level repeated group, compression ignored`);

    // DuckDB from JSONL
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const jsonl = path.join(work, 'in.jsonl');
    await fsp.writeFile(jsonl, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    const threads = (await conn.runAndReadAll("SELECT current_setting('threads') AS t")).getRowObjectsJson()[0]!.t;
    const duckFile = path.join(work, 'duck.parquet');
    const columns = `{id: 'VARCHAR', image: 'VARCHAR', conversations: 'STRUCT("from" VARCHAR, "value" VARCHAR)[]', source: 'VARCHAR', meta: 'VARCHAR'}`;
    const duck = await time(() => conn.run(`COPY (SELECT * FROM read_json('${jsonl}', format = 'newline_delimited', columns = ${columns})) TO '${duckFile}' (FORMAT parquet, COMPRESSION snappy)`));
    conn.closeSync();
    db.closeSync();
    push('DuckDB COPY from JSONL', duck, `${mb((await fsp.stat(duckFile)).size)}, ${String(threads)} threads, includes JSON parsing`);
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
  return rows;
};
