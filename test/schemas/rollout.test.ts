import test from 'ava';
import { rolloutSchema, type Rollout } from '../../schemas/rollout.ts';

const goodRollout: Rollout = {
  id: 'aokvqa-9',
  image: 'coco/train2017/000000000009.jpg',
  conversations: [{ from: 'human', value: '<image>\nWhich shape is red?' }],
  caption_type: 2,
  length_bonus: 1,
  facts: ['A red circle.'],
  response: 'A. So the correct option is A.',
  response_tokens: 3,
  ended_with_eos: true,
  logprobs: [-0.5, -1.25, -0.125],
  ref_logprobs: [-0.75, -1, -0.25],
  values: [0.5, 0.25, 1],
  reward_model: 0.75,
  reward_total: 1.5,
  reward_length: -0.25,
  reward_correctness: 1,
  reward_no_eos: 0,
  kl_mean: 0.0625,
  policy_version: 4,
};

test('valid rollouts pass, with or without per-token lists', (t) => {
  t.is(rolloutSchema.validate(goodRollout), null);
  t.is(rolloutSchema.validate({ ...goodRollout, logprobs: [], ref_logprobs: [], values: [] }), null);
  t.is(rolloutSchema.validate({ ...goodRollout, response: '', response_tokens: 0, logprobs: [], ref_logprobs: [], values: [], ended_with_eos: false, reward_no_eos: -8 }), null);
});

const bad: [string, unknown, string][] = [
  ['NaN reward', { ...goodRollout, reward_model: NaN }, 'field "reward_model" must be a finite float32, got NaN.'],
  ['Infinity total', { ...goodRollout, reward_total: -Infinity }, 'field "reward_total" must be a finite float32, got -Infinity.'],
  ['NaN in logprobs', { ...goodRollout, logprobs: [-0.5, NaN, -1] }, 'field "logprobs[1]" must be a finite float32, got NaN.'],
  ['Infinity in values', { ...goodRollout, values: [0, 0, Infinity] }, 'field "values[2]" must be a finite float32, got Infinity.'],
  ['NaN kl', { ...goodRollout, kl_mean: NaN }, 'field "kl_mean" must be a finite float32, got NaN.'],
  ['length mismatch', { ...goodRollout, ref_logprobs: [-1] }, 'field "ref_logprobs" has 1 entries but response_tokens is 3 (keep one per response token, or none).'],
  ['negative tokens', { ...goodRollout, response_tokens: -1 }, 'field "response_tokens" must be >= 0, got -1.'],
  ['float tokens', { ...goodRollout, response_tokens: 2.5 }, 'field "response_tokens" must be an int32 integer in [-2147483648, 2147483647], got number 2.5.'],
  ['eos as number', { ...goodRollout, ended_with_eos: 1 }, 'field "ended_with_eos" must be a boolean, got number 1.'],
  ['negative version', { ...goodRollout, policy_version: -2 }, 'field "policy_version" must be >= 0, got -2.'],
  ['bad prompt', { ...goodRollout, caption_type: 9 }, 'field "caption_type" must be in 1..7, got 9.'],
  ['<image> in response', { ...goodRollout, response: '<image> A' }, 'field "response" holds "<image>", which belongs only at the start of the first human turn.'],
  ['missing shaping term', { ...goodRollout, reward_no_eos: undefined }, 'field "reward_no_eos" is missing but is required.'],
];
for (const [name, record, reason] of bad) {
  test(`rejects: ${name}`, (t) => {
    t.is(rolloutSchema.validate(record), reason);
  });
}

test('typed arrays are accepted for per-token lists', (t) => {
  t.is(rolloutSchema.validate({ ...goodRollout, logprobs: Float32Array.from([-0.5, -1.25, -0.125]) }), null);
});
