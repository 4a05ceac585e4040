import test from 'ava';
import { MMHAL_QUESTION_TYPES, mmhalMetrics } from '../../src/eval/mmhal-metrics.ts';

test('average score, hallucination rate and per-type averages by hand', (t) => {
  // scores 6, 2 (attribute), 3, 0 (counting), 5 (holistic)
  // average = 16/5 = 3.2; hallucination = scores < 3: {2, 0} -> 2/5 = 0.4
  // by type: attribute (6+2)/2 = 4, counting (3+0)/2 = 1.5, holistic 5
  const m = mmhalMetrics([
    { question_type: 'holistic', score: 5 },
    { question_type: 'attribute', score: 6 },
    { question_type: 'counting', score: 3 },
    { question_type: 'attribute', score: 2 },
    { question_type: 'counting', score: 0 },
  ]);
  t.is(m.n, 5);
  t.is(m.average_score, 3.2);
  t.is(m.hallucination_rate, 0.4);
  t.deepEqual(m.by_type, { attribute: 4, counting: 1.5, holistic: 5 });
  t.deepEqual(Object.keys(m.by_type), ['attribute', 'counting', 'holistic'], 'benchmark order');
});

test('score 3 is the lowest without hallucination', (t) => {
  t.is(mmhalMetrics([{ question_type: 'other', score: 3 }]).hallucination_rate, 0);
  t.is(mmhalMetrics([{ question_type: 'other', score: 2 }]).hallucination_rate, 1);
});

test('the 96-question layout: 8 types x 12', (t) => {
  // every type gets scores 0..11 % 7: per type the same mean
  const items = Array.from({ length: 96 }, (_, i) => ({ question_type: MMHAL_QUESTION_TYPES[i % 8]!, score: Math.floor(i / 8) % 7 }));
  const m = mmhalMetrics(items);
  t.deepEqual(Object.keys(m.by_type), [...MMHAL_QUESTION_TYPES]);
  // per type: scores 0,1,2,3,4,5,6,0,1,2,3,4 -> 31/12
  for (const ty of MMHAL_QUESTION_TYPES) t.is(m.by_type[ty], 31 / 12);
  // < 3: 0,1,2,0,1,2 -> 6 of 12
  t.is(m.hallucination_rate, 0.5);
});

test('unknown types follow the benchmark ones, sorted', (t) => {
  const m = mmhalMetrics([
    { question_type: 'zeta', score: 1 },
    { question_type: 'alpha', score: 2 },
    { question_type: 'other', score: 3 },
  ]);
  t.deepEqual(Object.keys(m.by_type), ['other', 'alpha', 'zeta']);
});

test('bad scores and empty input are clear errors', (t) => {
  const e = t.throws(() => mmhalMetrics([{ question_type: 'a', score: 4 }, { question_type: 'a', score: 7 }]));
  t.is((e as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.regex(e!.message, /^record #1: score 7 is not an integer from 0 to 6/);
  const e2 = t.throws(() => mmhalMetrics([]));
  t.is((e2 as { code?: string }).code, 'FF_ERR_BAD_INPUT');
});
