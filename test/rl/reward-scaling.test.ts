import test from 'ava';
import { scaleRewards } from '../../src/rl/reward-scaling.ts';

const near = (a: number, b: number, tol = 1e-7) => Math.abs(a - b) <= tol;

test('default scales every per-token reward by 10 (LLaVA-RLHF whiten_rewards=False)', (t) => {
  t.deepEqual(scaleRewards([[1, 2], [-0.3]]), [[10, 20], [-3]]);
});

test('whiten mode: batch statistics, mean kept', (t) => {
  // 1,2,3: mean 2, std sqrt(2/3); (x - 2)/std + 2 = [0.7752551, 2, 3.2247449]
  const w = scaleRewards([[1, 2], [3]], { mode: 'whiten' });
  t.true(near(w[0]![0]!, 0.7752551) && near(w[0]![1]!, 2) && near(w[1]![0]!, 3.2247449));
});

test('bad scaling options name their path', (t) => {
  const e = t.throws(() => scaleRewards([[1]], { mode: 'scale', factor: Number.NaN }));
  t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e!.message, /reward_scaling\.factor/);
  t.throws(() => scaleRewards([[1]], { mode: 'clip' } as never), { message: /reward_scaling\.mode/ });
});
