import test from 'ava';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runPipeline } from '../../src/pipeline/run-pipeline.ts';
import shapesWorld from '../../pipelines/shapes-world.ts';

test('the shapes-world pipeline writes a world through the runner, with progress and --seed', async (t) => {
  const out = await mkdtemp(path.join(os.tmpdir(), 'shapes-world-pipe-'));
  const updates: number[] = [];
  const summary = await runPipeline(shapesWorld, {
    out,
    seed: 5,
    params: { images: 12, eval_images: 4, mmhal_per_type: 1 },
    progress: { start: () => ({ update: (d: number) => updates.push(d), setTotal() {}, stop() {} }) },
  });
  const world = JSON.parse(await readFile(path.join(out, 'world.json'), 'utf8'));
  t.is(world.seed, 5);
  t.is(world.counts.images.total, 12 + 2 + 4);
  t.is(world.params.flickr_images, 2, 'flickr_images -1 means images / 5');
  t.is((summary.result as { counts: { images: { total: number } } }).counts.images.total, 18);
  t.is(updates.at(-1), 18);
  t.truthy(await stat(path.join(out, 'summary.json')));
  await rm(out, { recursive: true, force: true });
});

test('the shapes-world pipeline refuses partitions', async (t) => {
  const out = await mkdtemp(path.join(os.tmpdir(), 'shapes-world-pipe-'));
  const err = await t.throwsAsync(runPipeline(shapesWorld, { out, partition: '0/2', params: { images: 3 } }));
  t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(err!.message, /option "partition"/);
  await rm(out, { recursive: true, force: true });
});
