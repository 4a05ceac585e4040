import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FactflowError } from '../../src/errors.ts';
import { popeQuestionsSource, popeToEval } from '../../sources/pope-questions.ts';
import { originOf } from '../../src/stream/origin.ts';
import { readSource } from './harness.ts';

const FIX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'pope');

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-pope-q-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test('reads the real splits (LF and CRLF) in order, each record with its split and origin', async (t) => {
  const files = ['random', 'adversarial'].map((s) => path.join(FIX, `coco_pope_${s}.json`));
  const { items, rejected } = await readSource(popeQuestionsSource({ file: files }));
  t.is(rejected.length, 0);
  t.is(items.length, 600);
  t.deepEqual(items[0], { question_id: 1, image: 'COCO_val2014_000000310196.jpg', text: 'Is there a snowboard in the image?', label: 'yes', split: 'random' });
  t.like(items[301], { question_id: 2, text: 'Is there a backpack in the image?', label: 'no', split: 'adversarial' });
  t.like(originOf(items[301]), { file: files[1], line: 2, index: 301 });
  t.deepEqual(popeToEval(items[301]!), {
    question_id: '2', image: 'COCO_val2014_000000310196.jpg', question: 'Is there a backpack in the image?', question_type: 'adversarial',
    gt_answer: 'no', facts: [], model_answer: '', score: null, hallucinated: null, judge_text: '',
  });
});

test('a bad line is rejected with file:line; the others are read', async (t) => {
  const file = path.join(tmp, 'coco_pope_mine.json');
  await writeFile(file, '{"question_id": 1, "image": "a.jpg", "text": "Is there a cat?", "label": "yes"}\r\n{"question_id": 2, "image": "a.jpg", "text": "Is there a dog?", "label": "maybe"}\r\n\r\n{"question_id": 3, "image": "a.jpg", "text": "Is there a cow?", "label": "No"}\r\n');
  const { items, rejected } = await readSource(popeQuestionsSource({ file }));
  t.deepEqual(items.map((q) => [q.question_id, q.label, q.split]), [[1, 'yes', 'mine'], [3, 'no', 'mine']]);
  t.is(rejected.length, 1);
  t.regex(rejected[0]!.reason, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: label must be "yes" or "no", got "maybe"`));
  t.like(rejected[0]!.origin, { file, line: 2, index: 1 });
});

test('options: files and split names are checked', (t) => {
  const e1 = t.throws(() => popeQuestionsSource({ file: [] })) as FactflowError;
  t.is(e1.code, 'FF_ERR_INVALID_OPTION');
  const e2 = t.throws(() => popeQuestionsSource({ file: ['a/coco_pope_random.json', 'b/coco_pope_random.json'] })) as FactflowError;
  t.regex(e2.message, /"splits".*"random" appears twice/);
  const e3 = t.throws(() => popeQuestionsSource({ file: ['a.json'], splits: ['x', 'y'] })) as FactflowError;
  t.regex(e3.message, /one split per file/);
});
