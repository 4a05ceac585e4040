/**
 * The shard sink measures UTF-8 only when cheap bounds cannot decide; its shard and row
 * group cuts must be exactly those of summing every record's estimate.
 */
import test from 'ava';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parquetMetadata } from 'hyparquet';
import { conversationSchema, type Conversation } from '../../schemas/conversation.ts';
import { parquetEncoder } from '../../sinks/parquet-encoder.ts';
import { estimateRecordBytes, shardSink } from '../../sinks/shard-sink.ts';
import { Rng } from '../../src/stream/random.ts';
import { fakeSinkContext, iterate } from './sink-harness.ts';

const MIXED = ['red', 'circle', 'café', '東京タワー', '😀', 'ñandú', 'left', 'of', 'the', 'Ωmega', 'large'];
/** Nearly 3 UTF-8 bytes per UTF-16 unit: the cheap low bound is far below the estimate. */
const CJK = ['東京', 'タワー', '赤い円', '犬が走る', '左', '大きい'];

/** Conversations mixing ASCII and 2-, 3- and 4-byte UTF-8, so the bounds are often loose. */
function mixed(n: number, WORDS = MIXED): Conversation[] {
  const rng = new Rng(12);
  const sentence = (len: number): string => Array.from({ length: len }, () => rng.pick(WORDS)).join(' ');
  return Array.from({ length: n }, (_, i) => ({
    id: `m-${i}`,
    image: `img/${i}.jpg`,
    conversations: [
      { from: 'human' as const, value: `<image>\n${sentence(rng.range(2, 30))}?` },
      { from: 'gpt' as const, value: `${sentence(rng.range(1, 60))}.` },
    ],
    source: 'mixed',
    meta: '',
  }));
}

/** The cut rule with every estimate summed: row counts of each shard's row groups. */
function expectedGroups(records: readonly Conversation[], maxRows: number, maxBytes: number, rowGroupRows: number): number[][] {
  const encoder = parquetEncoder({ fields: conversationSchema.fields, schemaName: 'conversation', schemaVersion: 1 });
  const rowGroupBytes = Math.min(32 * 1024 * 1024, maxBytes);
  const shards: number[][] = [];
  let open: { bytes: number; rows: number; groups: number[]; encoding: ReturnType<typeof encoder.open> } | null = null;
  let pending: Conversation[] = [];
  let pendingBytes = 0;
  const flush = (): void => {
    if (!open || pending.length === 0) return;
    open.bytes += open.encoding.add(pending).length;
    open.groups.push(pending.length);
    pending = [];
    pendingBytes = 0;
  };
  for (const r of records) {
    const bytes = estimateRecordBytes(conversationSchema.fields, r);
    if (open && (open.rows >= maxRows || open.bytes + pendingBytes + bytes > maxBytes)) {
      flush();
      shards.push(open.groups);
      open = null;
    }
    open ??= { bytes: 0, rows: 0, groups: [], encoding: encoder.open() };
    pending.push(r);
    pendingBytes += bytes;
    open.rows++;
    if (pending.length >= rowGroupRows || pendingBytes >= rowGroupBytes) flush();
  }
  if (open) {
    flush();
    shards.push(open.groups);
  }
  return shards;
}

for (const [maxBytes, rowGroupRows, words] of [
  [12 * 1024, 10_000, MIXED],
  [40 * 1024, 64, MIXED],
  [40 * 1024, 64, CJK],
  [256 * 1024 * 1024, 100, MIXED],
] as const) {
  test(`shard and row group cuts equal the exact estimate's (maxBytes ${maxBytes}, rowGroupRows ${rowGroupRows}, ${words[0]}...)`, async (t) => {
    const records = mixed(600, words);
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'ff-shard-size-'));
    try {
      const manifest = await shardSink<Conversation>({ dir, schema: conversationSchema, maxBytes, rowGroupRows }).write(iterate(records), fakeSinkContext({ dir }));
      const groups: number[][] = [];
      for (const s of manifest.shards) {
        const bytes = await fsp.readFile(path.join(dir, s.path));
        const meta = parquetMetadata(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
        groups.push(meta.row_groups.map((g) => Number(g.num_rows)));
      }
      const expected = expectedGroups(records, 100_000, maxBytes, rowGroupRows);
      t.deepEqual(groups, expected);
      t.true(expected.flat().length > 3, 'the case cuts several groups');
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
}
