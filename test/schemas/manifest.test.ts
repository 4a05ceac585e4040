import test from 'ava';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import {
  partitionManifestName,
  partitionShardFileName,
  readManifest,
  shardFileName,
  writeManifestAtomic,
  type Manifest,
} from '../../schemas/manifest.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const manifest: Manifest = {
  format: 'parquet',
  schema: 'conversation',
  schema_version: 1,
  split: 'train',
  total_rows: 5,
  shards: [
    { path: 'train-00000-of-00002.parquet', rows: 3, bytes: 100, sha256: 'a'.repeat(64) },
    { path: 'train-00001-of-00002.parquet', rows: 2, bytes: 90, sha256: 'b'.repeat(64) },
  ],
  rejected: { count: 1, path: 'rejected.jsonl' },
  params: { max_rounds: 3 },
  seed: 1,
  inputs: [{ path: 'in.json', bytes: 10, sha256: 'c'.repeat(64) }],
};

test('shard and manifest names follow the datasets layout', (t) => {
  t.is(shardFileName('train', 3, 12, 'parquet'), 'train-00003-of-00012.parquet');
  t.is(partitionShardFileName('validation', 2, 7, 'arrow'), 'validation-part00002-00007.arrow');
  t.is(partitionManifestName(1, 4), 'manifest.part-00001-of-00004.json');
});

test('writeManifestAtomic then readManifest round-trips and leaves no temporary file', async (t) => {
  const dir = await tempDir(t, 'ff-manifest-');
  await writeManifestAtomic(dir, manifest);
  t.deepEqual(await readManifest(dir), manifest);
  await writeManifestAtomic(dir, { ...manifest, partition: { index: 0, count: 2 } }, partitionManifestName(0, 2));
  t.deepEqual((await fsp.readdir(dir)).sort(), ['manifest.json', 'manifest.part-00000-of-00002.json']);
});

test('a missing manifest is FF_ERR_BAD_INPUT naming the file', async (t) => {
  const dir = await tempDir(t, 'ff-manifest-');
  const err = await t.throwsAsync(readManifest(dir));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.true(err!.message.startsWith(`${path.join(dir, 'manifest.json')}: no shard manifest here`));
});

const invalid: [string, unknown, RegExp][] = [
  ['not JSON', '{', /the shard manifest is not valid JSON/],
  ['bad format', { ...manifest, format: 'csv' }, /invalid shard manifest: "format" must be one of parquet, arrow, jsonl/],
  ['rows do not add up', { ...manifest, total_rows: 6 }, /"total_rows" is 6 but the shards hold 5 rows/],
  ['escaping path', { ...manifest, shards: [{ ...manifest.shards[0], path: '../x.parquet' }, manifest.shards[1]] }, /shards\[0\]\.path must be a relative path inside the folder/],
  ['bad sha', { ...manifest, shards: [{ ...manifest.shards[0], sha256: 'xyz' }, manifest.shards[1]] }, /shards\[0\]\.sha256 must be 64 hex digits/],
  ['bad partition', { ...manifest, partition: { index: 2, count: 2 } }, /"partition" must be \{index, count\} with index < count/],
];
for (const [name, content, message] of invalid) {
  test(`an invalid manifest (${name}) is FF_ERR_BAD_INPUT naming the file`, async (t) => {
    const dir = await tempDir(t, 'ff-manifest-');
    await fsp.writeFile(path.join(dir, 'manifest.json'), typeof content === 'string' ? content : JSON.stringify(content));
    const err = await t.throwsAsync(readManifest(dir));
    t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
    t.regex(err!.message, message);
    t.true(err!.message.startsWith(path.join(dir, 'manifest.json')));
  });
}

test('a folder of unmerged partitions says to merge them', async (t) => {
  const dir = await tempDir(t, 'ff-manifest-');
  await writeManifestAtomic(dir, { ...manifest, partition: { index: 0, count: 2 } }, partitionManifestName(0, 2));
  const err = await t.throwsAsync(readManifest(dir));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(err!.message, /manifest\.json: no shard manifest here Fix: this folder holds partition runs; combine them with `pipeline merge` first$/);
});
