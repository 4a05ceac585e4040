import test from 'ava';
import { batch, unbatch } from '../../src/stream/batch.ts';
import { runStage } from './helpers.ts';

test('batch groups records and emits the last partial batch', async (t) => {
  const out = await runStage(batch<number>(3), [1, 2, 3, 4, 5, 6, 7]);
  t.deepEqual(out, [[1, 2, 3], [4, 5, 6], [7]]);
});

test('batch of an exact multiple has no empty tail; empty input gives nothing', async (t) => {
  t.deepEqual(await runStage(batch<number>(2), [1, 2, 3, 4]), [[1, 2], [3, 4]]);
  t.deepEqual(await runStage(batch<number>(2), []), []);
});

test('batch marks itself as not conserving counts and is named', (t) => {
  const b = batch(4);
  t.is(b.conserves, false);
  t.is(b.name, 'batch(4)');
  t.is(batch(4, { name: 'b' }).name, 'b');
});

test('batch rejects a bad size with FF_ERR_INVALID_OPTION naming the option', (t) => {
  const err = t.throws(() => batch(0));
  t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(err!.message, /option "size"/);
  t.throws(() => batch(1.5));
});

test('unbatch flattens', async (t) => {
  t.deepEqual(await runStage(unbatch<number>(), [[1, 2], [], [3]]), [1, 2, 3]);
});
