import test from 'ava';
import { evalSchema, type EvalRecord } from '../../schemas/eval.ts';

const good: EvalRecord = {
  question_id: 'mmhal-3',
  image: 'coco/val2017/000000000139.jpg',
  question: 'How many stars are there?',
  question_type: 'counting',
  gt_answer: 'Two',
  facts: ['Two yellow stars.'],
  model_answer: 'There are three stars.',
  score: 1,
  hallucinated: true,
  judge_text: 'The response counts three stars; the image has two. Rating: 1',
};

test('valid eval records pass', (t) => {
  t.is(evalSchema.validate(good), null);
  t.is(evalSchema.validate({ ...good, score: null, hallucinated: null, judge_text: '' }), null);
});

const bad: [string, unknown, string][] = [
  ['empty question_id', { ...good, question_id: '' }, 'field "question_id" is empty.'],
  ['null image', { ...good, image: null }, 'field "image" is null but is required.'],
  ['absolute image', { ...good, image: '/x.jpg' }, 'field "image" must be relative to the image root, got absolute path "/x.jpg".'],
  ['score 200', { ...good, score: 200 }, 'field "score" must be an int8 integer in [-128, 127], got number 200.'],
  ['empty question', { ...good, question: '\n' }, 'field "question" is empty.'],
  ['missing judge_text', { ...good, judge_text: undefined }, 'field "judge_text" is missing but is required.'],
];
for (const [name, record, reason] of bad) {
  test(`rejects: ${name}`, (t) => {
    t.is(evalSchema.validate(record), reason);
  });
}
