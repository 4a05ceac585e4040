import test from 'ava';
import { maskedStats, whiten, whitenBatch } from '../../src/rl/whiten.ts';

const near = (a: number, b: number, tol = 1e-7) => Math.abs(a - b) <= tol;

test('masked whitening by hand (population std, as LLaVA-RLHF)', (t) => {
  // valid [1,2,3]: mean 2, var = (1 + 0 + 1)/3 = 2/3, std = 0.8164966, 1/std = 1.2247449
  const w = whiten([1, 2, 3, 100], [1, 1, 1, 0]);
  [-1.2247449, 0, 1.2247449].forEach((e, i) => t.true(near(w[i]!, e), `${w[i]} vs ${e}`));
  t.is(w[3], 0, 'masked entries come out 0');
});

test('unbiased variance (TRL) and shiftMean=false', (t) => {
  // var = 2/2 = 1 -> [-1, 0, 1]
  const u = whiten([1, 2, 3], undefined, { unbiased: true });
  [-1, 0, 1].forEach((e, i) => t.true(near(u[i]!, e)));
  // shiftMean false adds the mean back: [2 - 1.2247449, 2, 2 + 1.2247449]
  const s = whiten([1, 2, 3], undefined, { shiftMean: false });
  [0.7752551, 2, 3.2247449].forEach((e, i) => t.true(near(s[i]!, e)));
});

test('batch statistics are shared across ragged rows', (t) => {
  // [1,3] and [5]: mean 3, var = (4 + 0 + 4)/3 = 8/3, 1/std = 0.6123724
  const w = whitenBatch([[1, 3], [5]]);
  t.true(near(w[0]![0]!, -1.2247449) && near(w[0]![1]!, 0) && near(w[1]![0]!, 1.2247449));
  t.deepEqual(maskedStats([[1, 3], [5]]), { mean: 3, variance: 8 / 3, count: 3 });
});

test('constant and empty inputs do not blow up', (t) => {
  t.deepEqual(whiten([4, 4, 4]), [0, 0, 0]);
  t.deepEqual(whiten([4, 4], [0, 0]), [0, 0]);
  t.deepEqual(whitenBatch([]), []);
  t.throws(() => whiten([1], [1, 1]), { instanceOf: RangeError });
});
