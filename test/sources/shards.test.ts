import test, { type ExecutionContext } from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { conversationSchema, type Conversation } from '../../schemas/conversation.ts';
import type { Manifest, ShardFormat } from '../../schemas/manifest.ts';
import { preferenceSchema } from '../../schemas/preference.ts';
import { shardSink } from '../../sinks/shard-sink.ts';
import { listShardFiles, shardFileInfo, shardSource } from '../../sources/shards.ts';
import { originOf } from '../../src/stream/origin.ts';
import { collect, fakeSinkContext, fakeSourceContext, iterate, makeConversations } from '../sinks/sink-harness.ts';
import { tempDir } from '../helpers/temp-dir.ts';

async function shardsOf(t: ExecutionContext, n: number, format: ShardFormat = 'parquet', maxRows = 40): Promise<{ dir: string; manifest: Manifest; records: Conversation[] }> {
  const dir = await tempDir(t, 'ff-shards-');
  const records = makeConversations(n, 5);
  const manifest = await shardSink({ dir, schema: conversationSchema, format, maxRows, rowGroupRows: 15 }).write(iterate(records), fakeSinkContext({ dir }));
  return { dir, manifest, records };
}

test('reads a folder through its manifest, with origins', async (t) => {
  const { dir, records } = await shardsOf(t, 100);
  await fsp.writeFile(path.join(dir, 'stray-00000-of-00001.parquet'), 'not listed, never read');
  const ctx = fakeSourceContext();
  const back = await collect(shardSource({ path: dir, schema: conversationSchema, split: 'train' }).read(ctx));
  t.deepEqual(back, records);
  t.is(ctx.total, 100);
  t.deepEqual(originOf(back[45]), { file: path.join(dir, 'train-00001-of-00003.parquet'), index: 5 });
});

for (const format of ['parquet', 'arrow', 'jsonl'] as const) {
  test(`partitions split the rows into contiguous, complete ranges (${format})`, async (t) => {
    const { dir, records } = await shardsOf(t, 100, format);
    const parts: Conversation[][] = [];
    for (let index = 0; index < 3; index++) {
      const ctx = fakeSourceContext({ index, count: 3 });
      parts.push(await collect(shardSource<Conversation>({ path: dir }).read(ctx)) as Conversation[]);
      t.is(ctx.total, parts[index]!.length);
    }
    t.deepEqual(parts.map((p) => p.length), [33, 33, 34]);
    t.deepEqual(parts.flat(), records);
  });
}

test('a single shard file reads on its own', async (t) => {
  for (const format of ['parquet', 'arrow', 'jsonl'] as const) {
    const { dir, manifest, records } = await shardsOf(t, 50, format);
    const file = path.join(dir, manifest.shards[1]!.path);
    t.deepEqual(await collect(shardSource({ path: file, schema: conversationSchema }).read(fakeSourceContext())), records.slice(40));
  }
});

test('a folder of another record kind is FF_ERR_SCHEMA_MISMATCH naming the manifest and both kinds', async (t) => {
  const { dir } = await shardsOf(t, 10);
  const err = await t.throwsAsync(collect(shardSource({ path: dir, schema: preferenceSchema }).read(fakeSourceContext())));
  t.is((err as { code?: string }).code, 'FF_ERR_SCHEMA_MISMATCH');
  t.true(err!.message.startsWith(`${path.join(dir, 'manifest.json')}: the manifest lists "conversation" records but "preference" records were expected`));
});

test('a file of another record kind is FF_ERR_SCHEMA_MISMATCH naming the file and both kinds', async (t) => {
  for (const format of ['parquet', 'arrow'] as const) {
    const { dir, manifest } = await shardsOf(t, 10, format);
    const file = path.join(dir, manifest.shards[0]!.path);
    const err = await t.throwsAsync(collect(shardSource({ path: file, schema: preferenceSchema }).read(fakeSourceContext())));
    t.is((err as { code?: string }).code, 'FF_ERR_SCHEMA_MISMATCH');
    t.true(err!.message.startsWith(`${file}: the file holds "conversation" records but "preference" records were expected`), err!.message);
  }
});

test('a parquet file written elsewhere is read when it has the columns, refused when not', async (t) => {
  const { dir, records } = await shardsOf(t, 20);
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const copy = path.join(dir, 'copy.parquet');
  await conn.run(`COPY (SELECT * FROM read_parquet('${path.join(dir, 'train-*.parquet')}') ORDER BY id) TO '${copy}' (FORMAT parquet)`);
  conn.closeSync();
  db.closeSync();
  t.deepEqual(await collect(shardSource({ path: copy, schema: conversationSchema }).read(fakeSourceContext())), records);
  const err = await t.throwsAsync(collect(shardSource({ path: copy, schema: preferenceSchema }).read(fakeSourceContext())));
  t.is((err as { code?: string }).code, 'FF_ERR_SCHEMA_MISMATCH');
  t.regex(err!.message, /has no "factflow.schema" metadata and lacks the preference column\(s\) output_1, output_2, preference, hallucination, facts/);
});

test('a truncated shard is FF_ERR_BAD_INPUT naming the file', async (t) => {
  const { dir, manifest } = await shardsOf(t, 60);
  const file = path.join(dir, manifest.shards[1]!.path);
  await fsp.truncate(file, 100);
  const err = await t.throwsAsync(collect(shardSource({ path: dir }).read(fakeSourceContext())));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.true(err!.message.startsWith(`${file}: the shard has 100 bytes but the manifest says ${manifest.shards[1]!.bytes}`));
});

test('verify: true checks sha256 against the manifest', async (t) => {
  const { dir, manifest } = await shardsOf(t, 30, 'jsonl');
  const file = path.join(dir, manifest.shards[0]!.path);
  const text = await fsp.readFile(file, 'utf8');
  await fsp.writeFile(file, text.replace('conv-000001', 'conv-00000X'));
  // Same size: only the hash notices.
  t.is((await collect(shardSource({ path: dir }).read(fakeSourceContext()))).length, 30);
  const err = await t.throwsAsync(collect(shardSource({ path: dir, verify: true }).read(fakeSourceContext())));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.true(err!.message.startsWith(`${file}: the shard's sha256 is`));
});

test('inputs() fingerprints the shards from the manifest', async (t) => {
  const { dir, manifest } = await shardsOf(t, 50);
  const inputs = await shardSource({ path: dir }).inputs!();
  t.deepEqual(inputs, manifest.shards.map((s) => ({ path: path.join(dir, s.path), bytes: s.bytes, sha256: s.sha256 })));
  const single = await shardSource({ path: inputs[0]!.path }).inputs!();
  t.deepEqual(single, [inputs[0]]);
});

test('bad JSON lines are rejected with file and line', async (t) => {
  const dir = await tempDir(t, 'ff-shards-');
  const file = path.join(dir, 'x.jsonl');
  await fsp.writeFile(file, '{"a":1}\n{oops\n\n{"a":3}\n');
  const ctx = fakeSourceContext();
  t.deepEqual(await collect(shardSource({ path: file }).read(ctx)), [{ a: 1 }, { a: 3 }]);
  t.is(ctx.rejected.length, 1);
});

test('missing paths, wrong splits and bad options fail clearly', async (t) => {
  const missing = await t.throwsAsync(collect(shardSource({ path: '/nonexistent/shards' }).read(fakeSourceContext())));
  t.is((missing as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.true(missing!.message.startsWith('/nonexistent/shards: no such shard folder or file'));
  const { dir } = await shardsOf(t, 5);
  const split = await t.throwsAsync(collect(shardSource({ path: dir, split: 'validation' }).read(fakeSourceContext())));
  t.regex(split!.message, /manifest\.json: the manifest is of split "train" but split "validation" was asked for/);
  const err = t.throws(() => shardSource({ path: '' }));
  t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.is((err as { option?: string }).option, 'path');
});

test('shardFileInfo describes each format; listShardFiles follows the manifest', async (t) => {
  const pq = await shardsOf(t, 50, 'parquet');
  const info = await shardFileInfo(path.join(pq.dir, pq.manifest.shards[0]!.path));
  t.deepEqual(info, {
    file: path.join(pq.dir, 'train-00000-of-00002.parquet'),
    format: 'parquet',
    rows: 40,
    bytes: pq.manifest.shards[0]!.bytes,
    codec: 'snappy',
    schemaName: 'conversation',
    schemaVersion: 1,
    columns: ['id', 'image', 'conversations', 'source', 'meta'],
    rowGroups: 3,
  });
  const ar = await shardsOf(t, 50, 'arrow');
  t.like(await shardFileInfo(path.join(ar.dir, ar.manifest.shards[1]!.path)), { format: 'arrow', rows: 10, codec: 'uncompressed', schemaName: 'conversation', schemaVersion: 1, rowGroups: 1 });
  const js = await shardsOf(t, 50, 'jsonl');
  t.like(await shardFileInfo(path.join(js.dir, js.manifest.shards[0]!.path)), { format: 'jsonl', rows: 40, schemaName: 'conversation', schemaVersion: 1, rowGroups: 0 });

  t.deepEqual(await listShardFiles(pq.dir), pq.manifest.shards.map((s) => path.join(pq.dir, s.path)));
  await fsp.rm(path.join(pq.dir, 'manifest.json'));
  t.deepEqual(await listShardFiles(pq.dir), pq.manifest.shards.map((s) => path.join(pq.dir, s.path)));
  const one = path.join(ar.dir, ar.manifest.shards[0]!.path);
  t.deepEqual(await listShardFiles(one), [one]);
});
