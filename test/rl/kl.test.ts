import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { checkKlEstimator, klPerToken, klPerTokenTensor, klToken } from '../../src/rl/kl.ts';

test.before(async () => {
  await tf.setBackend('cpu');
});

const near = (a: number, b: number, tol = 1e-6) => Math.abs(a - b) <= tol;

// Known distributions over two tokens: policy q = [0.75, 0.25], reference p = [0.5, 0.5].
// KL(q||p) = 0.75 ln(0.75/0.5) + 0.25 ln(0.25/0.5) = 0.75*0.4054651 - 0.25*0.6931472 = 0.1308120
const q = [0.75, 0.25];
const p = [0.5, 0.5];
const KL = 0.75 * Math.log(1.5) + 0.25 * Math.log(0.5);
const expectUnderQ = (est: 'k1' | 'k1-clamped' | 'k3') =>
  q.reduce((s, qi, i) => s + qi * klToken(Math.log(qi), Math.log(p[i]!), est), 0);

test('exact KL of the known pair', (t) => {
  t.true(near(KL, 0.130812));
});

test('k1 per token and its expectation under the policy equals KL', (t) => {
  // token 0: ln 0.75 - ln 0.5 = ln 1.5 = 0.4054651; token 1: ln 0.25 - ln 0.5 = -0.6931472
  t.true(near(klToken(Math.log(0.75), Math.log(0.5), 'k1'), 0.4054651));
  t.true(near(klToken(Math.log(0.25), Math.log(0.5), 'k1'), -0.6931472));
  t.true(near(expectUnderQ('k1'), KL));
});

test('k3 per token is (r-1) - ln r, never negative, and unbiased', (t) => {
  // token 0: r = 0.5/0.75 = 2/3: -1/3 + ln 1.5 = 0.0721318;  token 1: r = 2: 1 - ln 2 = 0.3068528
  // E_q = 0.75*0.0721318 + 0.25*0.3068528 = 0.0540988 + 0.0767132 = 0.1308120 = KL
  t.true(near(klToken(Math.log(0.75), Math.log(0.5), 'k3'), 0.0721318));
  t.true(near(klToken(Math.log(0.25), Math.log(0.5), 'k3'), 0.3068528));
  t.true(near(expectUnderQ('k3'), KL));
});

test('k1 clamped at 0 (LLaVA-RLHF) drops the negative token and is biased upward', (t) => {
  // E_q = 0.75*0.4054651 + 0.25*0 = 0.3040988 > KL
  t.is(klToken(Math.log(0.25), Math.log(0.5), 'k1-clamped'), 0);
  t.true(near(expectUnderQ('k1-clamped'), 0.3040988));
  t.is(klToken(-1, -1), 0, 'the default estimator is k1-clamped');
});

test('tensor estimators match the number ones', (t) => {
  const lp = [Math.log(0.75), Math.log(0.25), -2];
  const lr = [Math.log(0.5), Math.log(0.5), -0.5];
  for (const est of ['k1', 'k1-clamped', 'k3'] as const) {
    const want = klPerToken(lp, lr, est);
    const got = Array.from(klPerTokenTensor(tf.tensor1d(lp), tf.tensor1d(lr), est).dataSync());
    want.forEach((w, i) => t.true(near(got[i]!, w, 1e-5), `${est}[${i}] ${got[i]} vs ${w}`));
  }
});

test('unknown estimator and length mismatch are refused', (t) => {
  const e = t.throws(() => checkKlEstimator('k2', 'params.kl_estimator'));
  t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e!.message, /params\.kl_estimator.*k1, k1-clamped, k3/);
  t.throws(() => klPerToken([0, 0], [0]), { instanceOf: RangeError });
});
