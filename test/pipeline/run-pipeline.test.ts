import test from 'ava';
import { cp, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { definePipeline, type RunSummary } from '../../src/pipeline/define-pipeline.ts';
import { readRunSummary, runPipeline } from '../../src/pipeline/run-pipeline.ts';
import tinyCount from '../fixtures/pipelines/tiny-count.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('runs a pipeline file: run.json first, summary.json with flow counts last', async (t) => {
  const out = path.join(await tempDir(t, 'ff-run-'), 'o');
  const logs: string[] = [];
  const summary = await runPipeline('test/fixtures/pipelines/tiny-count.ts', { cwd: root, out, params: ['n=30'], seed: 5, log: (m) => logs.push(m) });
  t.is(summary.pipeline, 'tiny-count');
  t.is(summary.out, out);
  t.deepEqual(summary.params, { n: 30, reject_every: 7, label: 'items' });
  t.is(summary.flows.length, 1);
  const flow = summary.flows[0]!;
  t.is(flow.name, 'flow');
  t.is(flow.dead_letters, 'rejected.jsonl');
  // 7, 14, 21, 28 rejected of 0..29
  t.is(flow.rejected, 4);
  t.deepEqual(flow.stages.map((s) => [s.name, s.in, s.out, s.rejected]), [
    ['generate', 30, 30, 0],
    ['drop-multiples', 30, 26, 4],
    ['count', 26, 26, 0],
  ]);
  t.deepEqual(summary.result, { rows: 26, sum: 435 - 70 });
  t.deepEqual(logs, ['counting 30 items']);

  const written = JSON.parse(await readFile(path.join(out, 'summary.json'), 'utf8')) as RunSummary;
  t.deepEqual(written, JSON.parse(JSON.stringify(summary)));
  const run = JSON.parse(await readFile(path.join(out, 'run.json'), 'utf8'));
  t.deepEqual(run, { pipeline: 'tiny-count', file: 'test/fixtures/pipelines/tiny-count.ts', params: { n: 30, reject_every: 7, label: 'items' }, seed: 5, partition: { index: 0, count: 1 }, policy: 'skip', backend: 'auto' });
  const letters = (await readFile(path.join(out, 'rejected.jsonl'), 'utf8')).trim().split('\n');
  t.is(letters.length, 4);
  t.deepEqual(JSON.parse(await readFile(path.join(out, 'counted.json'), 'utf8')), { label: 'items', rows: 26, sum: 365, seed: 5 });
});

test('default out is runs/<name> under cwd, and a config object runs too', async (t) => {
  const cwd = await tempDir(t, 'ff-run-');
  const summary = await runPipeline(tinyCount, { cwd, params: { n: 3 } });
  t.is(summary.out, path.join(cwd, 'runs', 'tiny-count'));
  t.truthy(await stat(path.join(cwd, 'runs', 'tiny-count', 'summary.json')));
});

test('policy fail turns the first rejection into a BadRecordError with the stage', async (t) => {
  const out = await tempDir(t, 'ff-run-');
  const e = await t.throwsAsync(runPipeline(tinyCount, { out, params: ['n=10'], policy: 'fail' }));
  t.is((e as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.regex(e!.message, /stage "drop-multiples"/);
  await t.throwsAsync(stat(path.join(out, 'summary.json')), { code: 'ENOENT' });
});

test('partition runs tag their summary, run and dead-letter files', async (t) => {
  const out = await tempDir(t, 'ff-run-');
  const s = await runPipeline(tinyCount, { out, partition: '1/2', params: ['n=10'] });
  t.deepEqual(s.partition, { index: 1, count: 2 });
  t.is(s.flows[0]!.dead_letters, 'rejected.part-00001-of-00002.jsonl');
  t.truthy(await stat(path.join(out, 'summary.part-00001-of-00002.json')));
  t.truthy(await stat(path.join(out, 'run.part-00001-of-00002.json')));
  t.deepEqual(await readRunSummary(out), undefined);
  t.is((await readRunSummary(out, { index: 1, count: 2 }))?.pipeline, 'tiny-count');
});

test('several flows get their own names and dead-letter files; a repeated name is an error', async (t) => {
  const out = await tempDir(t, 'ff-run-');
  const two = definePipeline({
    name: 'two-flows',
    description: 'two flows',
    params: {},
    async run(ctx) {
      const src = { name: 'src', async *read() { yield 1; yield 2; } };
      const sink = { name: 'sink', async write(input: AsyncIterable<unknown>) { for await (const _ of input); return 0; } };
      await ctx.flow({ source: src, sink });
      await ctx.flow({ source: src, sink }, { name: 'second' });
      await ctx.flow({ source: src, sink });
      await ctx.flow({ source: src, sink }, { name: 'second' });
    },
  });
  const e = await t.throwsAsync(runPipeline(two, { out }));
  t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e!.message, /option "flow\.name": a flow named "second" already ran/);
  for (const f of ['rejected.jsonl', 'rejected.second.jsonl', 'rejected.flow-3.jsonl']) t.truthy(await stat(path.join(out, f)), f);
});

test('the caller\'s signal aborts the run with FF_ERR_ABORTED and no summary', async (t) => {
  const out = await tempDir(t, 'ff-run-');
  const ac = new AbortController();
  const endless = definePipeline({
    name: 'endless',
    description: 'never ends by itself',
    params: {},
    async run(ctx) {
      const source = {
        name: 'forever',
        async *read(sctx: { signal: AbortSignal }) {
          for (let i = 0; ; i++) {
            if (i === 100) ac.abort(new Error('user pressed stop'));
            if (sctx.signal.aborted) return;
            yield i;
            await new Promise((r) => setImmediate(r));
          }
        },
      };
      const sink = { name: 'drain', async write(input: AsyncIterable<unknown>) { for await (const _ of input); } };
      await ctx.flow({ source, sink });
    },
  });
  const e = await t.throwsAsync(runPipeline(endless, { out, signal: ac.signal }));
  t.is((e as { code?: string }).code, 'FF_ERR_ABORTED');
  await t.throwsAsync(stat(path.join(out, 'summary.json')), { code: 'ENOENT' });
  // an already aborted signal stops before anything is written
  const out2 = path.join(await tempDir(t, 'ff-run-'), 'never');
  const e2 = await t.throwsAsync(runPipeline(endless, { out: out2, signal: AbortSignal.abort() }));
  t.is((e2 as { code?: string }).code, 'FF_ERR_ABORTED');
  await t.throwsAsync(stat(out2), { code: 'ENOENT' });
});

test('ensure() runs a missing dependency once, reuses it, and reruns it when params differ', async (t) => {
  const cwd = await tempDir(t, 'ff-run-');
  let depRuns = 0;
  const dep = definePipeline({
    name: 'dep',
    description: 'makes an artefact',
    params: { size: { type: 'number', default: 2, description: 'size' } },
    async run(ctx) {
      depRuns++;
      await writeFile(path.join(ctx.out, 'artefact.txt'), `size ${ctx.params.size} seed ${ctx.seed}`);
      return { size: ctx.params.size };
    },
  });
  const main = definePipeline({
    name: 'main',
    description: 'needs dep',
    params: { size: { type: 'number', default: 2, description: 'size' } },
    async run(ctx) {
      const s = await ctx.ensure(dep, 'world', { size: ctx.params.size });
      return { dep: s.result, text: await readFile(path.join(cwd, 'world', 'artefact.txt'), 'utf8') };
    },
  });
  const logs: string[] = [];
  const r1 = await runPipeline(main, { cwd, seed: 3, log: (m) => logs.push(m) });
  t.is(depRuns, 1);
  t.deepEqual(r1.result, { dep: { size: 2 }, text: 'size 2 seed 3' });
  await runPipeline(main, { cwd, seed: 3, log: (m) => logs.push(m) });
  t.is(depRuns, 1, 'same params and seed: reused');
  await runPipeline(main, { cwd, seed: 3, params: ['size=4'], log: (m) => logs.push(m) });
  t.is(depRuns, 2, 'other params: run again');
  await runPipeline(main, { cwd, seed: 9, params: ['size=4'], log: (m) => logs.push(m) });
  t.is(depRuns, 3, 'other seed: run again');
  t.regex(logs.join('\n'), /dep: making .*world[\s\S]*dep: already made in .*world, reusing it[\s\S]*made with other params or seed/);
  // a rebuild names what differs
  t.regex(logs.join('\n'), /made with other params or seed \(size 2 -> 4\), running it again/);
  t.regex(logs.join('\n'), /made with other params or seed \(seed 3 -> 9\), running it again/);
  // ensure by file name relative to cwd
  const byName = definePipeline({
    name: 'by-name',
    description: 'ensures a file',
    params: {},
    async run(ctx) {
      return (await ctx.ensure(path.join(root, 'test/fixtures/pipelines/tiny-count.ts'), 'counted', { n: 5 })).result;
    },
  });
  const r = await runPipeline(byName, { cwd });
  t.deepEqual(r.result, { rows: 5, sum: 10 });
});

test('ensure() of a copied output returns the copy, not the folder its summary was written in', async (t) => {
  const cwd = await tempDir(t, 'ff-run-');
  let runs = 0;
  const dep = definePipeline({ name: 'dep', description: 'writes', params: {}, async run(ctx) { runs++; await writeFile(path.join(ctx.out, 'a.txt'), 'made'); return {}; } });
  const main = (dir: string) => definePipeline({ name: 'main', description: 'needs dep', params: {}, async run(ctx) { return { out: (await ctx.ensure(dep, dir)).out }; } });
  const first = await runPipeline(main('world'), { cwd });
  t.is((first.result as { out: string }).out, path.join(cwd, 'world'));
  await cp(path.join(cwd, 'world'), path.join(cwd, 'world-copy'), { recursive: true });
  const second = await runPipeline(main('world-copy'), { cwd });
  t.is(runs, 1, 'the copy is complete: reused');
  t.is((second.result as { out: string }).out, path.join(cwd, 'world-copy'), 'a reader of the returned out reads the copy');
});

test('ensure() into a folder another pipeline made says which pipeline made it', async (t) => {
  const cwd = await tempDir(t, 'ff-run-');
  const maker = (name: string) => definePipeline({ name, description: 'writes', params: {}, async run() { return {}; } });
  const main = (dep: string) => definePipeline({ name: 'main', description: 'needs a dep', params: {}, async run(ctx) { await ctx.ensure(maker(dep), 'shared'); return {}; } });
  const logs: string[] = [];
  await runPipeline(main('first'), { cwd, log: (m) => logs.push(m) });
  await runPipeline(main('second'), { cwd, log: (m) => logs.push(m) });
  t.regex(logs.join('\n'), /second: .*shared was made by the pipeline "first", running it again/);
});

test('ensure() makes an output again when its pipeline version changed or an input it was made from changed', async (t) => {
  const cwd = await tempDir(t, 'ff-run-');
  const runs = { world: 0, mix: 0 };
  const world = (version: number) => definePipeline({
    name: 'world',
    description: 'makes a world',
    version,
    params: { size: { type: 'number', default: 2, description: 'size' } },
    async run(ctx) {
      runs.world++;
      await writeFile(path.join(ctx.out, 'world.txt'), `world v${version} size ${ctx.params.size}`);
      return {};
    },
  });
  const mix = definePipeline({
    name: 'mix',
    description: 'reads a world folder and a notes file',
    params: { world: { type: 'path', default: 'world', description: 'world folder' }, notes: { type: 'path', default: 'notes.txt', description: 'a plain file' } },
    async run(ctx) {
      runs.mix++;
      return { text: await readFile(path.join(ctx.params.world, 'world.txt'), 'utf8') };
    },
  });
  await writeFile(path.join(cwd, 'notes.txt'), 'first');
  const main = (worldVersion: number, worldSize = 2) => definePipeline({
    name: 'main',
    description: 'world, then mix',
    params: {},
    async run(ctx) {
      await ctx.ensure(world(worldVersion), 'world', { size: worldSize });
      return (await ctx.ensure(mix, 'mix', { world: 'world', notes: 'notes.txt' })).result;
    },
  });
  const logs: string[] = [];
  const log = (m: string) => logs.push(m);
  await runPipeline(main(1), { cwd, log });
  t.deepEqual(runs, { world: 1, mix: 1 });
  const first = await readRunSummary(path.join(cwd, 'mix'));
  t.is(first!.version, 1);
  t.true(typeof first!.run_id === 'string' && first!.run_id.length > 0);
  t.deepEqual(first!.inputs!.map((i) => [i.param, i.made_by?.out ?? null]), [['world', path.join(cwd, 'world')], ['notes', null]]);

  await runPipeline(main(1), { cwd, log });
  t.deepEqual(runs, { world: 1, mix: 1 }, 'nothing changed: both reused');

  // the world's generator changed (version 2): the world is made again, and so is the mix made from it
  const r = await runPipeline(main(2), { cwd, log });
  t.deepEqual(runs, { world: 2, mix: 2 });
  t.deepEqual(r.result, { text: 'world v2 size 2' }, 'the mix read the new world, not a stale one');
  t.regex(logs.join('\n'), /world: .*world was made by version 1 of the pipeline, this is version 2, running it again/);
  t.regex(logs.join('\n'), /mix: .*mix was made from inputs that changed since \(world: .*world was made again\), running it again/);

  // a plain file input changed: the mix again, the world reused
  await writeFile(path.join(cwd, 'notes.txt'), 'second, longer');
  await runPipeline(main(2), { cwd, log });
  t.deepEqual(runs, { world: 2, mix: 3 });
  t.regex(logs.at(-1)!, /notes: .*notes\.txt changed/);
  await runPipeline(main(2), { cwd, log });
  t.deepEqual(runs, { world: 2, mix: 3 }, 'and reused after that');
});
