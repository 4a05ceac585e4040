/**
 * Generalised advantage estimation (Schulman et al. 2016, arXiv:1506.02438):
 *   delta_t = r_t + gamma * V_{t+1} - V_t          (V after the last token = bootstrap, default 0)
 *   A_t     = delta_t + gamma * lambda * A_{t+1}
 *   R_t     = A_t + V_t                             (value targets)
 * Positions with mask 0 are not part of the trajectory: they get A = R = 0 and are
 * skipped when looking for "the next step" (so padding anywhere is harmless).
 * LLaVA-RLHF uses gamma = 1, lambda = 1.
 */
import { InvalidOptionError } from '../errors.ts';

export interface GaeOptions {
  gamma: number;
  lambda: number;
  /** Value of the state after the last valid token (0: the episode ended). */
  bootstrapValue?: number;
}

export interface GaeResult {
  advantages: number[];
  returns: number[];
}

export function checkGaeOptions(o: GaeOptions, prefix = 'gae'): GaeOptions {
  for (const k of ['gamma', 'lambda'] as const) {
    const v = o?.[k];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
      throw new InvalidOptionError(`${prefix}.${k}`, `must be a number in [0, 1], got ${String(v)}`);
    }
  }
  return o;
}

/** GAE over one sequence. */
export function gae(
  rewards: ArrayLike<number>,
  values: ArrayLike<number>,
  options: GaeOptions,
  mask?: ArrayLike<number>,
): GaeResult {
  const { gamma, lambda } = checkGaeOptions(options);
  const n = rewards.length;
  if (values.length !== n) throw new RangeError(`gae: ${n} rewards but ${values.length} values`);
  if (mask && mask.length !== n) throw new RangeError(`gae: ${n} rewards but ${mask.length} mask entries`);
  const advantages = new Array<number>(n).fill(0);
  const returns = new Array<number>(n).fill(0);
  let nextValue = options.bootstrapValue ?? 0;
  let nextAdv = 0;
  for (let t = n - 1; t >= 0; t--) {
    if (mask && !mask[t]) continue;
    const delta = rewards[t]! + gamma * nextValue - values[t]!;
    const a = delta + gamma * lambda * nextAdv;
    advantages[t] = a;
    returns[t] = a + values[t]!;
    nextValue = values[t]!;
    nextAdv = a;
  }
  return { advantages, returns };
}

/** GAE for each row of a batch (rows may differ in length). */
export function gaeBatch(
  rewards: readonly ArrayLike<number>[],
  values: readonly ArrayLike<number>[],
  options: GaeOptions,
  masks?: readonly ArrayLike<number>[],
): { advantages: number[][]; returns: number[][] } {
  if (values.length !== rewards.length) throw new RangeError(`gaeBatch: ${rewards.length} reward rows but ${values.length} value rows`);
  const advantages: number[][] = [];
  const returns: number[][] = [];
  rewards.forEach((r, i) => {
    const res = gae(r, values[i]!, options, masks?.[i]);
    advantages.push(res.advantages);
    returns.push(res.returns);
  });
  return { advantages, returns };
}
