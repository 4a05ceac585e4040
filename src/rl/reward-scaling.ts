/**
 * The last step before GAE. LLaVA-RLHF's `_estimate_advantage` either whitens the
 * per-token rewards over the whole rollout batch without re-centring
 * (`whiten(rewards, shift_mean=False)`), or, with `whiten_rewards=False` (its
 * published setting), multiplies them by 10. Either applies to the whole per-token
 * reward, KL penalty included, not only to the terminal score.
 */
import { InvalidOptionError } from '../errors.ts';
import { whitenBatch } from './whiten.ts';

export type RewardScaling = { mode: 'scale'; factor: number } | { mode: 'whiten'; eps?: number };

export const DEFAULT_REWARD_SCALING: Readonly<RewardScaling> = Object.freeze({ mode: 'scale', factor: 10 });

export function checkRewardScaling(s: RewardScaling, option = 'reward_scaling'): RewardScaling {
  if (s?.mode === 'scale') {
    if (typeof s.factor !== 'number' || !Number.isFinite(s.factor)) {
      throw new InvalidOptionError(`${option}.factor`, `must be a finite number, got ${String(s.factor)}`);
    }
    return s;
  }
  if (s?.mode === 'whiten') return s;
  throw new InvalidOptionError(`${option}.mode`, `must be "scale" or "whiten", got ${JSON.stringify((s as { mode?: unknown })?.mode)}`);
}

/** Scales or whitens a batch of per-token reward rows (ragged; every entry is valid). */
export function scaleRewards(rows: readonly (ArrayLike<number>)[], scaling: RewardScaling = DEFAULT_REWARD_SCALING): number[][] {
  const s = checkRewardScaling(scaling);
  if (s.mode === 'scale') return rows.map((r) => Array.from(r, (x) => x * s.factor));
  return whitenBatch(rows, undefined, { shiftMean: false, eps: s.eps });
}
