/**
 * The fast Parquet encoder must write exactly the bytes hyparquet-writer's own column
 * path writes (the reference): same dictionary choices, page cuts, levels, statistics,
 * offset indexes and footer.
 */
import test from 'ava';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { conversationSchema } from '../../schemas/conversation.ts';
import type { FieldSpec } from '../../schemas/field.ts';
import { snappyCompress as referenceSnappy } from 'hyparquet-writer/src/snappy.js';
import { encodeParquet, PARQUET_CODECS, snappyCompress, type ParquetCodec } from '../../sinks/parquet-encoder.ts';
import { Rng } from '../../src/stream/random.ts';
import { makeConversations } from './sink-harness.ts';

function same(t: import('ava').ExecutionContext, fields: readonly FieldSpec[], records: readonly unknown[], rowGroupRows?: number, codec?: ParquetCodec): Uint8Array {
  const base = { fields, schemaName: 'x', schemaVersion: 3, records, rowGroupRows, codec };
  const fast = encodeParquet(base);
  const reference = encodeParquet({ ...base, reference: true });
  t.is(fast.length, reference.length);
  t.true(Buffer.from(fast).equals(Buffer.from(reference)), `bytes differ (${fields.map((f) => f.name).join(',')}, ${codec ?? 'snappy'})`);
  return fast;
}

test('conversations: byte-identical to hyparquet-writer, one or many row groups', (t) => {
  const records = makeConversations(1200, 9);
  same(t, conversationSchema.fields, records);
  same(t, conversationSchema.fields, records, 333);
});

test('the snappy port writes what the snappy of hyparquet-writer writes', (t) => {
  const rng = new Rng(21);
  const inputs: Uint8Array[] = [new Uint8Array(0), Uint8Array.of(7), Buffer.from('abcdabcdabcdabc'), Buffer.from('short')];
  // random bytes (long literals), runs (long copies), text (short copies), far repeats (offsets past 2048 and 65535)
  inputs.push(Uint8Array.from({ length: 70_000 }, () => rng.int(256)));
  inputs.push(Uint8Array.from({ length: 5000 }, (_, i) => (i < 2500 ? 1 : rng.int(3))));
  inputs.push(Buffer.from(makeConversations(300, 6).map((r) => JSON.stringify(r)).join('\n')));
  const block = Uint8Array.from({ length: 3000 }, () => rng.int(256));
  const far = new Uint8Array(3000 + 70_000 + 3000);
  far.set(block, 0);
  far.set(Uint8Array.from({ length: 70_000 }, () => rng.int(256)), 3000);
  far.set(block, 73_000);
  inputs.push(far, far.subarray(0, 6100));
  for (const input of inputs) t.true(Buffer.from(snappyCompress(input)).equals(Buffer.from(referenceSnappy(input))), `input of ${input.length} bytes`);
});

test('every codec gives the reference bytes', (t) => {
  const records = makeConversations(400, 4);
  for (const codec of PARQUET_CODECS) same(t, conversationSchema.fields, records, 150, codec);
});

const WORDS = ['red', 'café', 'naïve', '東京', 'emoji 😀', 'a', 'zebra', '\uffff', '\ud83d', 'x'.repeat(70), ''];

test('pages over 1 MB, non-ASCII and lone surrogates, dictionary and plain columns', (t) => {
  const rng = new Rng(5);
  const fields: FieldSpec[] = [
    { name: 'big', type: 'string' },
    { name: 'low', type: 'string', nullable: true },
    { name: 'uni', type: 'string' },
    { name: 'turns', type: { list: { struct: [{ name: 'from', type: 'string' }, { name: 'value', type: 'string' }] } } },
  ];
  const records = Array.from({ length: 700 }, (_, i) => ({
    big: `${i}:` + 'lorem ipsum dolor '.repeat(rng.range(50, 300)) + rng.pick(WORDS),
    low: i % 7 === 0 ? null : rng.pick(['yes', 'no', 'maybe']),
    uni: Array.from({ length: rng.range(0, 4) }, () => rng.pick(WORDS)).join(' '),
    turns: Array.from({ length: rng.range(0, 5) }, (_, k) => ({ from: k % 2 ? 'gpt' : 'human', value: `${rng.pick(WORDS)} ${'w'.repeat(rng.range(0, 5000))}` })),
  }));
  same(t, fields, records);
  same(t, fields, records, 256, 'uncompressed');
});

test('numbers, booleans, int64, nulls, optional lists and structs, lists of lists', (t) => {
  const rng = new Rng(8);
  const fields: FieldSpec[] = [
    { name: 'i8', type: 'int8', nullable: true },
    { name: 'i32', type: 'int32' },
    { name: 'i64', type: 'int64' },
    { name: 'f32', type: 'float32' },
    { name: 'f64', type: 'float64', nullable: true },
    { name: 'ok', type: 'bool', nullable: true },
    { name: 'floats', type: { list: 'float32' } },
    { name: 'maybe', type: { list: 'string' }, nullable: true },
    { name: 'grid', type: { list: { list: 'int32' } } },
    { name: 'box', type: { struct: [{ name: 'label', type: 'string', nullable: true }, { name: 'xy', type: { list: 'int64' } }] }, nullable: true },
  ];
  const records = Array.from({ length: 1500 }, (_, i) => ({
    i8: i % 5 === 0 ? null : rng.range(-128, 127),
    i32: rng.range(-1e6, 1e6),
    i64: i % 2 ? BigInt(rng.range(0, 1e9)) * 1000n : rng.range(0, 50),
    f32: rng.normal(),
    f64: i % 3 === 0 ? null : rng.next() * 1e6,
    ok: i % 11 === 0 ? null : rng.next() < 0.5,
    floats: Float32Array.from({ length: rng.range(0, 6) }, () => rng.normal()),
    maybe: i % 4 === 0 ? null : Array.from({ length: rng.range(0, 3) }, () => rng.pick(WORDS)),
    grid: Array.from({ length: rng.range(0, 3) }, () => Array.from({ length: rng.range(0, 3) }, () => rng.range(0, 9))),
    box: i % 6 === 0 ? null : { label: i % 4 === 0 ? null : rng.pick(['a', 'b']), xy: [rng.range(0, 640), rng.range(0, 480)] },
  }));
  same(t, fields, records);
  same(t, fields, records, 100);
});

test('an all-null string column and one-row groups', (t) => {
  const fields: FieldSpec[] = [{ name: 's', type: 'string', nullable: true }, { name: 'n', type: 'int32' }];
  same(t, fields, [{ s: null, n: 1 }, { s: null, n: 2 }]);
  same(t, fields, [{ s: 'b', n: 1 }, { s: null, n: 2 }, { s: 'a', n: 3 }], 1);
});

test('a required value that is missing is refused', (t) => {
  t.throws(() => encodeParquet({ fields: conversationSchema.fields, schemaName: 'c', schemaVersion: 1, records: [{ id: 'a', image: null, conversations: [{ from: 'human' }], source: 's', meta: '' }] }), {
    message: /required value is undefined/,
  });
});

test('DuckDB reads multi-page fast-path shards with their statistics', async (t) => {
  const records = makeConversations(2000, 2).map((r, i) => ({ ...r, meta: JSON.stringify({ pad: 'p'.repeat(600), i }) }));
  const bytes = encodeParquet({ fields: conversationSchema.fields, schemaName: 'conversation', schemaVersion: 1, records });
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ff-parquet-fast-'));
  const file = path.join(dir, 'x.parquet');
  await fsp.writeFile(file, bytes);
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    const rows = (await conn.runAndReadAll(`SELECT * FROM read_parquet('${file}')`)).getRowObjectsJson();
    t.deepEqual(rows, records);
    const stats = (await conn.runAndReadAll(`SELECT path_in_schema AS p, stats_min_value AS lo, stats_max_value AS hi FROM parquet_metadata('${file}') WHERE path_in_schema = 'id'`)).getRowObjectsJson();
    t.deepEqual(stats, [{ p: 'id', lo: 'conv-000000', hi: 'conv-001999' }]);
  } finally {
    conn.closeSync();
    db.closeSync();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
