import test from 'ava';
import type { FactflowError } from '../../src/errors.ts';
import type { Answerer, AnswerItem } from '../../src/eval/answerer.ts';
import type { EvalRecord } from '../../schemas/eval.ts';
import { answerQuestions } from '../../transforms/answer-questions.ts';
import { runStage } from '../sources/harness.ts';

function rec(id: string, image: string, question: string): EvalRecord {
  return { question_id: id, image, question, question_type: 'random', gt_answer: 'yes', facts: [], model_answer: '', score: null, hallucinated: null, judge_text: '' };
}

test('answers in batches, with the image prefix and prompt suffix, keeping the stored question', async (t) => {
  const calls: AnswerItem[][] = [];
  const answerer: Answerer = async (items) => {
    calls.push(items);
    return items.map((i) => `  answer to ${i.question.split('\n')[0]} about ${i.image} `);
  };
  const stage = answerQuestions({ answerer, batchSize: 2, imagePrefix: 'coco/val2014/', promptSuffix: '\nShort.' });
  const input = [rec('1', 'a.jpg', 'Is there a dog?'), rec('2', 'b.jpg', 'Is there a cat?'), rec('3', 'c.jpg', 'Is there a cow?')];
  const { items } = await runStage(stage, input);
  t.deepEqual(calls.map((c) => c.length), [2, 1]);
  t.deepEqual(calls[0]![0], { image: 'coco/val2014/a.jpg', question: 'Is there a dog?\nShort.' });
  t.deepEqual(items.map((r) => [r.question_id, r.question, r.model_answer]), [
    ['1', 'Is there a dog?', 'answer to Is there a dog? about coco/val2014/a.jpg'],
    ['2', 'Is there a cat?', 'answer to Is there a cat? about coco/val2014/b.jpg'],
    ['3', 'Is there a cow?', 'answer to Is there a cow? about coco/val2014/c.jpg'],
  ]);
  t.deepEqual(stage.report(), { answered: 3, calls: 2, mean_words: 8 });
});

test('an answerer returning the wrong number of answers fails with a backend error', async (t) => {
  const stage = answerQuestions({ answerer: async () => ['only one'], batchSize: 4 });
  const err = await runStage(stage, [rec('1', 'a.jpg', 'Q?'), rec('2', 'b.jpg', 'Q?')]).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(err?.code, 'FF_ERR_BACKEND');
  t.regex(err!.message, /returned 1 answer\(s\) for 2 question\(s\)/);
});

test('options are checked at the factory', (t) => {
  const e1 = t.throws(() => answerQuestions({ answerer: 'x' as unknown as Answerer })) as FactflowError;
  t.is(e1.code, 'FF_ERR_INVALID_OPTION');
  t.regex(e1.message, /"answerer"/);
  const e2 = t.throws(() => answerQuestions({ answerer: async () => [], imagePrefix: '../up/' })) as FactflowError;
  t.regex(e2.message, /"imagePrefix"/);
  const e3 = t.throws(() => answerQuestions({ answerer: async () => [], batchSize: 0 })) as FactflowError;
  t.regex(e3.message, /"batchSize"/);
});
