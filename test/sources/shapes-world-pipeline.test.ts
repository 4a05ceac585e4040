import test from 'ava';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readRunSummary, runPipeline } from '../../src/pipeline/run-pipeline.ts';
import { definePipeline } from '../../src/pipeline/define-pipeline.ts';
import shapesWorld, { shapesWorldFor } from '../../pipelines/shapes-world.ts';
import { tempDir } from '../helpers/temp-dir.ts';

test('the shapes-world pipeline writes a world through the runner, with progress and --seed', async (t) => {
  const out = await tempDir(t, 'shapes-world-pipe-');
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
});

test('the shapes-world pipeline refuses partitions', async (t) => {
  const out = await tempDir(t, 'shapes-world-pipe-');
  const err = await t.throwsAsync(runPipeline(shapesWorld, { out, partition: '0/2', params: { images: 3 } }));
  t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(err!.message, /option "partition"/);
});

test('shapesWorldFor: a finished world is reused with its own params, made again (same params, seed) when an older version made it', async (t) => {
  const cwd = await tempDir(t, 'shapes-world-for-');
  const world = path.join(cwd, 'world');
  await runPipeline(shapesWorld, { out: world, seed: 7, params: { images: 6, eval_images: 2, mmhal_per_type: 0 } });
  const reader = definePipeline({
    name: 'reader',
    description: 'reads the world',
    params: { world: { type: 'path', default: 'world', description: 'world folder' } },
    async run(ctx) { return { world: await shapesWorldFor(ctx, ctx.params.world, { images: 99 }) }; },
  });
  const logs: string[] = [];
  const r = await runPipeline(reader, { cwd, seed: 1, log: (m) => logs.push(m) });
  t.deepEqual(r.result, { world });
  t.regex(logs.join('\n'), /shapes-world: already made in .*world, reusing it/, 'its own params and seed, not the caller\'s');
  // pretend an older generator made it: it is made again with the params and seed it had
  const old = (await readRunSummary(world))!;
  await writeFile(path.join(world, 'summary.json'), JSON.stringify({ ...old, version: 1 }));
  await runPipeline(reader, { cwd, seed: 1, log: (m) => logs.push(m) });
  t.regex(logs.join('\n'), /was made by version 1 of the pipeline, this is version \d+, running it again/);
  const now = (await readRunSummary(world))!;
  t.is(now.version, shapesWorld.version);
  t.is(now.seed, 7);
  t.deepEqual(now.params, old.params);
  t.not(now.run_id, old.run_id);
});
