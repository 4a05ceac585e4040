import test from 'ava';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import sftMix from '../../pipelines/sft-mix.ts';
import shapesWorld from '../../pipelines/shapes-world.ts';
import { runPipeline } from '../../src/pipeline/run-pipeline.ts';
import { resolvePipeline } from '../../src/pipeline/resolve-params.ts';
import type { Manifest } from '../../schemas/manifest.ts';
import type { FactflowError } from '../../src/errors.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EMMA = path.join(ROOT, 'test', 'fixtures', 'vqav2', 'emma-datasets');
/** The VQA-v2 tests leave the other datasets out and keep input order. */
const VQA_ONLY = { llava: 'none', aokvqa: 'none', flickr30k: 'none', shuffle: false } as const;

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-sft-mix-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function query(sql: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

test('real VQA-v2 files -> Parquet shards DuckDB reads back, with the counts in the summary', async (t) => {
  const out = path.join(tmp, 'yesno');
  const summary = await runPipeline(sftMix, { out, params: { vqav2: EMMA, ...VQA_ONLY, max_rows: 4 }, cwd: ROOT });
  const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as Manifest;
  t.is(manifest.schema, 'conversation');
  t.is(manifest.total_rows, 11);
  t.deepEqual(manifest.shards.map((s) => s.rows), [4, 4, 3]);
  const flow = summary.flows[0]!;
  t.is(flow.name, 'sft-mix');
  t.deepEqual(flow.stages.map((s) => [s.name, s.in, s.out, s.rejected]), [
    ['mix', 11, 11, 0],
    ['token-length', 11, 11, 0],
    ['dedup', 11, 11, 0],
    ['shards', 11, 11, 0],
  ]);
  // per source: 23 yes/no questions read, grouped into 11 conversations
  t.like(summary.result as object, { per_source: { vqav2: { read: 23, rejected: 0, out: 11, taken: 11 } } });
  t.like(summary.result as object, { vqav2: { questions: 53, annotations: 53, kept: 23, filtered: 30, rejected: 0, answer_types: ['yes/no'], filtered_by_type: { other: 19, number: 11 } } });

  const rows = await query(`SELECT id, image, conversations, source, meta FROM read_parquet('${path.join(out, '*.parquet')}') ORDER BY id`);
  t.is(rows.length, 11);
  const mop = rows.find((r) => r.id === 'vqav2-403385-0');
  t.deepEqual(mop, {
    id: 'vqav2-403385-0',
    image: 'coco/train2017/000000403385.jpg',
    conversations: [
      { from: 'human', value: '<image>\nDoes this bathroom need repair?\nAnswer the question using a single word or phrase.' },
      { from: 'gpt', value: 'Yes' },
      { from: 'human', value: 'Is there enough toilet tissue in the bathroom?\nAnswer the question using a single word or phrase.' },
      { from: 'gpt', value: 'Yes' },
      { from: 'human', value: 'Is there a mop in the bathroom?\nAnswer the question using a single word or phrase.' },
      { from: 'gpt', value: 'No' },
    ],
    source: 'vqav2',
    meta: '{"question_ids":[403385000,403385001,403385002],"subtype":"val2014"}',
  });
  // the test-dev questions file in the folder is skipped (no answers), and said so
  t.deepEqual((summary.result as { vqav2: { skipped_files: string[] } }).vqav2.skipped_files, [path.join(EMMA, 'v2_OpenEnded_mscoco_test-dev2015_questions.json')]);
});

test('answer_types=all, jsonl, max_rounds: every question in order', async (t) => {
  const out = path.join(tmp, 'all');
  const summary = await runPipeline(sftMix, { out, params: { vqav2: EMMA, ...VQA_ONLY, answer_types: 'all', format: 'jsonl', max_rounds: 4 }, cwd: ROOT });
  const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as Manifest;
  const lines = (await Promise.all(manifest.shards.map((s) => readFile(path.join(out, s.path), 'utf8'))))
    .join('').trim().split('\n').map((l) => JSON.parse(l) as { id: string; conversations: unknown[] });
  // 13 images; 174482 (8 questions) splits into 4 + 4, 517069/182417/87038/252219 (5) into 4 + 1
  t.is(lines.length, 18);
  t.deepEqual(lines.slice(3, 5).map((c) => c.id), ['vqav2-174482-0', 'vqav2-174482-1']);
  t.is(lines.reduce((n, c) => n + c.conversations.length / 2, 0), 53);
  t.like(summary.result as object, { vqav2: { kept: 53, filtered: 0 } });
});

test('bad params fail before any work, naming the parameter', async (t) => {
  const out = path.join(tmp, 'bad');
  const err = await runPipeline(sftMix, { out, params: { vqav2: EMMA, answer_types: 'yes/no,colour' }, cwd: ROOT }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(err?.code, 'FF_ERR_INVALID_OPTION');
  t.regex(err!.message, /option "params\.answer_types": unknown answer type "colour"/);
});

test('a missing vqav2 folder: a clear error naming it', async (t) => {
  const dir = path.join(tmp, 'nowhere');
  const err = await runPipeline(sftMix, { out: path.join(tmp, 'missing'), params: { vqav2: dir, ...VQA_ONLY }, cwd: ROOT }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(err?.code, 'FF_ERR_BAD_INPUT');
  t.is(err?.file, dir);
  // named as the source's problem even though the sink asked for the inputs first
  t.true(err!.message.startsWith(`${dir}, stage "vqav2": no such folder`));
});

test('without a vqav2 folder it uses the shapes world (reused when already made)', async (t) => {
  // a finished shapes world holding the real files: ensure() reuses it instead of generating one
  const world = path.join(tmp, 'world');
  await mkdir(path.join(world, 'vqav2'), { recursive: true });
  for (const f of ['v2_OpenEnded_mscoco_train2014_questions.json', 'v2_mscoco_train2014_annotations.json']) {
    await cp(path.join(EMMA, f), path.join(world, 'vqav2', f));
  }
  const resolved = resolvePipeline(shapesWorld, { out: world, cwd: ROOT });
  await writeFile(path.join(world, 'summary.json'), JSON.stringify({ pipeline: 'shapes-world', out: world, seed: resolved.seed, params: resolved.params, flows: [], elapsed_s: 0, version: shapesWorld.version }));
  const logs: string[] = [];
  const summary = await runPipeline(sftMix, { out: path.join(tmp, 'from-world'), params: { world, ...VQA_ONLY }, cwd: ROOT, log: (m) => logs.push(m) });
  t.true(logs.some((l) => l.includes('already made')));
  t.like(summary.result as object, { vqav2: { dir: path.join(world, 'vqav2'), kept: 23 } });
});
