import test from 'ava';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import evalPope from '../../pipelines/eval-pope.ts';
import { runPipeline } from '../../src/pipeline/run-pipeline.ts';
import type { FactflowError } from '../../src/errors.ts';
import { generateShapesWorld, SHAPES_WORLD_FILES as F } from '../../sources/shapes-world.ts';
import { shardSource } from '../../sources/shards.ts';
import { evalSchema, type EvalRecord } from '../../schemas/eval.ts';
import { readSource } from '../sources/harness.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIX = path.join(ROOT, 'test', 'fixtures', 'pope');

let tmp: string;
let world: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-eval-pope-'));
  world = path.join(tmp, 'world');
  await generateShapesWorld({ out: world, seed: 7, images: 30, mmhalPerType: 2 });
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface Q { question_id: number; label: 'yes' | 'no'; image: string; text: string }
async function questions(file: string): Promise<Q[]> {
  return (await readFile(file, 'utf8')).split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Q);
}
async function writeAnswers(file: string, rows: { question_id: number | string; text: string }[]): Promise<string> {
  await writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}
async function report(out: string): Promise<{ splits: Record<string, Record<string, number>>; mean: Record<string, number> }> {
  return JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8'));
}
const close = (t: { true(v: boolean, m?: string): void }, got: number, want: number): void => t.true(Math.abs(got - want) < 1e-12, `${got} != ${want}`);

test('real POPE rows: the reference parsing edge cases give hand-computed metrics', async (t) => {
  // the first six rows of the real random split: labels yes, no, yes, no, yes, no
  const lines = (await readFile(path.join(FIX, 'coco_pope_random.json'), 'utf8')).split('\n').slice(0, 6);
  const qfile = path.join(tmp, 'six', 'coco_pope_random.json');
  await mkdir(path.dirname(qfile), { recursive: true });
  await writeFile(qfile, lines.join('\n') + '\n');
  const answers = await writeAnswers(path.join(tmp, 'six-answers.jsonl'), [
    { question_id: 1, text: 'Yes, there is a snowboard in the image.' }, // yes / yes: TP
    { question_id: 2, text: 'No, there is no car.' }, // no / no: TN
    { question_id: 3, text: 'There is not a person. Yes.' }, // "not" in the first sentence -> no; label yes: FN
    { question_id: 4, text: 'NO' }, // case-sensitive: "NO" reads as yes; label no: FP
    { question_id: 5, text: 'Yes. No doubt about it.' }, // only the first sentence counts -> yes: TP
    { question_id: 6, text: 'Yes, there is a no-entry sign' }, // "no-entry" is not the word "no" -> yes; label no: FP
  ]);
  const out = path.join(tmp, 'six-out');
  const summary = await runPipeline(evalPope, { out, params: { questions: qfile, answers }, cwd: ROOT });
  const r = await report(out);
  // TP 2, TN 1, FN 1, FP 2
  t.deepEqual(Object.keys(r.splits), ['random']);
  const m = r.splits.random!;
  t.is(m.n, 6);
  close(t, m.accuracy!, 3 / 6);
  close(t, m.precision!, 2 / 4);
  close(t, m.recall!, 2 / 3);
  close(t, m.f1!, 4 / 7);
  close(t, m.yes_ratio!, 4 / 6);
  t.deepEqual(Object.keys(m).sort(), ['accuracy', 'f1', 'n', 'precision', 'recall', 'yes_ratio']);
  t.deepEqual(summary.flows[0]!.stages.map((s) => [s.name, s.in, s.out, s.rejected]), [
    ['pope-questions', 6, 6, 0], ['to-eval', 6, 6, 0], ['attach-answers', 6, 6, 0], ['pope-score', 6, 6, 0], ['eval-shards', 6, 6, 0],
  ]);
  // the eval shards hold question, answer and verdict side by side
  const { items } = await readSource(shardSource<EvalRecord>({ path: out, schema: evalSchema }));
  t.is(items.length, 6);
  t.like(items[3], { question_id: '4', question_type: 'random', gt_answer: 'no', model_answer: 'NO', hallucinated: true, score: null, question: 'Is there a sandwich in the image?', image: 'COCO_val2014_000000310196.jpg' });
  t.is(items[3]!.judge_text, 'answer read as "yes"; label "no"');
  t.false(items[2]!.hallucinated!, 'a false "no" is not a hallucination');
});

test('real POPE files: three splits, CRLF and LF, comma-separated answers; always-yes and always-no', async (t) => {
  const files = ['random', 'popular', 'adversarial'].map((s) => path.join(FIX, `coco_pope_${s}.json`));
  const qs = await Promise.all(files.map(questions));
  const answers = [
    await writeAnswers(path.join(tmp, 'r.jsonl'), qs[0]!.map((q) => ({ question_id: q.question_id, text: q.label === 'yes' ? 'Yes, there is.' : 'No, there is not.' }))),
    await writeAnswers(path.join(tmp, 'p.jsonl'), qs[1]!.map((q) => ({ question_id: String(q.question_id), text: 'Yes' }))),
    await writeAnswers(path.join(tmp, 'a.jsonl'), qs[2]!.slice().reverse().map((q) => ({ question_id: q.question_id, text: 'No' }))),
  ];
  const out = path.join(tmp, 'three');
  await runPipeline(evalPope, { out, params: { questions: files.join(','), answers: answers.join(','), format: 'jsonl' }, cwd: ROOT });
  const r = await report(out);
  // 150 yes / 150 no per split (PROVENANCE.md)
  t.deepEqual(r.splits.random, { accuracy: 1, precision: 1, recall: 1, f1: 1, yes_ratio: 0.5, n: 300 });
  t.deepEqual(r.splits.popular, { accuracy: 0.5, precision: 0.5, recall: 1, f1: 2 / 3, yes_ratio: 1, n: 300 });
  t.deepEqual(r.splits.adversarial, { accuracy: 0.5, precision: 0, recall: 0, f1: 0, yes_ratio: 0, n: 300 });
  close(t, r.mean.f1!, (1 + 2 / 3 + 0) / 3);
  t.is(r.mean.n, 900);
});

test('shapes world by default: the three generated splits, answers by {split}', async (t) => {
  const qs = Object.fromEntries(await Promise.all((['random', 'popular', 'adversarial'] as const).map(async (s) => [s, await questions(path.join(world, F[`pope_${s}`]))] as const)));
  const ans = path.join(tmp, 'world-ans');
  await mkdir(ans, { recursive: true });
  await writeAnswers(path.join(ans, 'random.jsonl'), qs.random!.map((q) => ({ question_id: q.question_id, text: 'Yes' })));
  await writeAnswers(path.join(ans, 'popular.jsonl'), qs.popular!.map((q) => ({ question_id: q.question_id, text: q.label === 'yes' ? 'Yes, there is.' : 'No, there is not.' })));
  await writeAnswers(path.join(ans, 'adversarial.jsonl'), qs.adversarial!.map((q) => ({ question_id: q.question_id, text: q.label === 'yes' ? 'No.' : 'Yes.' })));
  const out = path.join(tmp, 'world-out');
  const summary = await runPipeline(evalPope, { out, params: { world, answers: path.join(ans, '{split}.jsonl') }, cwd: ROOT });
  const r = await report(out);
  const n = qs.random!.length;
  t.true(n > 0);
  // the world asks as many absent as present objects per image
  t.is(qs.random!.filter((q) => q.label === 'yes').length * 2, n);
  t.deepEqual(r.splits.random, { accuracy: 0.5, precision: 0.5, recall: 1, f1: 2 / 3, yes_ratio: 1, n });
  t.deepEqual(r.splits.popular, { accuracy: 1, precision: 1, recall: 1, f1: 1, yes_ratio: 0.5, n: qs.popular!.length });
  t.deepEqual(r.splits.adversarial, { accuracy: 0, precision: 0, recall: 0, f1: 0, yes_ratio: 0.5, n: qs.adversarial!.length });
  t.is(summary.flows[0]!.stages[0]!.out, n + qs.popular!.length + qs.adversarial!.length);
  const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as { schema: string; total_rows: number };
  t.deepEqual([manifest.schema, manifest.total_rows], ['eval', summary.flows[0]!.stages[0]!.out]);
});

test('a missing answer or an answer for an unknown question fails, naming the answers file', async (t) => {
  const qfile = path.join(tmp, 'two', 'coco_pope_random.json');
  await mkdir(path.dirname(qfile), { recursive: true });
  await copyFile(path.join(FIX, 'coco_pope_random.json'), qfile);
  const partial = await writeAnswers(path.join(tmp, 'partial.jsonl'), [{ question_id: 1, text: 'Yes' }]);
  const e1 = await runPipeline(evalPope, { out: path.join(tmp, 'e1'), params: { questions: qfile, answers: partial }, cwd: ROOT }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(e1?.code, 'FF_ERR_BAD_INPUT');
  t.true(e1!.message.startsWith(`${partial}, stage "attach-answers": no answer for question_id 2 of split "random"`), e1!.message);

  const all = (await questions(qfile)).map((q) => ({ question_id: q.question_id, text: 'No' }));
  const extra = await writeAnswers(path.join(tmp, 'extra.jsonl'), [...all, { question_id: 9999, text: 'Yes' }]);
  const e2 = await runPipeline(evalPope, { out: path.join(tmp, 'e2'), params: { questions: qfile, answers: extra }, cwd: ROOT }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(e2?.code, 'FF_ERR_BAD_INPUT');
  t.regex(e2!.message, /extra\.jsonl.*1 answer\(s\) for question_ids not in split "random" \(e\.g\. 9999\)/);
});

test('parameters: answers and policy exclude each other; answers must match the question files', async (t) => {
  const both = await runPipeline(evalPope, { out: path.join(tmp, 'p1'), params: { world, answers: 'a.jsonl', policy: 'ckpt' }, cwd: ROOT }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(both?.code, 'FF_ERR_INVALID_OPTION');
  t.regex(both!.message, /params\.answers.*not both/);
  const none = await runPipeline(evalPope, { out: path.join(tmp, 'p2'), params: { world }, cwd: ROOT }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.regex(none!.message, /params\.answers.*answers=FILE/);
  const count = await runPipeline(evalPope, { out: path.join(tmp, 'p3'), params: { world, answers: 'a.jsonl,b.jsonl' }, cwd: ROOT }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.regex(count!.message, /names 2 answers file\(s\) for 3 question file\(s\) \(random, popular, adversarial\)/);
  const images = await runPipeline(evalPope, { out: path.join(tmp, 'p4'), params: { questions: path.join(FIX, 'coco_pope_random.json'), policy: 'ckpt' }, cwd: ROOT }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.regex(images!.message, /params\.images/);
});
