import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aokvqaSource } from '../../sources/aokvqa.ts';
import { readSource } from './harness.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const VAL = fileURLToPath(new URL('../fixtures/aokvqa/aokvqa_v1p0_val.json', import.meta.url));
const ROUNDS = fileURLToPath(new URL('../fixtures/aokvqa/handmade_rounds.json', import.meta.url));

test('reads the real A-OKVQA record', async (t) => {
  const { items, rejected } = await readSource(aokvqaSource({ file: VAL }));
  t.deepEqual(rejected, []);
  t.deepEqual(items, [{
    split: 'val',
    image_id: 461751,
    question_id: '22jbM6gDxdaMaunuzgrsBB',
    question: "What is in the motorcyclist's mouth?",
    choices: ['toothpick', 'food', 'popsicle stick', 'cigarette'],
    correct_choice_idx: 3,
    direct_answers: Array(10).fill('cigarette'),
    difficult_direct_answer: false,
    rationales: ["He's smoking while riding.", 'The motorcyclist has a lit cigarette in his mouth while he rides on the street.', 'The man is smoking.'],
  }]);
});

test('several files in order; partitions split by index', async (t) => {
  const { items } = await readSource(aokvqaSource({ file: [VAL, ROUNDS] }));
  t.deepEqual(items.map((i) => i.question_id), ['22jbM6gDxdaMaunuzgrsBB', 'hand-q1', 'hand-q2', 'hand-q3']);
  const p = await readSource(aokvqaSource({ file: ROUNDS }), { partition: { index: 1, count: 2 } });
  t.deepEqual(p.items.map((i) => i.question_id), ['hand-q2']);
  const fp = await aokvqaSource({ file: VAL }).inputs!();
  t.is(fp[0]!.path, VAL);
});

test('bad items are rejected with file, line and byte offset; test-split items keep a null answer', async (t) => {
  const dir = await tempDir(t, 'ff-aok-');
  const file = join(dir, 'aokvqa_v1p0_test.json');
  await writeFile(file, '[\n{"question_id": "a", "image_id": 1, "question": "Q?", "choices": ["x", "y"]},\n{"question_id": "b", "image_id": "one", "question": "Q?", "choices": ["x"]}\n]');
  const { items, rejected } = await readSource(aokvqaSource({ file }));
  t.is(items.length, 1);
  t.is(items[0]!.correct_choice_idx, null);
  t.deepEqual(items[0]!.rationales, []);
  t.is(rejected.length, 1);
  t.is(rejected[0]!.reason, 'not an A-OKVQA question: question_id b: "image_id" must be a non-negative integer, got "one"');
  t.deepEqual(rejected[0]!.origin, { file, line: 3, byteOffset: 80, index: 1 });
});

test('options are checked at the factory', (t) => {
  t.throws(() => aokvqaSource({ file: [] }), { message: /option "file"/ });
});
