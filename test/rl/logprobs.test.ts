import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import {
  entropyFromLogits,
  logSoftmaxRow,
  sequenceLogprob,
  tokenLogprobs,
  tokenLogprobsArray,
} from '../../src/rl/logprobs.ts';

test.before(async () => {
  await tf.setBackend('cpu');
});

const near = (a: number, b: number, tol = 1e-5) => Math.abs(a - b) <= tol;

// Manual log-softmax:
//  row [1,2,3]: lse = 3 + ln(1 + e^-1 + e^-2) = 3 + ln(1.5032147) = 3.4076060
//               log p = [-2.4076060, -1.4076060, -0.4076060]; p = [0.0900306, 0.2447285, 0.6652410]
//  row [0,0,0]: log p = ln(1/3) = -1.0986123 each
const logits = [[[1, 2, 3], [0, 0, 0]]];
const ids = [[2, 1]];

test('per-token log-probs of chosen tokens match a manual log-softmax', (t) => {
  const lp = tokenLogprobs(tf.tensor3d(logits), ids).arraySync()[0]!;
  t.true(near(lp[0]!, -0.407606));
  t.true(near(lp[1]!, -1.0986123));
  const arr = tokenLogprobsArray(logits[0]!, ids[0]!);
  t.true(near(arr[0]!, -0.407606) && near(arr[1]!, -1.0986123));
  t.true(near(logSoftmaxRow([1000, 1000])[0]!, Math.log(0.5)), 'stable for large logits');
});

test('temperature divides the logits first', (t) => {
  // [1,2,3]/2 = [0.5,1,1.5]: lse = 1.5 + ln(1 + e^-0.5 + e^-1) = 2.1802697; log p(2) = -0.6802697
  const lp = tokenLogprobs(tf.tensor3d(logits), ids, 2).arraySync()[0]!;
  t.true(near(lp[0]!, -0.6802697));
  t.throws(() => tokenLogprobs(tf.tensor3d(logits), ids, 0), { instanceOf: RangeError });
});

test('sequence log-prob sums over the mask', (t) => {
  const lp = tokenLogprobs(tf.tensor3d(logits), ids);
  // -0.407606 + -1.0986123 = -1.5062183; with the second token masked: -0.407606
  const full = sequenceLogprob(lp, tf.tensor2d([[1, 1]])).dataSync()[0]!;
  const first = sequenceLogprob(lp, tf.tensor2d([[1, 0]])).dataSync()[0]!;
  t.true(near(full, -1.5062183));
  t.true(near(first, -0.407606));
});

test('entropy from logits', (t) => {
  // row 1: 0.0900306*2.4076060 + 0.2447285*1.4076060 + 0.6652410*0.4076060 = 0.8323956
  // row 2: uniform over 3 = ln 3 = 1.0986123
  const h = entropyFromLogits(tf.tensor3d(logits)).arraySync()[0]!;
  t.true(near(h[0]!, 0.8323956));
  t.true(near(h[1]!, 1.0986123));
});

test('gradient of the chosen log-prob is one-hot minus softmax', (t) => {
  // d log p(2) / d logits = [0,0,1] - [0.0900306, 0.2447285, 0.6652410]
  const g = tf.grad((x: tf.Tensor) => tf.sum(tokenLogprobs(x as tf.Tensor3D, [[2]])))(tf.tensor3d([[[1, 2, 3]]]));
  const row = (g.arraySync() as number[][][])[0]![0]!;
  [-0.0900306, -0.2447285, 0.334759].forEach((e, i) => t.true(near(row[i]!, e), `${row[i]} vs ${e}`));
});

test('ids of the wrong shape or out of range are refused', (t) => {
  t.throws(() => tokenLogprobs(tf.tensor3d(logits), tf.tensor2d([[1]], [1, 1], 'int32')), { instanceOf: RangeError });
  t.throws(() => tokenLogprobsArray([[0, 0]], [5]), { message: /outside the vocabulary/ });
});
