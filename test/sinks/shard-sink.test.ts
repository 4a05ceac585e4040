import test, { type ExecutionContext } from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { conversationSchema, type Conversation } from '../../schemas/conversation.ts';
import { readManifest, type Manifest } from '../../schemas/manifest.ts';
import { checkParquetCodec, PARQUET_CODECS } from '../../sinks/parquet-encoder.ts';
import { tableFromIPC } from 'apache-arrow';
import { shardSink, type ShardSinkOptions } from '../../sinks/shard-sink.ts';
import { shardFileInfo, shardSource } from '../../sources/shards.ts';
import { collect, fakeSinkContext, fakeSourceContext, iterate, makeConversations } from './sink-harness.ts';
import { tempDir } from '../helpers/temp-dir.ts';

async function writeShards(
  t: ExecutionContext,
  records: Iterable<unknown>,
  options: Partial<ShardSinkOptions<Conversation>> = {},
  ctxOptions: Partial<Parameters<typeof fakeSinkContext>[0]> = {},
  dir?: string,
  failAfter?: number,
): Promise<{ dir: string; manifest: Manifest; ctx: ReturnType<typeof fakeSinkContext> }> {
  const out = dir ?? (await tempDir(t, 'ff-shard-sink-'));
  const ctx = fakeSinkContext({ dir: out, ...ctxOptions });
  const sink = shardSink<Conversation>({ dir: out, schema: conversationSchema, ...options });
  const manifest = await sink.write(iterate(records, { failAfter }) as AsyncIterable<Conversation>, ctx);
  return { dir: out, manifest, ctx };
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

async function sha256s(dir: string, manifest: Manifest): Promise<string[]> {
  const { createHash } = await import('node:crypto');
  return Promise.all(manifest.shards.map(async (s) => createHash('sha256').update(await fsp.readFile(path.join(dir, s.path))).digest('hex')));
}

test('parquet shards read back by DuckDB with the LLaVA nested types and equal values', async (t) => {
  const records = makeConversations(250);
  const { dir, manifest } = await writeShards(t, records, { maxRows: 100 });
  t.deepEqual(manifest.shards.map((s) => s.path), ['train-00000-of-00003.parquet', 'train-00001-of-00003.parquet', 'train-00002-of-00003.parquet']);
  t.deepEqual(manifest.shards.map((s) => s.rows), [100, 100, 50]);
  t.is(manifest.total_rows, 250);
  t.deepEqual(await readManifest(dir), manifest);

  const glob = path.join(dir, '*.parquet');
  const types = Object.fromEntries((await duck(`DESCRIBE SELECT * FROM read_parquet('${glob}')`)).map((r) => [r.column_name, r.column_type]));
  t.deepEqual(types, {
    id: 'VARCHAR',
    image: 'VARCHAR',
    conversations: 'STRUCT("from" VARCHAR, "value" VARCHAR)[]',
    source: 'VARCHAR',
    meta: 'VARCHAR',
  });
  const count = await duck(`SELECT count(*)::INTEGER AS n FROM read_parquet('${glob}')`);
  t.is(count[0]!.n, manifest.total_rows);
  const rows = await duck(`SELECT * FROM read_parquet('${glob}') ORDER BY id`);
  t.deepEqual(rows, records);
  // The nested column is queryable as a list of structs, not an opaque blob.
  const firstTurn = await duck(`SELECT conversations[1]."from" AS f, len(conversations) AS n FROM read_parquet('${glob}') WHERE id = 'conv-000000'`);
  t.is(firstTurn[0]!.f, 'human');
  t.is(Number(firstTurn[0]!.n), records[0]!.conversations.length);
});

test('parquet shards round-trip through hyparquet (shardSource) with origins in order', async (t) => {
  const records = makeConversations(120);
  const { dir } = await writeShards(t, records, { maxRows: 50, rowGroupRows: 20 });
  const info = await shardFileInfo(path.join(dir, 'train-00000-of-00003.parquet'));
  t.is(info.rowGroups, 3);
  t.is(info.codec, 'snappy');
  t.is(info.schemaName, 'conversation');
  t.is(info.schemaVersion, 1);
  const back = await collect(shardSource({ path: dir, schema: conversationSchema }).read(fakeSourceContext()));
  t.deepEqual(back, records);
});

test('shards split by estimated bytes stay near maxBytes', async (t) => {
  const records = makeConversations(400);
  const maxBytes = 16 * 1024;
  const { manifest } = await writeShards(t, records, { maxBytes, codec: 'uncompressed' });
  t.true(manifest.shards.length > 2);
  t.is(manifest.total_rows, 400);
  for (const s of manifest.shards) {
    t.regex(s.path, /^train-\d{5}-of-\d{5}\.parquet$/);
    // Estimate covers the data; the footer (schema, per-column metadata) comes on top.
    t.true(s.bytes < maxBytes + 8 * 1024, `${s.path} has ${s.bytes} bytes`);
  }
  t.true(manifest.shards.slice(0, -1).every((s) => s.bytes > maxBytes / 3));
});

test('the same input gives byte-identical shards and manifest', async (t) => {
  const a = await writeShards(t, makeConversations(300), { maxRows: 128 });
  const b = await writeShards(t, makeConversations(300), { maxRows: 128 });
  t.deepEqual(a.manifest.shards, b.manifest.shards);
  t.deepEqual(await sha256s(a.dir, a.manifest), a.manifest.shards.map((s) => s.sha256));
  t.is(await fsp.readFile(path.join(a.dir, 'manifest.json'), 'utf8'), await fsp.readFile(path.join(b.dir, 'manifest.json'), 'utf8'));
});

for (const format of ['parquet', 'arrow', 'jsonl'] as const) {
  test(`resume after a crash gives shards byte-identical to an uninterrupted run (${format})`, async (t) => {
    const records = makeConversations(230);
    const clean = await writeShards(t, records, { maxRows: 50, rowGroupRows: 20, format });

    const dir = await tempDir(t, 'ff-shard-sink-');
    // First attempt dies at record 130: shards 0 and 1 are complete, shard 2 half written.
    const crash = writeShards(t, records, { maxRows: 50, rowGroupRows: 20, format }, {}, dir, 130).catch((e: unknown) => e);
    const err = await crash;
    t.is((err as Error).message, 'simulated crash');
    const partial = path.join(dir, '.partial');
    const state = JSON.parse(await fsp.readFile(path.join(partial, 'state.json'), 'utf8')) as { shards: { rows: number }[] };
    t.deepEqual(state.shards.map((s) => s.rows), [50, 50]);
    await t.throwsAsync(fsp.access(path.join(dir, 'manifest.json')));
    // Nothing is visible to readers yet.
    await t.throwsAsync(collect(shardSource({ path: dir }).read(fakeSourceContext())), { code: 'FF_ERR_BAD_INPUT' });
    // A kill -9 can also leave a temporary file behind.
    await fsp.writeFile(path.join(partial, `train-00002.${format}.tmp`), 'junk');

    const resumed = await writeShards(t, records, { maxRows: 50, rowGroupRows: 20, format }, {}, dir);
    t.deepEqual(resumed.manifest, clean.manifest);
    // Only the three missing shards were encoded again.
    t.deepEqual(resumed.ctx.notes, ['3 shards written', '4 shards written', '5 shards written']);
    t.deepEqual(await sha256s(dir, resumed.manifest), clean.manifest.shards.map((s) => s.sha256));
    t.deepEqual((await fsp.readdir(dir)).sort(), ['manifest.json', ...clean.manifest.shards.map((s) => s.path)].sort());
  });
}

test('a crash inside finish (shards renamed, no manifest yet) resumes to the same result', async (t) => {
  const records = makeConversations(120);
  const clean = await writeShards(t, records, { maxRows: 50 });
  const dir = await tempDir(t, 'ff-shard-sink-');
  await writeShards(t, records, { maxRows: 50 }, {}, dir, 110).catch(() => {});
  const partial = path.join(dir, '.partial');
  const state = JSON.parse(await fsp.readFile(path.join(partial, 'state.json'), 'utf8')) as { fingerprint: string; shards: unknown[] };
  // Rebuild the state finish() leaves when killed after renaming shards but before the manifest.
  state.shards = clean.manifest.shards.map((s, k) => ({ file: `train-${String(k).padStart(5, '0')}.parquet`, rows: s.rows, bytes: s.bytes, sha256: s.sha256 }));
  await fsp.writeFile(path.join(partial, 'state.json'), JSON.stringify(state));
  for (const s of clean.manifest.shards) await fsp.copyFile(path.join(clean.dir, s.path), path.join(dir, s.path));
  await fsp.rm(path.join(partial, 'train-00000.parquet'), { force: true });
  await fsp.rm(path.join(partial, 'train-00001.parquet'), { force: true });

  const again = await writeShards(t, records, { maxRows: 50 }, {}, dir);
  t.deepEqual(again.manifest, clean.manifest);
  t.deepEqual(await sha256s(dir, again.manifest), clean.manifest.shards.map((s) => s.sha256));
  t.deepEqual((await fsp.readdir(dir)).sort(), ['manifest.json', ...clean.manifest.shards.map((s) => s.path)].sort());
});

test('invalid records go to dead letters with their reason; the manifest counts them', async (t) => {
  const records: unknown[] = makeConversations(20);
  records.splice(5, 0, { ...(records[0] as object), id: '' });
  records.splice(9, 0, { id: 'x', image: '/abs/a.jpg', conversations: [{ from: 'human', value: '<image>\nq' }, { from: 'gpt', value: 'a' }], source: 's', meta: '' });
  const { manifest, ctx } = await writeShards(t, records);
  t.is(manifest.total_rows, 20);
  t.deepEqual(manifest.rejected, { count: 2, path: 'rejected.jsonl' });
  t.deepEqual(ctx.rejected.map((r) => r.reason), [
    'field "id" is empty.',
    'field "image" must be relative to the image root, got absolute path "/abs/a.jpg".',
  ]);
  t.deepEqual(ctx.rejected.map((r) => r.origin?.index), [5, 9]);
});

test('with the fail policy an invalid record stops the run with FF_ERR_BAD_RECORD', async (t) => {
  const records: unknown[] = [...makeConversations(3), { id: 'bad' }];
  const err = await t.throwsAsync(writeShards(t, records, {}, { policy: 'fail' }));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.regex(err!.message, /field "image" is missing/);
});

test('a rerun with other settings replaces the old shards and manifest', async (t) => {
  const first = await writeShards(t, makeConversations(100), { maxRows: 20 });
  t.is(first.manifest.shards.length, 5);
  await fsp.writeFile(path.join(first.dir, 'notes.txt'), 'mine');
  const second = await writeShards(t, makeConversations(100), { maxRows: 60 }, {}, first.dir);
  t.deepEqual(second.manifest.shards.map((s) => s.path), ['train-00000-of-00002.parquet', 'train-00001-of-00002.parquet']);
  t.deepEqual((await fsp.readdir(first.dir)).sort(), ['manifest.json', 'notes.txt', 'train-00000-of-00002.parquet', 'train-00001-of-00002.parquet']);
});

test('partitions write partition-named shards and a partition manifest', async (t) => {
  const dir = await tempDir(t, 'ff-shard-sink-');
  const records = makeConversations(70);
  const { manifest } = await writeShards(t, records, { maxRows: 30, split: 'validation' }, { dir, partition: { index: 1, count: 3 } }, dir);
  t.deepEqual(manifest.partition, { index: 1, count: 3 });
  t.deepEqual(manifest.shards.map((s) => s.path), ['validation-part00001-00000.parquet', 'validation-part00001-00001.parquet', 'validation-part00001-00002.parquet']);
  t.deepEqual((await fsp.readdir(dir)).sort(), ['manifest.part-00001-of-00003.json', ...manifest.shards.map((s) => s.path)].sort());
  t.deepEqual(await readManifest(dir, 'manifest.part-00001-of-00003.json'), manifest);
});

test('an empty input gives a manifest with no shards', async (t) => {
  const { dir, manifest } = await writeShards(t, []);
  t.deepEqual(manifest.shards, []);
  t.is(manifest.total_rows, 0);
  t.deepEqual(await collect(shardSource({ path: dir }).read(fakeSourceContext())), []);
});

for (const codec of PARQUET_CODECS) {
  test(`parquet codec ${codec} is recorded in the file and readable by DuckDB and hyparquet`, async (t) => {
    const records = makeConversations(60);
    const { dir, manifest } = await writeShards(t, records, { codec });
    const info = await shardFileInfo(path.join(dir, manifest.shards[0]!.path));
    t.is(info.codec, codec);
    const rows = await duck(`SELECT * FROM read_parquet('${path.join(dir, '*.parquet')}') ORDER BY id`);
    t.deepEqual(rows, records);
    t.deepEqual(await collect(shardSource({ path: dir, schema: conversationSchema }).read(fakeSourceContext())), records);
  });
}

test('arrow shards are Arrow IPC files with explicit nested types and schema metadata', async (t) => {
  const records = makeConversations(90);
  const { dir, manifest } = await writeShards(t, records, { format: 'arrow', maxRows: 40, rowGroupRows: 15 });
  t.deepEqual(manifest.shards.map((s) => s.path), ['train-00000-of-00003.arrow', 'train-00001-of-00003.arrow', 'train-00002-of-00003.arrow']);
  const table = tableFromIPC(await fsp.readFile(path.join(dir, manifest.shards[0]!.path)));
  t.is(table.numRows, 40);
  t.is(table.batches.length, 3);
  t.is(table.schema.metadata.get('factflow.schema'), 'conversation');
  t.is(table.schema.metadata.get('factflow.schema_version'), '1');
  t.deepEqual(table.schema.fields.map((f) => `${f.name}:${String(f.type)}:${f.nullable}`), [
    'id:Utf8:false',
    'image:Utf8:true',
    'conversations:List<Struct<{from:Utf8, value:Utf8}>>:false',
    'source:Utf8:false',
    'meta:Utf8:false',
  ]);
  t.deepEqual(await collect(shardSource({ path: dir, schema: conversationSchema }).read(fakeSourceContext())), records);
});

test('jsonl shards hold one record per line in schema key order', async (t) => {
  const records = makeConversations(30).map((r) => ({ meta: r.meta, source: r.source, conversations: r.conversations, image: r.image, id: r.id }));
  const { dir, manifest } = await writeShards(t, records, { format: 'jsonl' });
  const lines = (await fsp.readFile(path.join(dir, manifest.shards[0]!.path), 'utf8')).split('\n');
  t.is(lines.length, 31);
  t.is(lines[30], '');
  t.deepEqual(Object.keys(JSON.parse(lines[0]!) as object), ['id', 'image', 'conversations', 'source', 'meta']);
  t.deepEqual(await collect(shardSource({ path: dir }).read(fakeSourceContext())), makeConversations(30));
});

test('bad options are refused before any stream exists', (t) => {
  const base = { dir: '/tmp/x', schema: conversationSchema };
  const cases: [Partial<ShardSinkOptions<Conversation>>, string][] = [
    [{ dir: '' }, 'dir'],
    [{ format: 'csv' as never }, 'format'],
    [{ split: 'my-split' }, 'split'],
    [{ maxRows: 0 }, 'maxRows'],
    [{ maxBytes: 1.5 }, 'maxBytes'],
    [{ rowGroupRows: -1 }, 'rowGroupRows'],
    [{ codec: 'lz4' as never }, 'codec'],
    [{ format: 'arrow', codec: 'gzip' }, 'codec'],
    [{ schema: {} as never }, 'schema'],
  ];
  for (const [bad, option] of cases) {
    const err = t.throws(() => shardSink({ ...base, ...bad }));
    t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
    t.is((err as { option?: string }).option, option);
    t.true(err!.message.includes(`option "${option}"`));
  }
});

test('an aborted run stops with FF_ERR_ABORTED and publishes nothing', async (t) => {
  const dir = await tempDir(t, 'ff-shard-sink-');
  const ac = new AbortController();
  const ctx = { ...fakeSinkContext({ dir }), signal: ac.signal };
  async function* records(): AsyncIterable<Conversation> {
    let i = 0;
    for (const r of makeConversations(100)) {
      if (i++ === 50) ac.abort();
      yield r;
    }
  }
  const err = await t.throwsAsync(shardSink({ dir, schema: conversationSchema, maxRows: 20 }).write(records(), ctx));
  t.is((err as { code?: string }).code, 'FF_ERR_ABORTED');
  await t.throwsAsync(fsp.access(path.join(dir, 'manifest.json')));
});

test('zstd is refused with a clear reason where this Node cannot compress it', (t) => {
  if (PARQUET_CODECS.includes('zstd')) {
    t.is(checkParquetCodec('zstd'), 'zstd');
    return;
  }
  const err = t.throws(() => shardSink({ dir: '/tmp/x', schema: conversationSchema, codec: 'zstd' }));
  t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(err!.message, /option "codec": unsupported Parquet codec "zstd" \(zstd needs Node >= 22.15/);
});

test('through runFlow: shards -> shards copies records, fingerprints inputs and counts rejections', async (t) => {
  const { runFlow } = await import('../../src/stream/flow.ts');
  const records: unknown[] = makeConversations(60);
  records.splice(10, 0, { ...(records[0] as object), id: '' });
  const src = await writeShards(t, records as Conversation[], { format: 'jsonl', validate: false, maxRows: 25 });
  const out = await tempDir(t, 'ff-shard-sink-');
  const result = await runFlow(
    { source: shardSource({ path: src.dir }), sink: shardSink({ dir: out, schema: conversationSchema, maxRows: 40 }) },
    { seed: 3, params: { note: 'copy' }, deadLetterPath: path.join(out, 'rejected.jsonl') },
  );
  const manifest = result.result as Manifest;
  t.is(manifest.total_rows, 60);
  t.deepEqual(manifest.rejected, { count: 1, path: 'rejected.jsonl' });
  t.deepEqual(manifest.inputs, src.manifest.shards.map((s) => ({ path: path.join(src.dir, s.path), bytes: s.bytes, sha256: s.sha256 })));
  t.deepEqual(manifest.params, { note: 'copy' });
  t.is(manifest.seed, 3);
  const letters = (await fsp.readFile(path.join(out, 'rejected.jsonl'), 'utf8')).trim().split('\n');
  t.is(letters.length, 1);
  t.regex(letters[0]!, /field \\"id\\" is empty/);
  t.deepEqual(await collect(shardSource({ path: out, schema: conversationSchema }).read(fakeSourceContext())), makeConversations(60));
});

test('a writer killed with SIGKILL midway resumes to byte-identical shards', async (t) => {
  const { spawn } = await import('node:child_process');
  const records = makeConversations(400);
  const clean = await writeShards(t, records, { maxRows: 50, rowGroupRows: 20 });
  const dir = await tempDir(t, 'ff-shard-sink-');
  const script = path.join(path.dirname(new URL(import.meta.url).pathname), 'kill-writer.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', script, dir, '400', '5'], { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  const shardsDone = async (): Promise<number> => {
    try {
      return (JSON.parse(await fsp.readFile(path.join(dir, '.partial', 'state.json'), 'utf8')) as { shards: unknown[] }).shards.length;
    } catch {
      return 0;
    }
  };
  const deadline = Date.now() + 60_000;
  while ((await shardsDone()) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  child.kill('SIGKILL');
  t.is(await exited, 'SIGKILL', 'the writer finished before it could be killed');
  const kept = await shardsDone();
  t.true(kept >= 2 && kept < 8, `kept ${kept} shards`);
  await t.throwsAsync(fsp.access(path.join(dir, 'manifest.json')));

  const resumed = await writeShards(t, records, { maxRows: 50, rowGroupRows: 20 }, {}, dir);
  t.is(resumed.ctx.notes.length, 8 - kept);
  t.deepEqual(resumed.manifest, clean.manifest);
  t.deepEqual(await sha256s(dir, resumed.manifest), clean.manifest.shards.map((s) => s.sha256));
});
