import test from 'ava';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import evalMmhal from '../../pipelines/eval-mmhal.ts';
import { runPipeline } from '../../src/pipeline/run-pipeline.ts';
import type { FactflowError } from '../../src/errors.ts';
import { MMHAL_QUESTION_TYPES } from '../../src/eval/mmhal-metrics.ts';
import { generateShapesWorld, SHAPES_WORLD_FILES as F } from '../../sources/shapes-world.ts';
import { shardSource } from '../../sources/shards.ts';
import { COLORS, SHAPES, objectPhrase, type GroundTruth } from '../../schemas/shapes-world.ts';
import { evalSchema, type EvalRecord } from '../../schemas/eval.ts';
import { readSource } from '../sources/harness.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let tmp: string;
let world: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-eval-mmhal-'));
  world = path.join(tmp, 'world');
  await generateShapesWorld({ out: world, seed: 11, images: 30, mmhalPerType: 2 });
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface Item { question_type: string; question_topic: string; image_id: string; image_src: string; image_content: string[]; question: string; gt_answer: string; model_answer?: string }

async function evalImageWithTwoKinds(): Promise<GroundTruth> {
  const gts = (await readFile(path.join(world, F.ground_truth), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as GroundTruth);
  const gt = gts.find((g) => g.split === 'eval' && g.objects.length >= 2 && new Set(g.objects.map((o) => `${o.color} ${o.shape}`)).size >= 2);
  if (!gt) throw new Error('the test world has no eval image with two kinds of objects');
  return gt;
}

/** A small hand-made template on one world image, with answers whose rubric scores are known. */
async function handTemplate(): Promise<{ file: string; items: Item[] }> {
  const gt = await evalImageWithTwoKinds();
  const [o1, o2] = gt.objects as [GroundTruth['objects'][0], GroundTruth['objects'][0]];
  const absent = `${COLORS.find((c) => !gt.objects.some((o) => o.color === c))} ${SHAPES.find((s) => !gt.objects.some((o) => o.shape === s))}`;
  const gtAnswer = `There is ${objectPhrase(o1)} and ${objectPhrase(o2)}.`;
  const base = { question_topic: 'objects', image_id: '0123456789abcdef', image_src: gt.image, image_content: [objectPhrase(o1, { article: 'none' }), objectPhrase(o2, { article: 'none' })], question: 'Describe the image.', gt_answer: gtAnswer };
  const items: Item[] = [
    // both objects, nothing false: very informative, no hallucination -> 5 (no positions, so not 6)
    { ...base, question_type: 'holistic', model_answer: gtAnswer },
    // only an absent object: not informative, with hallucination -> 0
    { ...base, question_type: 'holistic', model_answer: `There is a ${absent}.` },
    // one true object (half of the gt kinds) and an absent one: somewhat informative, with hallucination -> 1
    { ...base, question_type: 'other', model_answer: `There is ${objectPhrase(o1)} and a ${absent}.` },
    // nothing checkable: not informative, no hallucination -> 3
    { ...base, question_type: 'other', model_answer: 'I cannot tell.' },
  ];
  const file = path.join(tmp, 'hand.json');
  await writeFile(file, JSON.stringify(items, null, 2));
  return { file, items };
}

async function report(out: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8'));
}

test('rule judge end to end on hand-made answers: scores 5, 0, 1, 3', async (t) => {
  const { file, items } = await handTemplate();
  const out = path.join(tmp, 'hand-out');
  const summary = await runPipeline(evalMmhal, { out, params: { answers: file, world }, cwd: ROOT });
  const r = await report(out);
  t.is(r.n, 4);
  t.is(r.average_score, (5 + 0 + 1 + 3) / 4);
  t.is(r.hallucination_rate, 2 / 4);
  t.deepEqual(r.by_type, { holistic: 2.5, other: 2 });
  t.is(r.judge, 'rule');
  t.deepEqual(summary.flows[0]!.stages.map((s) => [s.name, s.in, s.out, s.rejected]), [
    ['mmhal-template', 4, 4, 0], ['judge-batches', 4, 1, 0], ['judge-answers', 1, 4, 0], ['mmhal-tally', 4, 4, 0], ['eval-shards', 4, 4, 0],
  ]);
  const { items: shards } = await readSource(shardSource<EvalRecord>({ path: out, schema: evalSchema }));
  t.deepEqual(shards.map((s) => [s.question_id, s.score, s.hallucinated]), [['0', 5, false], ['1', 0, true], ['2', 1, true], ['3', 3, false]]);
  t.is(shards[2]!.model_answer, items[2]!.model_answer!);
  t.deepEqual(shards[0]!.facts, items[0]!.image_content);
  t.regex(shards[1]!.judge_text, /hallucinated: .* \(no such object in the image\).*Rating: 0/);
});

test('the shapes world by default: its template filled in, all 8 question types reported', async (t) => {
  const items = JSON.parse(await readFile(path.join(world, F.mmhal), 'utf8')) as Item[];
  t.is(items.length, 16);
  const filled = path.join(tmp, 'filled.json');
  await writeFile(filled, JSON.stringify(items.map((it) => ({ ...it, model_answer: 'I cannot tell.' }))));
  const out = path.join(tmp, 'world-out');
  await runPipeline(evalMmhal, { out, params: { world, answers: filled }, cwd: ROOT });
  const r = await report(out);
  // nothing checkable anywhere: every answer "not informative, no hallucination"
  t.like(r, { n: 16, average_score: 3, hallucination_rate: 0, response_length_mean: 3, response_length_unit: 'words' });
  t.deepEqual(Object.keys(r.by_type as object), [...MMHAL_QUESTION_TYPES]);
});

test('an item without model_answer is a dead letter; the unfilled template is a clear error', async (t) => {
  const items = JSON.parse(await readFile(path.join(world, F.mmhal), 'utf8')) as Item[];
  const some = items.map((it, i) => (i === 1 ? { ...it, model_answer: undefined } : { ...it, model_answer: 'I cannot tell.' }));
  const file = path.join(tmp, 'some.json');
  await writeFile(file, JSON.stringify(some, null, 2));
  const out = path.join(tmp, 'some-out');
  await runPipeline(evalMmhal, { out, params: { world, answers: file }, cwd: ROOT });
  t.is((await report(out)).n, 15);
  const dead = (await readFile(path.join(out, 'rejected.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { stage: string; reason: string; file: string; line: number; index: number });
  t.is(dead.length, 1);
  t.like(dead[0], { stage: 'mmhal-template', file, index: 1 });
  t.regex(dead[0]!.reason, /item #1: no "model_answer"/);
  t.true(dead[0]!.line > 1);

  const err = await runPipeline(evalMmhal, { out: path.join(tmp, 'unfilled'), params: { world, answers: path.join(world, F.mmhal) }, cwd: ROOT }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(err?.code, 'FF_ERR_BAD_INPUT');
  t.regex(err!.message, /response_template\.json: every model_answer is empty/);
});

test('rule judge without the image\'s ground truth rejects the answer and says where to look', async (t) => {
  const { items } = await handTemplate();
  const file = path.join(tmp, 'elsewhere.json');
  await writeFile(file, JSON.stringify([{ ...items[0], image_src: 'coco/val2014/not-in-this-world.jpg' }]));
  const err = await runPipeline(evalMmhal, { out: path.join(tmp, 'elsewhere-out'), params: { world, answers: file }, cwd: ROOT }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(err?.code, 'FF_ERR_BAD_INPUT');
  t.regex(err!.message, /no answer could be judged: all 1 were rejected.*rejected\.jsonl/);
  const dead = await readFile(path.join(tmp, 'elsewhere-out', 'rejected.jsonl'), 'utf8');
  t.regex(dead, /no ground truth for image coco\/val2014\/not-in-this-world\.jpg/);
});

test('judge=openai: an OpenAI-compatible server judges, the key is sent but written nowhere, a rerun hits the cache', async (t) => {
  const KEY = 'sk-test-DO-NOT-LEAK-4242';
  const seen: { auth?: string; model: string; prompt: string }[] = [];
  let first = true;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => {
      if (first) {
        first = false; // one rate limit first: retried
        res.writeHead(429, { 'retry-after': '0' }).end('{"error":{"message":"slow down"}}');
        return;
      }
      const j = JSON.parse(body) as { model: string; messages: { content: string }[] };
      const prompt = j.messages[0]!.content;
      seen.push({ auth: req.headers.authorization, model: j.model, prompt });
      const response = prompt.split('### LMM Response to Evaluate\n')[1]!.trim();
      const rating = response === 'I cannot tell.' ? 3 : response.length % 2 === 0 ? 5 : 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: `Looks ${rating}. Rating: ${rating}` } }] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  const { file, items } = await handTemplate();
  const expected = items.map((it) => (it.model_answer === 'I cannot tell.' ? 3 : it.model_answer!.length % 2 === 0 ? 5 : 1));
  process.env.FACTFLOW_JUDGE_API_KEY = KEY;
  const logs: string[] = [];
  try {
    const out = path.join(tmp, 'openai-out');
    const params = { answers: file, judge: 'openai', judge_url: url, judge_model: 'judge-1' };
    await runPipeline(evalMmhal, { out, params, cwd: ROOT, log: (m) => logs.push(m) });
    const r = await report(out);
    t.is(r.judge, 'openai:judge-1');
    t.is(r.average_score, expected.reduce((a, b) => a + b, 0) / 4);
    t.is(r.hallucination_rate, expected.filter((s) => s < 3).length / 4);
    t.is(seen.length, 4);
    t.true(seen.every((s) => s.auth === `Bearer ${KEY}` && s.model === 'judge-1'));
    t.true(seen[0]!.prompt.includes('### Image Contents\n'));
    const { items: shards } = await readSource(shardSource<EvalRecord>({ path: out, schema: evalSchema }));
    t.regex(shards[0]!.judge_text, /Rating: \d$/);

    // the key appears in no file of the run, nor in any log line
    const files = await readdir(out, { recursive: true, withFileTypes: true });
    for (const f of files.filter((d) => d.isFile())) {
      const bytes = await readFile(path.join(f.parentPath ?? (f as unknown as { path: string }).path, f.name));
      t.false(bytes.includes(KEY), `${f.name} holds the key`);
    }
    t.true(files.some((f) => f.isFile() && f.name.endsWith('.json') && (f.parentPath ?? '').endsWith('judge-cache')), 'replies cached under <out>/judge-cache');
    t.false(logs.some((l) => l.includes(KEY)));

    // a rerun into a new folder with the same cache costs no request
    const before = seen.length;
    await runPipeline(evalMmhal, { out: path.join(tmp, 'openai-again'), params: { ...params, judge_cache: path.join(out, 'judge-cache') }, cwd: ROOT });
    t.is(seen.length, before);
    t.is((await report(path.join(tmp, 'openai-again'))).average_score, r.average_score);
  } finally {
    delete process.env.FACTFLOW_JUDGE_API_KEY;
    server.close();
  }
});

test('parameters: answers or policy; a bad judge_url fails before any work', async (t) => {
  const none = await runPipeline(evalMmhal, { out: path.join(tmp, 'q1'), params: { world }, cwd: ROOT }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(none?.code, 'FF_ERR_INVALID_OPTION');
  t.regex(none!.message, /params\.answers/);
  const url = await runPipeline(evalMmhal, { out: path.join(tmp, 'q2'), params: { world, answers: 'x.json', judge: 'openai', judge_url: 'ftp://nope' }, cwd: ROOT }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(url?.code, 'FF_ERR_INVALID_OPTION');
  t.regex(url!.message, /judge_url/);
});
