import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mergeManifests } from '../../src/pipeline/merge.ts';
import { partitionManifestName, partitionShardFileName, readManifest, writeManifestAtomic, type Manifest } from '../../schemas/manifest.ts';
import { tempDir } from '../helpers/temp-dir.ts';

/** Writes partition `index` of `count` into `dir`: `rows` per shard, dead letters `rejected` lines. */
async function writePart(dir: string, index: number, count: number, shardRows: number[], options: { rejected?: number; seed?: number; schema?: string; params?: Record<string, unknown>; input?: string } = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  const shards: Manifest['shards'] = [];
  for (let k = 0; k < shardRows.length; k++) {
    const name = partitionShardFileName('train', index, k, 'jsonl');
    const body = Array.from({ length: shardRows[k]! }, (_, i) => JSON.stringify({ part: index, shard: k, i })).join('\n') + '\n';
    await writeFile(path.join(dir, name), body);
    shards.push({ path: name, rows: shardRows[k]!, bytes: Buffer.byteLength(body), sha256: createHash('sha256').update(body).digest('hex') });
  }
  const tag = `part-${String(index).padStart(5, '0')}-of-${String(count).padStart(5, '0')}`;
  const rejected = options.rejected ?? 0;
  const letters = `rejected.${tag}.jsonl`;
  await writeFile(path.join(dir, letters), Array.from({ length: rejected }, (_, i) => JSON.stringify({ part: index, i }) + '\n').join(''));
  const m: Manifest = {
    format: 'jsonl',
    schema: options.schema ?? 'conversation',
    schema_version: 1,
    split: 'train',
    total_rows: shardRows.reduce((a, b) => a + b, 0),
    shards,
    rejected: { count: rejected, path: letters },
    params: options.params ?? { rows: 10 },
    seed: options.seed ?? 1,
    inputs: [{ path: options.input ?? 'in.json', bytes: 3, sha256: 'a'.repeat(64) }],
    partition: { index, count },
  };
  await writeManifestAtomic(dir, m, partitionManifestName(index, count));
}

test('three partition folders merge into one manifest with final shard names', async (t) => {
  const root = await tempDir(t, 'ff-merge-');
  const dirs = [path.join(root, 'p0'), path.join(root, 'p1'), path.join(root, 'p2')];
  // given out of order on purpose: merge orders by partition index
  await writePart(dirs[2]!, 2, 3, [4], { rejected: 1, input: 'b.json' });
  await writePart(dirs[0]!, 0, 3, [5, 2], { rejected: 2, input: 'a.json' });
  await writePart(dirs[1]!, 1, 3, [3], { input: 'a.json' });
  const out = path.join(root, 'merged');
  const r = await mergeManifests([dirs[2]!, dirs[0]!, dirs[1]!], out);
  t.is(r.partitions, 3);
  const m = await readManifest(out);
  t.deepEqual(m, r.manifest);
  t.is(m.total_rows, 14);
  t.deepEqual(m.shards.map((s) => [s.path, s.rows]), [
    ['train-00000-of-00004.jsonl', 5],
    ['train-00001-of-00004.jsonl', 2],
    ['train-00002-of-00004.jsonl', 3],
    ['train-00003-of-00004.jsonl', 4],
  ]);
  t.is(m.partition, undefined);
  t.deepEqual(m.params, { rows: 10 });
  t.deepEqual(m.rejected, { count: 3, path: 'rejected.jsonl' });
  t.is((await readFile(path.join(out, 'rejected.jsonl'), 'utf8')).trim().split('\n').length, 3);
  t.deepEqual(m.inputs.map((i) => i.path), ['a.json', 'b.json']);
  // shard bytes are the partition's, unchanged
  for (const s of m.shards) {
    const body = await readFile(path.join(out, s.path));
    t.is(createHash('sha256').update(body).digest('hex'), s.sha256);
  }
  t.true((await readFile(path.join(out, 'train-00002-of-00004.jsonl'), 'utf8')).startsWith('{"part":1,'));
  t.false((await readdir(out)).some((f) => f.endsWith('.tmp')));
});

test('partitions sharing one folder merge too, in place', async (t) => {
  const dir = await tempDir(t, 'ff-merge-');
  await writePart(dir, 0, 2, [2]);
  await writePart(dir, 1, 2, [3]);
  const r = await mergeManifests([dir], dir);
  t.is(r.manifest.total_rows, 5);
  t.truthy(await stat(path.join(dir, 'manifest.json')));
  t.truthy(await stat(path.join(dir, 'train-00001-of-00002.jsonl')));
});

test('a missing partition is an error naming it', async (t) => {
  const root = await tempDir(t, 'ff-merge-');
  await writePart(path.join(root, 'a'), 0, 4, [1]);
  await writePart(path.join(root, 'b'), 2, 4, [1]);
  const e = await t.throwsAsync(mergeManifests([path.join(root, 'a'), path.join(root, 'b')], path.join(root, 'out')));
  t.is((e as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(e!.message, /missing partitions 1\/4, 3\/4 \(no manifest\.part-00001-of-00004\.json, manifest\.part-00003-of-00004\.json in the folders given\)/);
  t.regex(e!.message, /--partition 1\/4/);
  await t.throwsAsync(stat(path.join(root, 'out', 'manifest.json')), { code: 'ENOENT' });
});

test('a duplicated partition, a disagreeing seed, schema, params or count are errors', async (t) => {
  const root = await tempDir(t, 'ff-merge-');
  await writePart(path.join(root, 'a'), 0, 2, [1]);
  await writePart(path.join(root, 'b'), 1, 2, [1]);
  await writePart(path.join(root, 'dup'), 1, 2, [1]);
  await writePart(path.join(root, 'seed'), 1, 2, [1], { seed: 2 });
  await writePart(path.join(root, 'schema'), 1, 2, [1], { schema: 'preference' });
  await writePart(path.join(root, 'params'), 1, 2, [1], { params: { rows: 11 } });
  await writePart(path.join(root, 'three'), 1, 3, [1]);
  const merge = (...names: string[]) => mergeManifests(names.map((n) => path.join(root, n)), path.join(root, 'out'));
  const dup = await t.throwsAsync(merge('a', 'b', 'dup'));
  t.regex(dup!.message, /partition 1\/2 appears 2 times: .*b\/manifest\.part-00001-of-00002\.json, .*dup\/manifest\.part-00001-of-00002\.json/);
  const seed = await t.throwsAsync(merge('a', 'seed'));
  t.is((seed as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(seed!.message, /seed\/manifest\.part-00001-of-00002\.json: partition manifests disagree on "seed": .*a\/manifest\.part-00000-of-00002\.json has 1, this one has 2/);
  const schema = await t.throwsAsync(merge('a', 'schema'));
  t.is((schema as { code?: string }).code, 'FF_ERR_SCHEMA_MISMATCH');
  t.regex(schema!.message, /disagree on "schema"/);
  const params = await t.throwsAsync(merge('a', 'params'));
  t.regex(params!.message, /disagree on "params"/);
  const count = await t.throwsAsync(merge('a', 'three'));
  t.regex(count!.message, /disagree on the partition count: .* one of 2, this one of 3/);
});

test('a folder without partition manifests, or a changed shard, is an error naming it', async (t) => {
  const root = await tempDir(t, 'ff-merge-');
  await mkdir(path.join(root, 'empty'));
  const e = await t.throwsAsync(mergeManifests([path.join(root, 'empty')], path.join(root, 'out')));
  t.regex(e!.message, /empty: no partition manifests \(manifest\.part-<i>-of-<n>\.json\) in this folder/);
  const e0 = await t.throwsAsync(mergeManifests([], path.join(root, 'out')));
  t.is((e0 as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  await writePart(path.join(root, 'a'), 0, 1, [2]);
  await writeFile(path.join(root, 'a', partitionShardFileName('train', 0, 0, 'jsonl')), 'short\n');
  const e2 = await t.throwsAsync(mergeManifests([path.join(root, 'a')], path.join(root, 'out')));
  t.regex(e2!.message, /train-part00000-00000\.jsonl: shard is 6 bytes but its manifest says \d+/);
});
