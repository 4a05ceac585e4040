import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import {
  approxKl,
  clippedPolicyLoss,
  clippedValueLoss,
  maskedMean,
  meanEntropy,
  policyClipFraction,
  valueClipFraction,
} from '../../src/rl/losses.ts';

test.before(async () => {
  await tf.setBackend('cpu');
});

const near = (a: number, b: number, tol = 1e-5) => Math.abs(a - b) <= tol;

// Six tokens, clip 0.2 (ratio range [0.8, 1.2]); per-token loss = max(-A*ratio, -A*clip(ratio)):
//  1: ratio 1.1 (inside),  A= 2: max(-2.2, -2.2) = -2.2  unclipped
//  2: ratio 1.5 (above),   A= 1: max(-1.5, -1.2) = -1.2  CLIPPED (clipped branch larger)
//  3: ratio 1.5 (above),   A=-1: max( 1.5,  1.2) =  1.5  unclipped (pessimistic side)
//  4: ratio 0.5 (below),   A=-2: max( 1.0,  1.6) =  1.6  CLIPPED
//  5: ratio 0.5 (below),   A= 3: max(-1.5, -2.4) = -1.5  unclipped
//  6: ratio 0.9 (inside),  A=-1: max( 0.9,  0.9) =  0.9  unclipped (equal: not counted)
// mean = (-2.2 - 1.2 + 1.5 + 1.6 - 1.5 + 0.9) / 6 = -0.9 / 6 = -0.15; clipfrac = 2/6
const ratios = [1.1, 1.5, 1.5, 0.5, 0.5, 0.9];
const adv = [2, 1, -1, -2, 3, -1];
const old = ratios.map(() => -1.3);
const cur = ratios.map((r, i) => old[i]! + Math.log(r));

test('clipped policy loss and clip fraction at ratios inside and outside the clip, both advantage signs', (t) => {
  const inputs = { logprobs: tf.tensor1d(cur), oldLogprobs: tf.tensor1d(old), advantages: tf.tensor1d(adv), clipRange: 0.2 };
  const loss = clippedPolicyLoss(inputs).dataSync()[0]!;
  t.true(near(loss, -0.15), `loss ${loss}`);
  const frac = policyClipFraction(inputs).dataSync()[0]!;
  t.true(near(frac, 2 / 6), `clipfrac ${frac}`);
});

test('masked policy loss ignores padding; an all-padding batch gives 0, not NaN', (t) => {
  const inputs = {
    logprobs: tf.tensor2d([[...cur, 5]]),
    oldLogprobs: tf.tensor2d([[...old, -9]]),
    advantages: tf.tensor2d([[...adv, 1000]]),
    mask: tf.tensor2d([[1, 1, 1, 1, 1, 1, 0]]),
    clipRange: 0.2,
  };
  t.true(near(clippedPolicyLoss(inputs).dataSync()[0]!, -0.15));
  t.true(near(policyClipFraction(inputs).dataSync()[0]!, 2 / 6));
  t.is(clippedPolicyLoss({ ...inputs, mask: tf.zeros([1, 7]) }).dataSync()[0], 0);
});

test('policy loss gradient: by hand and against finite differences', (t) => {
  // d/dlogp_i of -A*ratio/6 is -A*ratio/6 on unclipped tokens; 0 where the clipped branch is active:
  //  1: -2*1.1/6 = -0.366667   2: 0   3: 1*1.5/6 = 0.25   4: 0   5: -3*0.5/6 = -0.25   6: 1*0.9/6 = 0.15
  const hand = [-2.2 / 6, 0, 1.5 / 6, 0, -1.5 / 6, 0.9 / 6];
  const f = (lp: tf.Tensor) =>
    clippedPolicyLoss({ logprobs: lp, oldLogprobs: tf.tensor1d(old), advantages: tf.tensor1d(adv), clipRange: 0.2 });
  const g = Array.from(tf.grad(f)(tf.tensor1d(cur)).dataSync());
  hand.forEach((h, i) => t.true(near(g[i]!, h), `grad ${i}: ${g[i]} want ${h}`));
  const h = 1e-3;
  cur.forEach((_, i) => {
    const up = cur.slice(); up[i]! += h;
    const dn = cur.slice(); dn[i]! -= h;
    const fd = (f(tf.tensor1d(up)).dataSync()[0]! - f(tf.tensor1d(dn)).dataSync()[0]!) / (2 * h);
    t.true(near(fd, g[i]!, 2e-3), `finite difference ${i}: ${fd} vs ${g[i]}`);
  });
});

// Value loss, clip 0.2; per-token max((v-R)^2, (clip(v, v_old-0.2, v_old+0.2)-R)^2):
//  1: v= 1.0 v_old=0.9 R=2.0: clip -> 1.0; (−1)^2 = 1, same            -> 1     unclipped
//  2: v= 1.5 v_old=1.0 R=2.0: clip -> 1.2; 0.25 vs 0.64               -> 0.64  CLIPPED
//  3: v= 1.5 v_old=1.0 R=1.0: clip -> 1.2; 0.25 vs 0.04               -> 0.25  unclipped
//  4: v=-0.5 v_old=0.0 R=0.5: clip -> -0.2; 1.0 vs 0.49               -> 1.0   unclipped
// loss = 0.5 * (1 + 0.64 + 0.25 + 1.0) / 4 = 0.5 * 0.7225 = 0.36125; clipfrac = 1/4
const vPred = [1.0, 1.5, 1.5, -0.5];
const vOld = [0.9, 1.0, 1.0, 0.0];
const ret = [2.0, 2.0, 1.0, 0.5];

test('clipped value loss and value clip fraction by hand', (t) => {
  const inputs = { values: tf.tensor1d(vPred), oldValues: tf.tensor1d(vOld), returns: tf.tensor1d(ret), clipRange: 0.2 };
  t.true(near(clippedValueLoss(inputs).dataSync()[0]!, 0.36125));
  t.true(near(valueClipFraction(inputs).dataSync()[0]!, 0.25));
});

test('value loss gradient: by hand and against finite differences (inside tf.variableGrads)', (t) => {
  // d/dv_i of 0.5 * mean((v-R)^2) = (v_i - R_i)/4 on unclipped tokens, 0 where the clipped prediction wins
  //  1: (1-2)/4 = -0.25   2: 0   3: (1.5-1)/4 = 0.125   4: (-0.5-0.5)/4 = -0.25
  const hand = [-0.25, 0, 0.125, -0.25];
  const v = tf.variable(tf.tensor1d(vPred));
  const f = () => clippedValueLoss({ values: v, oldValues: tf.tensor1d(vOld), returns: tf.tensor1d(ret), clipRange: 0.2 });
  const { value, grads } = tf.variableGrads(f, [v]);
  t.true(near(value.dataSync()[0]!, 0.36125));
  const g = Array.from(grads[v.name]!.dataSync());
  hand.forEach((e, i) => t.true(near(g[i]!, e), `grad ${i}: ${g[i]} want ${e}`));
  const h = 1e-3;
  vPred.forEach((_, i) => {
    const at = (d: number) => {
      const x = vPred.slice(); x[i]! += d;
      return clippedValueLoss({ values: tf.tensor1d(x), oldValues: tf.tensor1d(vOld), returns: tf.tensor1d(ret), clipRange: 0.2 }).dataSync()[0]!;
    };
    const fd = (at(h) - at(-h)) / (2 * h);
    t.true(near(fd, g[i]!, 2e-3), `finite difference ${i}: ${fd} vs ${g[i]}`);
  });
  v.dispose();
});

test('approximate KL: half squared difference and k3, masked', (t) => {
  // d = logp - logp_old = [0.2, -0.4, 7 (masked)]
  // half-squared: (0.5*0.04 + 0.5*0.16) / 2 = (0.02 + 0.08) / 2 = 0.05
  // k3: (e^0.2 - 1 - 0.2 + e^-0.4 - 1 + 0.4) / 2 = (0.0214028 + 0.0703200) / 2 = 0.0458614
  const lp = tf.tensor1d([0.2 - 1, -0.4 - 1, 6]);
  const lo = tf.tensor1d([-1, -1, -1]);
  const m = tf.tensor1d([1, 1, 0]);
  t.true(near(approxKl(lp, lo, m).dataSync()[0]!, 0.05));
  t.true(near(approxKl(lp, lo, m, 'k3').dataSync()[0]!, 0.0458614));
});

test('maskedMean and meanEntropy', (t) => {
  // (2 + 4) / 2 = 3
  t.is(maskedMean(tf.tensor1d([2, 4, 100]), tf.tensor1d([1, 1, 0])).dataSync()[0], 3);
  t.is(meanEntropy(tf.tensor1d([1, 2, 3])).dataSync()[0], 2);
});

test('a negative clip range is refused', (t) => {
  t.throws(
    () => clippedPolicyLoss({ logprobs: tf.zeros([1]), oldLogprobs: tf.zeros([1]), advantages: tf.zeros([1]), clipRange: -1 }),
    { instanceOf: RangeError, message: /clipRange/ },
  );
});

test('no tensors leak from the losses', (t) => {
  const inputs = { logprobs: tf.tensor1d(cur), oldLogprobs: tf.tensor1d(old), advantages: tf.tensor1d(adv), clipRange: 0.2 };
  const before = tf.memory().numTensors;
  const outs = [clippedPolicyLoss(inputs), policyClipFraction(inputs), approxKl(inputs.logprobs, inputs.oldLogprobs)];
  t.is(tf.memory().numTensors, before + outs.length);
  outs.forEach((o) => o.dispose());
});
