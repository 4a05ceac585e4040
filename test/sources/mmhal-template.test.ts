import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mmhalImagePath, mmhalTemplateSource, mmhalToEval } from '../../sources/mmhal-template.ts';
import { readSource } from './harness.ts';

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-mmhal-t-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

// the real benchmark's layout (README of ../shared/realdata): keys in this order, 2-space indent
const REAL_STYLE = {
  question_type: 'attribute',
  question_topic: 'animal',
  image_id: 'df62a56fdc1bb12b',
  image_src: 'https://c4.staticflickr.com/2/1234/10172500456_1f40b6bd38_o.jpg',
  image_content: ['Fire hydrant', 'Dog'],
  question: 'What color is the fire hydrant?',
  gt_answer: 'The fire hydrant is red.',
  model_answer: '',
};

test('items become eval records: position as id, URL basename as image, image_content as facts', async (t) => {
  const file = path.join(tmp, 'response_template.json');
  await writeFile(file, JSON.stringify([REAL_STYLE, { ...REAL_STYLE, question_type: 'counting', image_src: 'coco/val2014/x.jpg', model_answer: 'Two.' }], null, 2));
  const { items, rejected } = await readSource(mmhalTemplateSource({ file }));
  t.is(rejected.length, 0);
  t.deepEqual(items[0], {
    question_id: '0', image: '10172500456_1f40b6bd38_o.jpg', question: 'What color is the fire hydrant?', question_type: 'attribute',
    gt_answer: 'The fire hydrant is red.', facts: ['Fire hydrant', 'Dog'], model_answer: '', score: null, hallucinated: null, judge_text: '',
  });
  t.like(items[1], { question_id: '1', image: 'coco/val2014/x.jpg', question_type: 'counting', model_answer: 'Two.' });
  t.is(mmhalImagePath('https://farm2.staticflickr.com/a/b%20c_o.jpg'), 'b c_o.jpg');
});

test('bad items are rejected with their position and line; requireAnswer rejects items without an answer', async (t) => {
  const file = path.join(tmp, 'bad.json');
  const { model_answer: _drop, ...noAnswer } = REAL_STYLE;
  await writeFile(file, JSON.stringify([REAL_STYLE, { ...REAL_STYLE, question: 7 }, { ...REAL_STYLE, image_src: '/abs/x.jpg' }, noAnswer], null, 2));
  const loose = await readSource(mmhalTemplateSource({ file }));
  t.deepEqual(loose.items.map((r) => r.question_id), ['0', '3']);
  t.deepEqual(loose.rejected.map((r) => r.reason), [
    'item #1: "question" must be a string, got 7',
    'item #2: field "image" must be relative to the image root, got absolute path "/abs/x.jpg".',
  ]);
  t.like(loose.rejected[0]!.origin, { file, index: 1, line: 15 }); // item 0 spans lines 2-14 (image_content takes 4)
  const strict = await readSource(mmhalTemplateSource({ file, requireAnswer: true }));
  t.deepEqual(strict.items.map((r) => r.question_id), ['0']);
  t.regex(strict.rejected[2]!.reason, /item #3: no "model_answer"/);
  t.is(mmhalToEval('x', 4), 'item #4: expected an object');
});
