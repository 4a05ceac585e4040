import test from 'ava';
import { shuffle } from '../../src/stream/shuffle.ts';
import { runStage, testContext } from './helpers.ts';

const items = Array.from({ length: 500 }, (_, i) => i);

test('shuffle is a permutation and deterministic for a seed', async (t) => {
  const a = await runStage(shuffle<number>({ seed: 3, bufferSize: 64 }), items);
  const b = await runStage(shuffle<number>({ seed: 3, bufferSize: 64 }), items);
  const c = await runStage(shuffle<number>({ seed: 4, bufferSize: 64 }), items);
  t.deepEqual(a, b);
  t.notDeepEqual(a, c);
  t.deepEqual([...a].sort((x, y) => x - y), items);
  t.notDeepEqual(a, items);
});

test('shuffle defaults to the run seed', async (t) => {
  const a = await runStage(shuffle<number>({ bufferSize: 16 }), items, testContext(5));
  const b = await runStage(shuffle<number>({ bufferSize: 16 }), items, testContext(5));
  const c = await runStage(shuffle<number>({ bufferSize: 16 }), items, testContext(6));
  t.deepEqual(a, b);
  t.notDeepEqual(a, c);
});

test('shuffle holds at most bufferSize records: no record appears earlier than its position minus the buffer', async (t) => {
  const out = await runStage(shuffle<number>({ seed: 1, bufferSize: 10 }), items);
  out.forEach((x, pos) => t.true(x <= pos + 10, `record ${x} at ${pos}`));
});

test('shuffle with input shorter than the buffer still shuffles', async (t) => {
  const out = await runStage(shuffle<number>({ seed: 1, bufferSize: 1000 }), items.slice(0, 20));
  t.deepEqual([...out].sort((x, y) => x - y), items.slice(0, 20));
  t.notDeepEqual(out, items.slice(0, 20));
});

test('shuffle checks bufferSize', (t) => {
  const err = t.throws(() => shuffle({ bufferSize: 0 }));
  t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(err!.message, /option "bufferSize"/);
});
