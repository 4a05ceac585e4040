import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { definePipeline } from '../../src/pipeline/define-pipeline.ts';
import { lockFileName } from '../../src/pipeline/out-lock.ts';
import { runPipeline } from '../../src/pipeline/run-pipeline.ts';
import tinyCount from '../fixtures/pipelines/tiny-count.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

/** A lock as another process would leave it. */
async function plantLock(out: string, pid: number): Promise<string> {
  await mkdir(out, { recursive: true });
  const file = path.join(out, '.run.lock');
  await writeFile(file, JSON.stringify({ pid, host: hostname(), since: '2026-01-01T00:00:00.000Z' }));
  return file;
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid!;
}

test('two ensures of one output at once: it is made once, the second waits and reuses it', async (t) => {
  const cwd = await tempDir(t, 'ff-lock-');
  let runs = 0;
  const slow = definePipeline({
    name: 'slow',
    description: 'takes a while to make its output',
    params: {},
    async run(ctx) {
      runs++;
      await writeFile(path.join(ctx.out, 'part.tmp'), 'x');
      await sleep(300);
      await writeFile(path.join(ctx.out, 'made.txt'), String(runs));
      return { made: runs };
    },
  });
  const both = definePipeline({
    name: 'both',
    description: 'two experiments needing the same mix',
    params: {},
    async run(ctx) {
      const [a, b] = await Promise.all([ctx.ensure(slow, 'mix', {}), ctx.ensure(slow, 'mix', {})]);
      return { a: a.run_id, b: b.run_id };
    },
  });
  const logs: string[] = [];
  const r = await runPipeline(both, { cwd, log: (m) => logs.push(m) });
  t.is(runs, 1);
  const ids = r.result as { a: string; b: string };
  t.is(ids.a, ids.b);
  t.is(await readFile(path.join(cwd, 'mix', 'made.txt'), 'utf8'), '1');
  t.regex(logs.join('\n'), /mix is being made by process \d+ on .*; waiting for it[\s\S]*slow: already made in .*mix, reusing it/);
  t.false(await exists(path.join(cwd, 'mix', '.run.lock')), 'released');
});

test('a run into a folder another live process is writing fails at once, naming the lock and the fix', async (t) => {
  const out = path.join(await tempDir(t, 'ff-lock-'), 'o');
  // our parent (ava) is alive and is not this process
  const file = await plantLock(out, process.ppid);
  const e = await t.throwsAsync(runPipeline(tinyCount, { out, params: { n: 3 } }));
  t.is((e as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(e!.message, new RegExp(`another run \\(process ${process.ppid} on .*\\) is writing`));
  t.true(e!.message.includes(file));
  t.regex(e!.message, /Fix: wait for it to finish or choose another --out; if no run is writing there, delete/);
  t.false(await exists(path.join(out, 'summary.json')));
  t.false(await exists(path.join(out, 'run.json')), 'nothing written into the other run\'s folder');
  t.true(await exists(file), 'the other run\'s lock is left alone');
});

test('a lock whose process is gone is stale: the run takes it over and removes it at the end', async (t) => {
  const out = path.join(await tempDir(t, 'ff-lock-'), 'o');
  const pid = await deadPid();
  const file = await plantLock(out, pid);
  const logs: string[] = [];
  const s = await runPipeline(tinyCount, { out, params: { n: 3 }, log: (m) => logs.push(m) });
  t.deepEqual(s.result, { rows: 3, sum: 3 });
  t.true(logs.some((m) => m.includes(`the lock of process ${pid}`) && m.includes('stale')));
  t.false(await exists(file));
});

test('a failed run releases its lock', async (t) => {
  const out = await tempDir(t, 'ff-lock-');
  await t.throwsAsync(runPipeline(tinyCount, { out, params: ['n=10'], policy: 'fail' }));
  t.false(await exists(path.join(out, '.run.lock')));
  const s = await runPipeline(tinyCount, { out, params: ['n=10'] });
  t.is(s.pipeline, 'tiny-count');
});

test('an ensure waiting for a lock stops when the run is aborted', async (t) => {
  const cwd = await tempDir(t, 'ff-lock-');
  await plantLock(path.join(cwd, 'mix'), process.ppid);
  const waits = definePipeline({
    name: 'waits',
    description: 'needs a mix another process is making',
    params: {},
    async run(ctx) {
      await ctx.ensure(tinyCount, 'mix', {});
    },
  });
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('user pressed Ctrl-C')), 200);
  const e = await t.throwsAsync(runPipeline(waits, { cwd, signal: controller.signal }));
  t.is((e as { code?: string }).code, 'FF_ERR_ABORTED');
});

test('partition runs of one folder each take a lock of their own', (t) => {
  t.is(lockFileName({ index: 0, count: 1 }), '.run.lock');
  t.is(lockFileName({ index: 1, count: 4 }), '.run.part-00001-of-00004.lock');
});

test('a run that needs another pipeline made in its own folder is told so instead of waiting for itself', async (t) => {
  const cwd = await tempDir(t, 'ff-lock-');
  const selfish = definePipeline({
    name: 'selfish',
    description: 'ensures into its own out',
    params: {},
    async run(ctx) {
      await ctx.ensure(tinyCount, ctx.out, {});
    },
  });
  const e = await t.throwsAsync(runPipeline(selfish, { cwd, out: 'here' }));
  t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e!.message, /here is this run's own output folder, and the run also needs another pipeline made there.*Fix: choose an --out of its own/);
  t.false(await exists(path.join(cwd, 'here', '.run.lock')));
});
