/**
 * One PPO rollout: the prompt, the sampled response with its per-token log-probs
 * (policy and reference) and values, and every term of the terminal reward, so a
 * run can be inspected after the fact.
 */
import type { RecordSchema } from './field.ts';
import { RL_PROMPT_FIELDS, checkRlPrompt, type RlPrompt } from './rl-prompt.ts';
import { checkNoImageToken, defineRecordSchema, firstReason } from './validate-util.ts';

export interface Rollout extends RlPrompt {
  response: string;
  response_tokens: number;
  ended_with_eos: boolean;
  /** Per response token; either empty (not kept) or response_tokens long. */
  logprobs: number[];
  ref_logprobs: number[];
  values: number[];
  /** Reward model score. */
  reward_model: number;
  /** Terminal reward after shaping: model + length + correctness + no-EOS terms. */
  reward_total: number;
  reward_length: number;
  reward_correctness: number;
  reward_no_eos: number;
  /** Mean per-token KL(policy || reference) over the response. */
  kl_mean: number;
  /** Policy update count that produced the response. */
  policy_version: number;
}

const F32_LIST = { list: 'float32' } as const;

export const rolloutSchema: RecordSchema<Rollout> = defineRecordSchema<Rollout>({
  name: 'rollout',
  version: 1,
  fields: [
    ...RL_PROMPT_FIELDS,
    { name: 'response', type: 'string' },
    { name: 'response_tokens', type: 'int32' },
    { name: 'ended_with_eos', type: 'bool' },
    { name: 'logprobs', type: F32_LIST },
    { name: 'ref_logprobs', type: F32_LIST },
    { name: 'values', type: F32_LIST },
    { name: 'reward_model', type: 'float32' },
    { name: 'reward_total', type: 'float32' },
    { name: 'reward_length', type: 'float32' },
    { name: 'reward_correctness', type: 'float32' },
    { name: 'reward_no_eos', type: 'float32' },
    { name: 'kl_mean', type: 'float32' },
    { name: 'policy_version', type: 'int32' },
  ],
  rules: (r) =>
    firstReason(
      () => checkRlPrompt(r),
      () => checkNoImageToken(r.response, 'response'),
      () => (r.response_tokens >= 0 ? null : `field "response_tokens" must be >= 0, got ${r.response_tokens}.`),
      () => checkPerToken(r.logprobs, 'logprobs', r.response_tokens),
      () => checkPerToken(r.ref_logprobs, 'ref_logprobs', r.response_tokens),
      () => checkPerToken(r.values, 'values', r.response_tokens),
      () => (r.policy_version >= 0 ? null : `field "policy_version" must be >= 0, got ${r.policy_version}.`),
    ),
});

function checkPerToken(list: readonly number[], field: string, tokens: number): string | null {
  return list.length === 0 || list.length === tokens
    ? null
    : `field "${field}" has ${list.length} entries but response_tokens is ${tokens} (keep one per response token, or none).`;
}
