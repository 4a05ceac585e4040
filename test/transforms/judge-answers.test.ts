import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { BadRecordError, HttpError, type FactflowError } from '../../src/errors.ts';
import type { Judge, JudgeItem, ShapesTruth } from '../../src/eval/judge.ts';
import { ruleJudge } from '../../src/eval/rule-judge.ts';
import { withOrigin, originOf } from '../../src/stream/origin.ts';
import type { EvalRecord } from '../../schemas/eval.ts';
import { judgeAnswers } from '../../transforms/judge-answers.ts';
import { runStage } from '../sources/harness.ts';

function rec(id: string, answer: string, image = 'a.jpg'): EvalRecord {
  return {
    question_id: id, image, question: `Q${id}?`, question_type: 'attribute', gt_answer: `gt ${id}`, facts: ['Red circle'],
    model_answer: answer, score: null, hallucinated: null, judge_text: '',
  };
}

/** Scores an answer by its length (0-6), remembers what it saw and how many calls ran at once. */
function fakeJudge(options: { delayMs?: number; refuse?: (item: JudgeItem) => boolean } = {}) {
  const seen: JudgeItem[][] = [];
  let running = 0;
  let maxRunning = 0;
  const judge: Judge = {
    name: 'fake',
    async judge(items) {
      running++;
      maxRunning = Math.max(maxRunning, running);
      try {
        seen.push([...items]);
        if (options.delayMs) await sleep(options.delayMs);
        const bad = items.findIndex((i) => options.refuse?.(i));
        if (bad >= 0) throw new BadRecordError('cannot judge this one', { recordIndex: bad });
        return items.map((i) => {
          const score = Math.min(6, i.response.length);
          return { score, hallucinated: score < 3, explanation: `len ${i.response.length}. Rating: ${score}` };
        });
      } finally {
        running--;
      }
    },
  };
  return { judge, seen, maxRunning: () => maxRunning };
}

test('judges batches in order, fills score/hallucinated/judge_text and keeps origins', async (t) => {
  const { judge, seen, maxRunning } = fakeJudge({ delayMs: 20 });
  const stage = judgeAnswers({ judge, concurrency: 2 });
  const records = ['a', 'bbbb', 'cc', 'dddddddd', 'e'].map((a, i) => withOrigin(rec(String(i), a), { file: 'f.json', index: i }));
  const batches = [records.slice(0, 2), records.slice(2, 4), records.slice(4)];
  const { items, rejected } = await runStage(stage, batches);
  t.deepEqual(items.map((r) => [r.question_id, r.score, r.hallucinated]), [['0', 1, true], ['1', 4, false], ['2', 2, true], ['3', 6, false], ['4', 1, true]]);
  t.is(items[1]!.judge_text, 'len 4. Rating: 4');
  t.deepEqual(originOf(items[3]), { file: 'f.json', index: 3 });
  t.is(rejected.length, 0);
  t.is(seen.length, 3);
  t.deepEqual(seen[0]!.map((i) => [i.question, i.gt_answer, i.image_content, i.response]), [['Q0?', 'gt 0', ['Red circle'], 'a'], ['Q1?', 'gt 1', ['Red circle'], 'bbbb']]);
  t.is(maxRunning(), 2, 'two batches judged at once');
  t.deepEqual(stage.report(), { judged: 5, cached: 0, hallucinated: 3, rejected: 0 });
  t.false(stage.conserves);
});

test('a batch refused with a BadRecordError is judged item by item: only the bad item is rejected', async (t) => {
  const { judge } = fakeJudge({ refuse: (i) => i.response === 'bad' });
  const { items, rejected } = await runStage(judgeAnswers({ judge }), [[rec('0', 'ok'), rec('1', 'bad'), rec('2', 'fine')]]);
  t.deepEqual(items.map((r) => r.question_id), ['0', '2']);
  t.is(rejected.length, 1);
  t.is((rejected[0]!.record as EvalRecord).question_id, '1');
  t.regex(rejected[0]!.reason, /cannot judge this one/);
});

test('truth: attached for the rule judge; a record whose image has none is rejected', async (t) => {
  const truth: ShapesTruth = { width: 64, height: 64, background: 'grey', objects: [{ shape: 'circle', color: 'red', size: 'large', box: [10, 10, 30, 30] }] };
  const stage = judgeAnswers({ judge: ruleJudge(), truth: new Map([['a.jpg', truth]]) });
  const records = [
    { ...rec('0', 'There is a large red circle.'), question: 'Describe the image.', gt_answer: 'A large red circle.' },
    { ...rec('1', 'There is a blue star.'), question: 'Describe the image.', gt_answer: 'A large red circle.' },
    rec('2', 'There is a red circle.', 'other.jpg'),
  ];
  const { items, rejected } = await runStage(stage, [records]);
  t.deepEqual(items.map((r) => [r.question_id, r.hallucinated]), [['0', false], ['1', true]]);
  t.true(items[0]!.score! >= 4);
  t.true(items[1]!.score! < 3);
  t.regex(items[1]!.judge_text, /hallucinated: blue star/);
  t.is(rejected.length, 1);
  t.regex(rejected[0]!.reason, /no ground truth for image other\.jpg \(question_id 2\)/);
  t.is(stage.report().rejected, 1);
});

test('a judge failure that is not a bad record fails the stage', async (t) => {
  const judge: Judge = { name: 'down', judge: async () => { throw new HttpError('POST http://x answered 503', { status: 503 }); } };
  const err = await runStage(judgeAnswers({ judge }), [[rec('0', 'a')]]).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(err?.code, 'FF_ERR_HTTP');
});

test('options are checked at the factory', (t) => {
  const e1 = t.throws(() => judgeAnswers({ judge: undefined as unknown as Judge })) as FactflowError;
  t.is(e1.code, 'FF_ERR_INVALID_OPTION');
  t.regex(e1.message, /"judge"/);
  const e2 = t.throws(() => judgeAnswers({ judge: ruleJudge(), concurrency: 0 })) as FactflowError;
  t.regex(e2.message, /"concurrency"/);
});
