/**
 * Checks a rollout's numbers before it may touch the policy. Returns a reason string
 * (for `ctx.reject` and the dead-letter file) or null when the rollout is usable.
 * Field names are the rollout record's (DESIGN.md "Records").
 */

export interface RolloutNumbers {
  response_tokens?: number;
  logprobs: ArrayLike<number> | null | undefined;
  ref_logprobs?: ArrayLike<number> | null;
  values?: ArrayLike<number> | null;
  /** Per-token shaped rewards, when already computed. */
  token_rewards?: ArrayLike<number> | null;
  reward_model?: number | null;
  reward_total?: number | null;
}

/** Log-probs a little above 0 come from float rounding; anything more is a bug. */
const LOGPROB_SLACK = 1e-4;

function firstBad(name: string, xs: ArrayLike<number>, checkLogprob: boolean): string | null {
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i];
    if (typeof v !== 'number' || Number.isNaN(v)) return `${name}[${i}] is NaN`;
    if (!Number.isFinite(v)) return `${name}[${i}] is ${v > 0 ? 'Infinity' : '-Infinity'}`;
    if (checkLogprob && v > LOGPROB_SLACK) return `${name}[${i}] is ${v}, but a log-probability cannot be positive`;
  }
  return null;
}

export function validateRollout(r: RolloutNumbers): string | null {
  if (r === null || typeof r !== 'object') return 'rollout is not an object';
  const { logprobs } = r;
  if (logprobs === null || logprobs === undefined || typeof logprobs.length !== 'number') return 'logprobs is missing';
  const n = logprobs.length;
  if (n === 0) return 'empty response: logprobs has no entries';
  if (r.response_tokens !== undefined && r.response_tokens !== n) {
    return `response_tokens is ${r.response_tokens} but logprobs has ${n} entries`;
  }
  const arrays: [string, ArrayLike<number> | null | undefined, boolean][] = [
    ['logprobs', logprobs, true],
    ['ref_logprobs', r.ref_logprobs, true],
    ['values', r.values, false],
    ['token_rewards', r.token_rewards, false],
  ];
  for (const [name, xs, isLogprob] of arrays) {
    if (xs === undefined || xs === null) continue;
    if (xs.length !== n) return `${name} has ${xs.length} entries but logprobs has ${n}`;
    const bad = firstBad(name, xs, isLogprob);
    if (bad) return bad;
  }
  for (const name of ['reward_model', 'reward_total'] as const) {
    const v = r[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || Number.isNaN(v)) return `${name} is NaN`;
    if (!Number.isFinite(v)) return `${name} is ${v > 0 ? 'Infinity' : '-Infinity'}`;
  }
  return null;
}
