import test from 'ava';
import { validateRollout } from '../../src/rl/validate-rollout.ts';

const good = {
  response_tokens: 3,
  logprobs: [-0.1, -2, -0.5],
  ref_logprobs: [-0.2, -1.9, -0.4],
  values: [0.1, 0.2, 0.3],
  reward_model: 1.2,
  reward_total: -0.8,
};

test('a sound rollout passes', (t) => {
  t.is(validateRollout(good), null);
  t.is(validateRollout({ logprobs: new Float32Array([-1, 0]) }), null, 'typed arrays and missing optional fields are fine');
});

test('each defect gives a clear reason', (t) => {
  const cases: [object, string][] = [
    [{ logprobs: [-0.1, Number.NaN, -0.5] }, 'logprobs[1] is NaN'],
    [{ ref_logprobs: [-0.2, -1.9, Number.NEGATIVE_INFINITY] }, 'ref_logprobs[2] is -Infinity'],
    [{ values: [0.1, Number.POSITIVE_INFINITY, 0.3] }, 'values[1] is Infinity'],
    [{ values: [0.1, 0.2] }, 'values has 2 entries but logprobs has 3'],
    [{ logprobs: [], response_tokens: 0 }, 'empty response: logprobs has no entries'],
    [{ logprobs: undefined }, 'logprobs is missing'],
    [{ response_tokens: 4 }, 'response_tokens is 4 but logprobs has 3 entries'],
    [{ logprobs: [-0.1, 0.5, -0.5] }, 'logprobs[1] is 0.5, but a log-probability cannot be positive'],
    [{ reward_model: Number.NaN }, 'reward_model is NaN'],
    [{ reward_total: Number.POSITIVE_INFINITY }, 'reward_total is Infinity'],
    [{ token_rewards: [0, Number.NaN, 1] }, 'token_rewards[1] is NaN'],
  ];
  for (const [patch, reason] of cases) t.is(validateRollout({ ...good, ...patch } as never), reason);
  t.is(validateRollout(null as never), 'rollout is not an object');
});
