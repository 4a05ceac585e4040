/**
 * Parquet writing: the same generated conversations (100k, or 10k with `quick`) written by
 *   - our shard sink (validate + estimate + encode + fsync + manifest): the baseline,
 *   - our encoder alone (encodeParquet, in memory),
 *   - parquetjs-lite (row by row, its own nested layout),
 *   - DuckDB `COPY (SELECT ... FROM read_json(...)) TO '...parquet'` (native, multi-threaded;
 *     timed from the JSONL file, so it includes JSON parsing).
 * Ratios are rows/s against our shard sink measured in the same process.
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

const perCpu = (n: number, t: { cpu: number }): string => `${Math.round(n / t.cpu)} rows/cpu-s`;

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

export const bench: BenchFn = async ({ quick }) => {
  const n = quick ? 10_000 : 100_000;
  const records = conversations(n);
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'ff-bench-parquet-'));
  const rows: BenchRow[] = [];
  try {
    // ours, end to end (after a small warm-up run, so JIT compilation is not timed)
    const warmDir = path.join(work, 'warm');
    await shardSink({ dir: warmDir, schema: conversationSchema }).write(iterate(records.slice(0, 2000)), sinkContext(warmDir));
    const oursDir = path.join(work, 'ours');
    const ours = await time(() => shardSink({ dir: oursDir, schema: conversationSchema }).write(iterate(records), sinkContext(oursDir)));
    const oursRate = n / ours.s;
    const oursBytes = ours.result.shards.reduce((s, x) => s + x.bytes, 0);
    rows.push({ suite: 'parquet', case: `shardSink snappy, ${n} conversations`, value: oursRate, unit: 'rows/s', ratio: 1, baseline: 'shardSink', note: `${mb(oursBytes)}, ${ours.s.toFixed(2)} s, ${perCpu(n, ours)}` });

    const enc = await time(async () => encodeParquet({ fields: conversationSchema.fields, schemaName: 'conversation', schemaVersion: 1, records }));
    rows.push({ suite: 'parquet', case: 'encodeParquet only (in memory)', value: n / enc.s, unit: 'rows/s', ratio: n / enc.s / oursRate, baseline: 'shardSink', note: `${mb(enc.result.length)}, ${perCpu(n, enc)}` });

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
    rows.push({ suite: 'parquet', case: 'parquetjs-lite appendRow', value: n / pj.s, unit: 'rows/s', ratio: n / pj.s / oursRate, baseline: 'shardSink', note: `${mb((await fsp.stat(pjFile)).size)}, ${perCpu(n, pj)}, legacy 2-level repeated group, compression ignored` });

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
    rows.push({ suite: 'parquet', case: 'DuckDB COPY from JSONL', value: n / duck.s, unit: 'rows/s', ratio: n / duck.s / oursRate, baseline: 'shardSink', note: `${mb((await fsp.stat(duckFile)).size)}, ${perCpu(n, duck)}, ${String(threads)} threads, includes JSON parsing` });
  } finally {
    await fsp.rm(work, { recursive: true, force: true });
  }
  return rows;
};
