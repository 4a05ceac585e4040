import test from 'ava';
import { exactShareByKey, split } from '../../src/stream/split.ts';
import { Rng } from '../../src/stream/random.ts';
import { runStage, testContext } from './helpers.ts';

type R = { id: string };
const recs: R[] = Array.from({ length: 2000 }, (_, i) => ({ id: `q${i}` }));
const key = (r: R): string => r.id;

test('split by fraction: holdout and rest are exact complements, close to the fraction', async (t) => {
  const hold = await runStage(split<R>({ seed: 7, key, fraction: 0.1, take: 'holdout' }), recs);
  const rest = await runStage(split<R>({ seed: 7, key, fraction: 0.1, take: 'rest' }), recs);
  t.is(hold.length + rest.length, recs.length);
  const h = new Set(hold.map(key));
  t.false(rest.some((r) => h.has(r.id)));
  t.true(Math.abs(hold.length - 200) < 45, `holdout ${hold.length}`);
});

test('split is stable: same id same side regardless of order and of other records', async (t) => {
  const shuffled = new Rng(1).shuffle([...recs]);
  const a = new Set((await runStage(split<R>({ seed: 7, key, fraction: 0.2, take: 'holdout' }), recs)).map(key));
  const b = new Set((await runStage(split<R>({ seed: 7, key, fraction: 0.2, take: 'holdout' }), shuffled.slice(0, 1000))).map(key));
  for (const id of b) t.true(a.has(id));
  for (const r of shuffled.slice(0, 1000)) t.is(a.has(r.id), b.has(r.id));
  const other = new Set((await runStage(split<R>({ seed: 8, key, fraction: 0.2, take: 'holdout' }), recs)).map(key));
  t.notDeepEqual([...other], [...a]);
});

test('split by count of total holds out about count (binomial tolerance) and notes it', async (t) => {
  const ctx = testContext();
  const hold = await runStage(split<R>({ seed: 3, key, count: 500, total: 2000, take: 'holdout' }), recs, ctx);
  t.true(Math.abs(hold.length - 500) < 60, `holdout ${hold.length}`);
});

test('split checks options', (t) => {
  const cases: [() => unknown, RegExp][] = [
    [() => split<R>({ key, take: 'holdout' }), /option "fraction"/],
    [() => split<R>({ key, fraction: 1.5, take: 'holdout' }), /option "fraction"/],
    [() => split<R>({ key, count: 5, take: 'holdout' }), /option "total"/],
    [() => split<R>({ key, count: 5, total: 3, take: 'holdout' }), /option "count"/],
    [() => split<R>({ key, fraction: 0.1, take: 'both' as 'rest' }), /option "take"/],
  ];
  for (const [fn, re] of cases) {
    const err = t.throws(fn);
    t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
    t.regex(err!.message, re);
  }
});

test('exactShareByKey: exactly round(fraction x keys) keys taken, all records of a key on one side, seeded', (t) => {
  // 21 images with 1-6 pairs each, in an interleaved order
  const rng = new Rng(3);
  const pairs = Array.from({ length: 21 }, (_, k) => Array.from({ length: 1 + rng.int(6) }, (_, j) => ({ id: `p${k}-${j}`, image: `img${k}` }))).flat();
  const shuffled = rng.shuffle(pairs.slice());
  const byImage = (r: { image: string }) => r.image;
  for (const [fraction, want] of [[0.5, 11], [0.25, 5], [0, 0], [1, 21]] as const) {
    for (const seed of [1, 2, 3]) {
      const { taken, rest } = exactShareByKey(shuffled, byImage, fraction, seed);
      const a = new Set(taken.map(byImage));
      const b = new Set(rest.map(byImage));
      t.is(a.size, want, `fraction ${fraction} seed ${seed}`);
      t.is(b.size, 21 - want);
      t.true([...a].every((k) => !b.has(k)), 'an image on both sides');
      t.is(taken.length + rest.length, pairs.length);
      // input order kept on each side
      t.deepEqual(taken, shuffled.filter((r) => a.has(r.image)));
    }
  }
  const s1 = exactShareByKey(shuffled, byImage, 0.5, 1).taken.map(byImage);
  t.deepEqual(exactShareByKey(shuffled.slice().reverse(), byImage, 0.5, 1).taken.map(byImage).sort(), [...new Set(s1)].sort().flatMap((k) => s1.filter((x) => x === k)), 'the keys taken do not depend on input order');
  t.notDeepEqual(new Set(exactShareByKey(shuffled, byImage, 0.5, 2).taken.map(byImage)), new Set(s1), 'another seed takes other keys');
  t.throws(() => exactShareByKey(shuffled, byImage, 1.5, 1), { message: /"fraction"/ });
});
