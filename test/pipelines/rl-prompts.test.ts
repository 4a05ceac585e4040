import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';
import rlPrompts from '../../pipelines/rl-prompts.ts';
import { runPipeline } from '../../src/pipeline/run-pipeline.ts';
import type { Manifest } from '../../schemas/manifest.ts';
import { rlPromptSchema } from '../../schemas/rl-prompt.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-rl-prompts-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test('on the shapes world: LLaVA + A-OKVQA + VQA-v2 prompts with every caption type, facts and checked images', async (t) => {
  const world = path.join(tmp, 'world');
  const out = path.join(tmp, 'rl');
  const summary = await runPipeline(rlPrompts, { out, params: { world, images: path.join(world, 'images'), format: 'jsonl' }, cwd: ROOT });
  const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as Manifest;
  t.is(manifest.schema, 'rl-prompt');
  const flow = summary.flows[0]!;
  t.is(flow.rejected, 0);
  for (const s of flow.stages) t.is(s.in, s.out + s.rejected, s.name);
  const result = summary.result as { per_source: Record<string, { out: number; taken: number }> };
  t.true(result.per_source['llava']!.taken > 0 && result.per_source['aokvqa']!.taken > 0 && result.per_source['vqav2']!.taken > 0);
  t.is(manifest.total_rows, Object.values(result.per_source).reduce((a, s) => a + s.taken, 0));

  const lines = (await Promise.all(manifest.shards.map((s) => readFile(path.join(out, s.path), 'utf8')))).join('').trim().split('\n').map((l) => JSON.parse(l));
  t.is(lines.length, manifest.total_rows);
  for (const r of lines) {
    t.is(rlPromptSchema.validate(r), null);
    t.false(r.image.split('/').includes('..'));
    t.true(r.facts.length > 0);
  }
  const types = new Set(lines.map((r) => r.caption_type));
  t.deepEqual([...types].sort(), [1, 2, 3, 4, 5, 6, 7]);
  const aok = lines.find((r) => r.caption_type >= 2 && r.caption_type <= 5);
  t.regex(aok.conversations[0].value, /^<image>\n.*\nA\. .*\nB\. .*\nC\. .*\nD\. .*\n/s);

  // DuckDB reads the same records from Parquet with the nested types
  const pq = path.join(tmp, 'rl-pq');
  await runPipeline(rlPrompts, { out: pq, params: { world }, cwd: ROOT });
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const desc = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${path.join(pq, '*.parquet')}')`)).getRowObjectsJson();
  const n = (await conn.runAndReadAll(`SELECT count(*)::INT AS n FROM read_parquet('${path.join(pq, '*.parquet')}')`)).getRowObjectsJson();
  conn.closeSync();
  db.closeSync();
  t.deepEqual(Object.fromEntries(desc.map((r) => [r.column_name, r.column_type])), {
    id: 'VARCHAR', image: 'VARCHAR', conversations: 'STRUCT("from" VARCHAR, "value" VARCHAR)[]', caption_type: 'TINYINT', length_bonus: 'FLOAT', facts: 'VARCHAR[]',
  });
  t.is(n[0]!.n, manifest.total_rows);
});
