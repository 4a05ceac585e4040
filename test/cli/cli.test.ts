/**
 * The `pipeline` command end to end: spawned as `node bin/pipeline.js ...` (as users run it)
 * for the main paths, and through `main(argv, io)` in-process for the rest (faster).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, realpath, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main, optionTexts } from '../../src/cli/main.ts';
import type { CliIo } from '../../src/cli/io.ts';
import { sharedTempDir, tempDir } from '../helpers/temp-dir.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = path.join(root, 'bin', 'pipeline.js');
const tiny = 'test/fixtures/pipelines/tiny-count.ts';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], options: { env?: Record<string, string>; closeStdoutAfterFirstChunk?: boolean } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, FACTFLOW_DEBUG: '', ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (options.closeStdoutAfterFirstChunk) child.stdout.destroy();
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs `main` in this process with captured output. */
async function inProcess(args: string[], debug = false): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { out: (t) => void (stdout += t + '\n'), err: (t) => void (stderr += t + '\n'), columns: 100, debug };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

// a small shard folder made by the real shard sink (slow-count fixture, unthrottled)
const sharedDir = sharedTempDir('ff-cli-');
let shards = '';
test.before(async () => {
  process.env.SLOW_COUNT_DELAY_MS = '0';
  const { runPipeline } = await import('../../src/pipeline/run-pipeline.ts');
  shards = path.join(sharedDir, 'slow');
  await runPipeline('test/fixtures/pipelines/slow-count.ts', { cwd: root, out: shards, params: ['rows=2500'] });
});

test('list shows each pipeline with its description and parameters', async (t) => {
  const r = await cli(['list', '--dir', 'test/fixtures/pipelines']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /tiny-count {2}\(test\/fixtures\/pipelines\/tiny-count\.ts\)\n {2}Counts generated records, rejecting some \(test fixture\)/);
  t.regex(r.stdout, /--set n=20 +number: records to generate/);
  t.regex(r.stdout, /--set format=parquet +parquet\|arrow\|jsonl: shard format/);
  const j = await inProcess(['list', '--dir', 'test/fixtures/pipelines', '--json']);
  const entries = JSON.parse(j.stdout) as { name: string; params: Record<string, { default: unknown }> }[];
  t.deepEqual(entries.map((e) => e.name).sort(), ['slow-count', 'tiny-count']);
  t.is(entries.find((e) => e.name === 'tiny-count')!.params.reject_every!.default, 7);
});

test('run prints the summary table and where the outputs are', async (t) => {
  const out = path.join(await tempDir(t, 'ff-cli-'), 'run');
  const r = await cli(['run', tiny, '--set', 'n=30', '--set', 'label=things', '--out', out, '--seed', '4']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /flow "flow"\nstage +in +out +rejected\ngenerate +30 +30 +0\ndrop-multiples +30 +26 +4\ncount +26 +26 +0\nin = out \+ rejected: ok/);
  t.regex(r.stdout, new RegExp(`4 rejected records -> ${out}/rejected\\.jsonl`));
  t.regex(r.stdout, new RegExp(`tiny-count done in [0-9.]+ s; outputs in ${out}/`));
  t.regex(r.stderr, /counting 30 things/);
  const summary = JSON.parse(await readFile(path.join(out, 'summary.json'), 'utf8'));
  t.is(summary.seed, 4);
  t.deepEqual(summary.params, { n: 30, reject_every: 7, label: 'things' });
});

test('a missing definition file: exit 1, one error line with code and file, no stack', async (t) => {
  const r = await cli(['run', 'no/such/pipeline.ts']);
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^error FF_ERR_BAD_INPUT: no\/such\/pipeline\.ts: no pipeline definition file found/);
  t.notRegex(r.stderr, /\n\s+at /);
  t.is(r.stderr.trim().split('\n').length, 1);
});

test('FACTFLOW_DEBUG=1 adds the stack', async (t) => {
  // processIo() reads FACTFLOW_DEBUG; the in-process io sets the same flag
  const r = await inProcess(['run', 'no/such/pipeline.ts'], true);
  t.is(r.code, 1);
  t.regex(r.stderr, /^error FF_ERR_BAD_INPUT: /);
  t.regex(r.stderr, /\n\s+at .*resolvePipelineFile/);
});

test('bad flags and params are FF_ERR_INVALID_OPTION errors', async (t) => {
  const cases: [string[], RegExp][] = [
    [['run', tiny, '--set', 'nope=1'], /^error FF_ERR_INVALID_OPTION: option "--set nope": unknown parameter "nope" of pipeline "tiny-count"; known parameters: n \(number, default 20\)/],
    [['run', tiny, '--set', 'n=many'], /^error FF_ERR_INVALID_OPTION: option "--set n": expected an integer >= 0, got "many"/],
    [['run', tiny, '--partition', '2/2'], /^error FF_ERR_INVALID_OPTION: option "partition": index must be an integer in 0\.\.1/],
    [['run', tiny, '--seed', 'x'], /^error FF_ERR_INVALID_OPTION: option "--seed": expected an integer/],
    [['run', tiny, '--backend', 'cuda'], /option "backend": expected one of auto\|webgpu\|tensorflow\|wasm\|cpu/],
    [['run', tiny, '--bogus'], /^error FF_ERR_INVALID_OPTION: option "command line": Unknown option `--bogus`/],
    [['frobnicate'], /^error FF_ERR_INVALID_OPTION: option "command": unknown command "frobnicate"/],
    [['inspect'], /^error FF_ERR_INVALID_OPTION: option "PATH": missing the shard folder/],
    [['inspect', 'render', 'x.jsonl'], /option "--images": render needs the image root/],
    [['run', tiny, '--set'], /^error FF_ERR_INVALID_OPTION: option "--set": is given without a value Fix: write --set <key=value> \(once per value\)/],
    [['run', tiny, '--set', 'n=3', '--set', '--quiet'], /option "--set": is given without a value/],
    [['run', tiny, '--out', '--quiet'], /^error FF_ERR_INVALID_OPTION: option "--out": is given without a value Fix: write --out <dir>/],
  ];
  for (const [args, re] of cases) {
    const r = await inProcess(args);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, re, args.join(' '));
  }
});

test('inspect --json: summary of a shard folder', async (t) => {
  const r = await cli(['inspect', shards, '--json']);
  t.is(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  t.is(s.total_rows, 2500);
  t.deepEqual(s.schema, { name: 'conversation', version: 1, from: 'manifest' });
  t.deepEqual(s.shards.map((x: { path: string; rows: number; codec: string }) => [x.path, x.rows, x.codec]), [
    ['train-00000-of-00003.parquet', 1000, 'snappy'],
    ['train-00001-of-00003.parquet', 1000, 'snappy'],
    ['train-00002-of-00003.parquet', 500, 'snappy'],
  ]);
  t.is(s.sources.reduce((a: number, x: { rows: number }) => a + x.rows, 0), 2500);
  t.deepEqual(s.rejected, { count: 0, path: 'rejected.jsonl' });
  t.is(s.turns_per_conversation.count, 2500);
});

test('inspect head --json and validate --json', async (t) => {
  const head = await cli(['inspect', 'head', shards, '-n', '2', '--json']);
  t.is(head.code, 0, head.stderr);
  const h = JSON.parse(head.stdout);
  t.deepEqual(h.records.map((x: { row: number; record: { id: string } }) => [path.basename(x.record.id), x.row]), [['slow-0', 0], ['slow-1', 1]]);
  t.is(path.basename(h.records[0].file), 'train-00000-of-00003.parquet');
  const v = await cli(['inspect', 'validate', shards, '--json']);
  t.is(v.code, 0, v.stderr);
  t.like(JSON.parse(v.stdout), { rows: 2500, invalid: 0, failures: [] });
});

test('inspect text output: summary, schema, head', async (t) => {
  const s = await inProcess(['inspect', shards]);
  t.is(s.code, 0, s.stderr);
  t.regex(s.stdout, /: conversation v1, parquet \(snappy\), 2500 rows in 3 shards/);
  t.regex(s.stdout, /rows per source\nsource +rows +share/);
  t.regex(s.stdout, /turns per conversation \(mean [0-9.]+, min 2, max 6\)\n +2 \| #+/);
  const sc = await inProcess(['inspect', 'schema', shards]);
  t.is(sc.code, 0, sc.stderr);
  t.regex(sc.stdout, /conversations +list<struct<from: string, value: string>> +no +yes/);
  const h = await inProcess(['inspect', 'head', shards, '-n', '1']);
  t.regex(h.stdout, /^-- train-00000-of-00003\.parquet:0 -+\nid: slow-0 {2}source: \w+ {2}image: coco\/train2017\/000000000000\.jpg\n\nhuman: <image>\n {7}Is there a/);
  t.regex(h.stdout, /\n\ngpt: {3}(Yes|No)\n/);
});

test('inspect validate: exit 1 listing failures with shard file and row', async (t) => {
  const dir = await tempDir(t, 'ff-cli-');
  const file = path.join(dir, 'bad.jsonl');
  const ok = { id: 'a', image: null, conversations: [{ from: 'human', value: 'hi' }, { from: 'gpt', value: 'hello' }], source: 'llava', meta: '' };
  await writeFile(file, [ok, { ...ok, id: '' }, ok, { ...ok, meta: '[1]' }].map((x) => JSON.stringify(x)).join('\n') + '\n');
  const r = await inProcess(['inspect', 'validate', file, '--schema', 'conversation']);
  t.is(r.code, 1);
  t.regex(r.stdout, /conversation: 2 of 4 rows invalid; first 2:\n {2}.*bad\.jsonl row 1: .*id.*\n {2}.*bad\.jsonl row 3: .*meta/);
});

test('inspect head --sort reward shows highest and lowest side by side; eval records in columns', async (t) => {
  const dir = await tempDir(t, 'ff-cli-');
  const rollouts = path.join(dir, 'rollouts.jsonl');
  const rows = [1.5, -3, 0.2].map((r, i) => ({
    id: `r${i}`, image: 'a.jpg', conversations: [{ from: 'human', value: `<image>\nquestion ${i}` }], response: `response number ${i}`,
    reward_model: r, reward_length: -0.5, reward_total: r - 0.5,
  }));
  await writeFile(rollouts, rows.map((x) => JSON.stringify(x)).join('\n') + '\n');
  const r = await inProcess(['inspect', 'head', rollouts, '--sort', 'reward', '-n', '1']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^highest #1: reward 1\.000 \(.*rollouts\.jsonl:0\) +lowest #1: reward -3\.500 \(.*rollouts\.jsonl:1\)/);
  t.regex(r.stdout, /response number 0 +.*response number 1/);
  t.regex(r.stdout, /reward_total 1\.000 \(model 1\.500, length -0\.500\)/);
  const evals = path.join(dir, 'eval.jsonl');
  await writeFile(evals, JSON.stringify({ question_id: 'q1', image: 'a.jpg', question: 'How many circles?', question_type: 'counting', gt_answer: 'two', model_answer: 'There are three circles.', score: 2, hallucinated: true }) + '\n');
  const e = await inProcess(['inspect', 'head', evals]);
  t.regex(e.stdout, /question +answer +verdict\n-+ +-+ +-+\nHow many circles\? +There are three circles\. +score: 2\n +hallucinated: true\n +gt: two/);
});

test('a closed stdout pipe (EPIPE) ends quietly', async (t) => {
  const r = await cli(['inspect', 'head', shards, '-n', '500'], { closeStdoutAfterFirstChunk: true });
  t.is(r.code, 0, r.stderr);
  t.notRegex(r.stderr, /error|EPIPE/);
});

test('merge via the CLI reports a missing partition', async (t) => {
  const dir = await tempDir(t, 'ff-cli-');
  const { runPipeline } = await import('../../src/pipeline/run-pipeline.ts');
  await runPipeline(tiny, { cwd: root, out: path.join(dir, 'p0') }); // not a shard run: no partition manifests
  const r = await inProcess(['merge', path.join(dir, 'out'), path.join(dir, 'p0')]);
  t.is(r.code, 1);
  t.regex(r.stderr, /^error FF_ERR_BAD_INPUT: .*p0: no partition manifests/);
  t.false(existsSync(path.join(dir, 'out', 'manifest.json')));
});

test('optionTexts keeps values as typed (no number coercion), finds --x=v, and marks missing values', (t) => {
  t.deepEqual(optionTexts(['run', 'f', '--out', '007', '--set', 'a=1', '--set=b=2', '--quiet'], 'out'), ['007']);
  t.deepEqual(optionTexts(['run', 'f', '--out', '007', '--set', 'a=1', '--set=b=2', '--quiet'], 'set'), ['a=1', 'b=2']);
  t.deepEqual(optionTexts(['--set', '--quiet', '--set'], 'set'), [undefined, undefined]);
  t.deepEqual(optionTexts(['--out', '1e3', '--', '--out', 'x'], 'out'), ['1e3']); // nothing after "--"
  t.deepEqual(optionTexts(['--outside', 'x'], 'out'), []);
});

test('relative --out and numeric-looking values: taken as typed, from the folder the command runs in', async (t) => {
  const dir = await tempDir(t, 'ff-cli-');
  const child = spawn(process.execPath, [bin, 'run', path.join(root, tiny), '--out', '007', '--set', 'n=5', '--set', 'label=1e3', '--quiet'], { cwd: dir, env: { ...process.env, FACTFLOW_DEBUG: '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  t.is(code, 0, stderr);
  t.regex(stdout, /outputs in 007\//);
  const summary = JSON.parse(await readFile(path.join(dir, '007', 'summary.json'), 'utf8'));
  t.is(summary.out, path.join(await realpath(dir), '007'));
  t.is(summary.params.label, '1e3');
});
