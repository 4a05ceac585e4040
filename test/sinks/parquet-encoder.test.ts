import test, { type ExecutionContext } from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import type { FieldSpec } from '../../schemas/field.ts';
import { evalSchema, type EvalRecord } from '../../schemas/eval.ts';
import { rolloutSchema, type Rollout } from '../../schemas/rollout.ts';
import { encodeParquet, parquetSchemaElements } from '../../sinks/parquet-encoder.ts';
import { Rng } from '../../src/stream/random.ts';
import { tempDir } from '../helpers/temp-dir.ts';

function rollouts(n: number): Rollout[] {
  const rng = new Rng(3);
  return Array.from({ length: n }, (_, i) => {
    const tokens = rng.range(0, 6);
    const floats = (): number[] => Array.from({ length: tokens }, () => rng.normal());
    return {
      id: `r${i}`,
      image: i % 3 === 0 ? null : `img/${i}.jpg`,
      conversations: [{ from: 'human' as const, value: i % 3 === 0 ? 'Say hi.' : '<image>\nWhat is red?' }],
      caption_type: (1 + (i % 7)) as Rollout['caption_type'],
      length_bonus: 1,
      facts: i % 2 ? ['A red circle.'] : [],
      response: tokens ? 'A red circle.' : '',
      response_tokens: tokens,
      ended_with_eos: i % 4 !== 0,
      logprobs: floats(),
      ref_logprobs: floats(),
      values: floats(),
      reward_model: rng.normal(),
      reward_total: rng.normal(),
      reward_length: tokens ? -0.1 * tokens : 0,
      reward_correctness: i % 2,
      reward_no_eos: i % 4 === 0 ? -8 : 0,
      kl_mean: rng.next() / 3,
      policy_version: i,
    };
  });
}

/** float32 columns come back rounded to float32. */
function asStored(r: Rollout): Rollout {
  const f = Math.fround;
  return {
    ...r,
    length_bonus: f(r.length_bonus),
    logprobs: r.logprobs.map(f),
    ref_logprobs: r.ref_logprobs.map(f),
    values: r.values.map(f),
    reward_model: f(r.reward_model),
    reward_total: f(r.reward_total),
    reward_length: f(r.reward_length),
    reward_correctness: f(r.reward_correctness),
    reward_no_eos: f(r.reward_no_eos),
    kl_mean: f(r.kl_mean),
  };
}

async function writeTmp(t: ExecutionContext, bytes: Uint8Array): Promise<string> {
  const dir = await tempDir(t, 'ff-parquet-');
  const file = path.join(dir, 'x.parquet');
  await fsp.writeFile(file, bytes);
  return file;
}

async function duck(sql: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

const toArrayBuffer = (b: Uint8Array): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

test('nested columns use the standard 3-level LIST layout', (t) => {
  const elements = parquetSchemaElements(rolloutSchema.fields);
  const at = elements.findIndex((e) => e.name === 'conversations');
  t.deepEqual(elements.slice(at, at + 5), [
    { name: 'conversations', repetition_type: 'REQUIRED', converted_type: 'LIST', num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    { name: 'element', repetition_type: 'REQUIRED', num_children: 2 },
    { name: 'from', repetition_type: 'REQUIRED', type: 'BYTE_ARRAY', converted_type: 'UTF8' },
    { name: 'value', repetition_type: 'REQUIRED', type: 'BYTE_ARRAY', converted_type: 'UTF8' },
  ]);
  t.deepEqual(elements[0], { name: 'root', num_children: rolloutSchema.fields.length });
});

test('rollouts: DuckDB sees the declared types and the stored values', async (t) => {
  const records = rollouts(40);
  const bytes = encodeParquet({ fields: rolloutSchema.fields, schemaName: 'rollout', schemaVersion: 1, records, rowGroupRows: 16 });
  const file = await writeTmp(t, bytes);
  const types = Object.fromEntries((await duck(`DESCRIBE SELECT * FROM read_parquet('${file}')`)).map((r) => [r.column_name, r.column_type]));
  t.like(types, {
    conversations: 'STRUCT("from" VARCHAR, "value" VARCHAR)[]',
    caption_type: 'TINYINT',
    length_bonus: 'FLOAT',
    facts: 'VARCHAR[]',
    response_tokens: 'INTEGER',
    ended_with_eos: 'BOOLEAN',
    logprobs: 'FLOAT[]',
    kl_mean: 'FLOAT',
    policy_version: 'INTEGER',
  });
  const rows = await duck(`SELECT * FROM read_parquet('${file}') ORDER BY policy_version`);
  t.deepEqual(rows, records.map(asStored));
  const meta = await duck(`SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata('${file}') ORDER BY k`);
  t.deepEqual(meta, [
    { k: 'factflow.schema', v: 'rollout' },
    { k: 'factflow.schema_version', v: '1' },
  ]);
});

test('rollouts round-trip through hyparquet, row group by row group', async (t) => {
  const records = rollouts(40);
  const bytes = encodeParquet({ fields: rolloutSchema.fields, schemaName: 'rollout', schemaVersion: 1, records, rowGroupRows: 16 });
  const file = toArrayBuffer(bytes);
  const metadata = parquetMetadata(file);
  t.deepEqual(metadata.row_groups.map((g) => Number(g.num_rows)), [16, 16, 8]);
  const back = await parquetReadObjects({ file, rowStart: 16, rowEnd: 32 });
  const plain = back.map((r) => JSON.parse(JSON.stringify(r, (_k, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v))) as unknown);
  t.deepEqual(plain, records.slice(16, 32).map(asStored));
});

test('nullable int8 and bool columns keep their nulls', async (t) => {
  const records: EvalRecord[] = [
    { question_id: 'q1', image: 'a.jpg', question: 'Q?', question_type: 'attribute', gt_answer: 'A', facts: ['f'], model_answer: 'B', score: 2, hallucinated: true, judge_text: 'Rating: 2' },
    { question_id: 'q2', image: 'b.jpg', question: 'Q2?', question_type: 'counting', gt_answer: 'Two', facts: [], model_answer: 'Two', score: null, hallucinated: null, judge_text: '' },
  ];
  const file = await writeTmp(t, encodeParquet({ fields: evalSchema.fields, schemaName: 'eval', schemaVersion: 1, records }));
  t.deepEqual(await duck(`SELECT * FROM read_parquet('${file}') ORDER BY question_id`), records);
});

test('the same records encode to the same bytes', (t) => {
  const a = encodeParquet({ fields: rolloutSchema.fields, schemaName: 'rollout', schemaVersion: 1, records: rollouts(30) });
  const b = encodeParquet({ fields: rolloutSchema.fields, schemaName: 'rollout', schemaVersion: 1, records: rollouts(30) });
  t.true(Buffer.from(a).equals(Buffer.from(b)));
});

test('int64, float64 and nested struct fields encode too', async (t) => {
  const fields: FieldSpec[] = [
    { name: 'n', type: 'int64' },
    { name: 'x', type: 'float64', nullable: true },
    { name: 'box', type: { struct: [{ name: 'label', type: 'string' }, { name: 'xy', type: { list: 'int32' } }] } },
    { name: 'ids', type: { list: 'int64' } },
  ];
  const records = [
    { n: 9007199254740991, x: 0.1, box: { label: 'a', xy: [1, 2] }, ids: [1, 2n] },
    { n: -3n, x: null, box: { label: 'b', xy: [] }, ids: [] },
  ];
  const file = await writeTmp(t, encodeParquet({ fields, schemaName: 'custom', schemaVersion: 1, records }));
  const types = Object.fromEntries((await duck(`DESCRIBE SELECT * FROM read_parquet('${file}')`)).map((r) => [r.column_name, r.column_type]));
  t.deepEqual(types, { n: 'BIGINT', x: 'DOUBLE', box: 'STRUCT("label" VARCHAR, xy INTEGER[])', ids: 'BIGINT[]' });
  const rows = await duck(`SELECT n::VARCHAR AS n, x, box, ids::VARCHAR[] AS ids FROM read_parquet('${file}')`);
  t.deepEqual(rows, [
    { n: '9007199254740991', x: 0.1, box: { label: 'a', xy: [1, 2] }, ids: ['1', '2'] },
    { n: '-3', x: null, box: { label: 'b', xy: [] }, ids: [] },
  ]);
});
