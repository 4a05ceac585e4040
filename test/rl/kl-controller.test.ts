import test from 'ava';
import { adaptiveKLController, fixedKLController } from '../../src/rl/kl-controller.ts';

const near = (a: number, b: number, tol = 1e-12) => Math.abs(a - b) <= tol;

test('fixed controller never moves', (t) => {
  const c = fixedKLController(0.1);
  t.is(c.value, 0.1);
  t.is(c.update(100, 512), 0.1);
  t.deepEqual(c.state(), { kind: 'fixed', value: 0.1 });
});

test('adaptive controller update (Ziegler et al. 2019) by hand', (t) => {
  const c = adaptiveKLController({ init: 0.1, target: 6, horizon: 10000 });
  // kl 9: err = 9/6 - 1 = 0.5 -> clipped to 0.2; coef *= 1 + 0.2*256/10000 = 1.00512 -> 0.100512
  t.true(near(c.update(9, 256), 0.100512));
  // kl 3: err = 3/6 - 1 = -0.5 -> -0.2; coef *= 1 - 0.2*512/10000 = 0.98976 -> 0.09948275712
  t.true(near(c.update(3, 512), 0.09948275712));
  // kl 6.6: err = 0.1 (inside the clip); coef *= 1 + 0.1*1000/10000 = 1.01 -> 0.1004775846912
  t.true(near(c.update(6.6, 1000), 0.1004775846912));
  // kl on target: no change
  t.true(near(c.update(6, 1000), 0.1004775846912));
  // a NaN measurement leaves the coefficient alone
  t.true(near(c.update(Number.NaN, 1000), 0.1004775846912));
});

test('adaptive state round-trips through restore', (t) => {
  const a = adaptiveKLController({ init: 0.1, target: 6, horizon: 10000 });
  a.update(9, 256);
  const b = adaptiveKLController({ init: 0.1, target: 6, horizon: 10000 });
  b.restore(a.state());
  t.is(b.value, a.value);
  t.is(b.update(3, 512), a.update(3, 512));
  const e = t.throws(() => b.restore({ kind: 'fixed', value: 1 }));
  t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
});

test('bad options name their path', (t) => {
  for (const [f, path] of [
    [() => fixedKLController(-1), 'kl_coef'],
    [() => adaptiveKLController({ init: 0.1, target: 0, horizon: 1 }), 'kl_controller.target'],
    [() => adaptiveKLController({ init: 0.1, target: 1, horizon: Number.NaN }), 'kl_controller.horizon'],
  ] as const) {
    const e = t.throws(f);
    t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
    t.true(e!.message.includes(`"${path}"`), e!.message);
  }
});
