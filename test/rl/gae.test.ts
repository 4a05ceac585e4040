import test from 'ava';
import { gae, gaeBatch } from '../../src/rl/gae.ts';

const close = (a: number, b: number, tol = 1e-9) => Math.abs(a - b) <= tol;

test('GAE on a 4-step trajectory, gamma 0.9, lambda 0.8, computed by hand', (t) => {
  const r = [1, 0, -1, 2];
  const v = [0.5, 1.0, 0.2, -0.3];
  // gamma*lambda = 0.72; V after the last step = 0 (episode ends)
  // t=3: delta = 2 + 0.9*0 - (-0.3) = 2.3                      A3 = 2.3
  // t=2: delta = -1 + 0.9*(-0.3) - 0.2 = -1.47                 A2 = -1.47 + 0.72*2.3 = 0.186
  // t=1: delta = 0 + 0.9*0.2 - 1.0 = -0.82                     A1 = -0.82 + 0.72*0.186 = -0.68608
  // t=0: delta = 1 + 0.9*1.0 - 0.5 = 1.4                       A0 = 1.4 + 0.72*(-0.68608) = 0.9060224
  // returns = A + V: 1.4060224, 0.31392, 0.386, 2.0
  const { advantages, returns } = gae(r, v, { gamma: 0.9, lambda: 0.8 });
  const expA = [0.9060224, -0.68608, 0.186, 2.3];
  const expR = [1.4060224, 0.31392, 0.386, 2.0];
  expA.forEach((e, i) => t.true(close(advantages[i]!, e), `A${i} = ${advantages[i]} want ${e}`));
  expR.forEach((e, i) => t.true(close(returns[i]!, e), `R${i} = ${returns[i]} want ${e}`));
});

test('GAE with gamma = lambda = 1 is reward-to-go minus value (LLaVA-RLHF setting)', (t) => {
  // reward-to-go of [1,0,-1,2]: [2, 1, 1, 2]; minus V [0.5, 1, 0.2, -0.3] -> [1.5, 0, 0.8, 2.3]
  const { advantages, returns } = gae([1, 0, -1, 2], [0.5, 1.0, 0.2, -0.3], { gamma: 1, lambda: 1 });
  [1.5, 0, 0.8, 2.3].forEach((e, i) => t.true(close(advantages[i]!, e)));
  [2, 1, 1, 2].forEach((e, i) => t.true(close(returns[i]!, e)));
});

test('padding under a zero mask changes nothing and comes out 0', (t) => {
  const plain = gae([1, 0, -1, 2], [0.5, 1.0, 0.2, -0.3], { gamma: 0.9, lambda: 0.8 });
  const padded = gae([1, 0, -1, 2, 55], [0.5, 1.0, 0.2, -0.3, 99], { gamma: 0.9, lambda: 0.8 }, [1, 1, 1, 1, 0]);
  t.deepEqual(padded.advantages.slice(0, 4), plain.advantages);
  t.deepEqual(padded.returns.slice(0, 4), plain.returns);
  t.is(padded.advantages[4], 0);
  t.is(padded.returns[4], 0);
  // a masked hole in the middle is skipped: step 2 bootstraps from step 4
  const hole = gae([1, 7, 2], [0, 7, 0], { gamma: 1, lambda: 1 }, [1, 0, 1]);
  t.deepEqual(hole.advantages, [3, 0, 2]);
});

test('bootstrap value enters the last delta', (t) => {
  // delta = 1 + 0.5*4 - 0 = 3
  t.deepEqual(gae([1], [0], { gamma: 0.5, lambda: 1, bootstrapValue: 4 }).advantages, [3]);
});

test('gaeBatch handles ragged rows; bad options throw FF_ERR_INVALID_OPTION', (t) => {
  const b = gaeBatch([[1], [1, 1]], [[0], [0, 0]], { gamma: 1, lambda: 1 });
  t.deepEqual(b.advantages, [[1], [2, 1]]);
  const e = t.throws(() => gae([1], [0], { gamma: 1.5, lambda: 1 }));
  t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e!.message, /gae\.gamma/);
  t.throws(() => gae([1, 2], [0], { gamma: 1, lambda: 1 }), { instanceOf: RangeError });
});
