/**
 * Integration: a run killed with SIGKILL midway resumes to byte-identical shards, and
 * partition runs merged equal the whole run. Uses the real shard sink through the
 * `test/fixtures/pipelines/slow-count.ts` fixture (20k records, 1,000-row shards).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedTempDir, tempDir } from '../helpers/temp-dir.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'bin', 'pipeline.js');
const fixture = path.join(root, 'test', 'fixtures', 'pipelines', 'slow-count.ts');
const needed = ['schemas/manifest.ts', 'sinks/shard-sink.ts', 'sources/shards.ts'];
const missing = needed.filter((f) => !existsSync(path.join(root, f)));
const ready = missing.length === 0 && (await import('../../sinks/shard-sink.ts').then(() => true, () => false));
const it = ready ? test.serial : test.skip;
if (!ready) test('resume tests need the shard sink', (t) => t.log(`skipped: ${missing.join(', ') || 'sinks/shard-sink.ts does not load'} not there yet`));

// in-process runs of the fixture go at full speed
process.env.SLOW_COUNT_DELAY_MS = '0';

const sha = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

interface Manifest {
  total_rows: number;
  shards: { path: string; rows: number; sha256: string }[];
  params: Record<string, unknown>;
  seed: number;
}
const manifestOf = async (dir: string): Promise<Manifest> => JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;

async function runApi(out: string, extra: { partition?: string } = {}) {
  const { runPipeline } = await import('../../src/pipeline/run-pipeline.ts');
  return runPipeline(fixture, { out, ...extra });
}

/** Spawns `pipeline run` on the fixture; resolves with its exit code and signal. */
function spawnRun(out: string, options: { killWhen?: () => Promise<boolean>; signal?: NodeJS.Signals } = {}): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'run', fixture, '--out', out, '--quiet'], {
      cwd: root,
      env: { ...process.env, SLOW_COUNT_DELAY_MS: '15' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      resolve({ code, signal, stderr });
    });
    let checking = false;
    const timer = setInterval(() => {
      if (!options.killWhen || checking) return;
      checking = true;
      options.killWhen().then((kill) => {
        checking = false;
        if (kill) {
          clearInterval(timer);
          child.kill(options.signal ?? 'SIGKILL');
        }
      }, reject);
    }, 20);
  });
}

// one uninterrupted whole run, the reference for both tests
const wholeParent = sharedTempDir('ff-resume-');
let wholeDir = '';
if (ready) {
  test.before(async () => {
    wholeDir = path.join(wholeParent, 'whole');
    await runApi(wholeDir);
  });
}

async function finishedPartialShards(out: string): Promise<number> {
  try {
    return (await readdir(path.join(out, '.partial'))).filter((f) => /^train-\d{5}\.parquet$/.test(f)).length;
  } catch {
    return 0;
  }
}

it('a run interrupted (SIGINT) and killed (SIGKILL) midway resumes to byte-identical shards', async (t) => {
  const dir = await tempDir(t, 'ff-resume-');
  const killed = path.join(dir, 'killed');
  const ref = await manifestOf(wholeDir);
  t.is(ref.total_rows, 20_000);
  t.is(ref.shards.length, 20);

  // Ctrl-C: the CLI aborts the run cleanly (exit 1, FF_ERR_ABORTED), keeping finished shards
  const interrupted = await spawnRun(killed, { signal: 'SIGINT', killWhen: async () => (await finishedPartialShards(killed)) >= 2 });
  t.is(interrupted.code, 1, interrupted.stderr);
  t.regex(interrupted.stderr, /error FF_ERR_ABORTED: interrupted by SIGINT/);
  const afterInterrupt = await finishedPartialShards(killed);
  t.true(afterInterrupt >= 2 && afterInterrupt < 20, `shards kept after SIGINT: ${afterInterrupt}`);

  // SIGKILL: no cleanup at all; the rerun must still resume from what is on disk
  const first = await spawnRun(killed, { killWhen: async () => (await finishedPartialShards(killed)) >= afterInterrupt + 2 });
  t.is(first.signal, 'SIGKILL', `the run ended by itself before it could be killed: ${first.stderr}`);
  const kept = await finishedPartialShards(killed);
  t.true(kept >= afterInterrupt + 2 && kept < 20, `shards kept in .partial: ${kept}`);
  t.false(existsSync(path.join(killed, 'manifest.json')), 'no manifest before the run finishes');
  t.log(`interrupted after ${afterInterrupt} finished shards, killed after ${kept}`);

  const second = await spawnRun(killed);
  t.is(second.code, 0, second.stderr);
  const m = await manifestOf(killed);
  t.is(m.total_rows, ref.total_rows);
  t.deepEqual(m.shards, ref.shards);
  for (const s of m.shards) t.is(await sha(path.join(killed, s.path)), s.sha256, s.path);
  t.false(existsSync(path.join(killed, '.partial')));
  const summary = JSON.parse(await readFile(path.join(killed, 'summary.json'), 'utf8'));
  t.deepEqual(summary.result, { total_rows: 20_000, shards: 20 });
});

it('partition runs 0/2 and 1/2 merged hold the same rows as the whole run', async (t) => {
  const dir = await tempDir(t, 'ff-resume-');
  const ref = await manifestOf(wholeDir);
  const p0 = await runApi(path.join(dir, 'p0'), { partition: '0/2' });
  const p1 = await runApi(path.join(dir, 'p1'), { partition: '1/2' });
  const rows0 = (p0.result as { total_rows: number }).total_rows;
  const rows1 = (p1.result as { total_rows: number }).total_rows;
  t.true(rows0 > 8000 && rows1 > 8000, `${rows0} + ${rows1}`);
  t.true(existsSync(path.join(dir, 'p0', 'manifest.part-00000-of-00002.json')));

  // merge through the CLI
  const merged = path.join(dir, 'merged');
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'merge', merged, path.join(dir, 'p1'), path.join(dir, 'p0')], { cwd: root, stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', resolve);
  });
  t.is(code, 0);
  const m = await manifestOf(merged);
  t.is(m.total_rows, ref.total_rows);
  t.is(m.total_rows, rows0 + rows1);
  t.deepEqual(m.params, ref.params);
  t.is(m.seed, ref.seed);
  t.is(m.shards[0]!.path, `train-00000-of-${String(m.shards.length).padStart(5, '0')}.parquet`);

  // the merged set reads back as the same multiset of ids as the whole run
  const { readRecords } = await import('../../src/inspect/read-records.ts');
  const ids = async (target: string) => {
    const out: string[] = [];
    for await (const { record } of readRecords(target)) out.push((record as { id: string }).id);
    return out.sort();
  };
  t.deepEqual(await ids(merged), await ids(wholeDir));
});
