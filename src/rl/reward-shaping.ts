/**
 * Terminal reward shaping, after LLaVA-RLHF's `ppo_trainer.py` (`_shape_reward`,
 * `post_reward`) with the coefficients DESIGN.md gives:
 *
 *   total = reward_model + length + correctness + no_eos
 *   length      = -lengthCoef * response_tokens / max_response_tokens * length_bonus
 *   correctness = by caption_type (1 general: 0; 2-5 answer A-D; 6 "No"; 7 "Yes")
 *   no_eos      = noEosPenalty (default -8) when the response did not end with EOS
 *
 * Every term is kept so a rollout record can show why its reward is what it is.
 * The total is NOT scaled here: LLaVA-RLHF multiplies the whole per-token reward
 * (KL penalty included) by 10 just before GAE; see `scaleRewards` in reward-scaling.ts.
 *
 * Decisions (the reference differs where noted):
 * - Multiple choice (2-5 = A-D): +correctBonus when the trimmed answer starts with "X." or
 *   contains "correct option is X." (DESIGN.md literally, case-sensitive, as the reference).
 *   A bare "X" (the A-OKVQA direct-answer format) gets nothing unless `acceptBareLetter`.
 * - "No" questions (6): the answer's first word, lower-cased with punctuation stripped:
 *   "no" -> +yesNoBonus, "yes" -> -yesNoBonus, anything else 0. The reference uses
 *   `startswith("No")`/`startswith("Yes")` (case-sensitive, so "Nobody" counts as No and
 *   "no," does not); `yesNoMatch: 'reference'` reproduces that exactly.
 * - "Yes" questions (7): 0, as the reference ("for now, we do not give symbolic award");
 *   `rewardYesQuestions: true` makes it the mirror of 6.
 * - No EOS: added to the total (the reference script's `relative_stop_token_penalty=True`);
 *   `noEosMode: 'replace'` instead replaces the reward-model score by the penalty (the
 *   reference's other mode); the `no_eos` term is then `penalty - reward_model` so the
 *   terms still sum to the total.
 * - The reference script sets CORRECT_BONUS=2.0, a multiplier on both bonuses; here that is
 *   correctBonus=2, yesNoBonus=1. DESIGN.md's values (1 and 0.5) are the defaults.
 */
import { BadRecordError, InvalidOptionError } from '../errors.ts';

export interface ShapeRewardInput {
  /** Reward model score of the response. */
  rewardModel: number;
  /** Tokens in the response (EOS included if generated). */
  responseTokens: number;
  maxResponseTokens: number;
  /** Per-prompt multiplier of the length term (rl-prompt `length_bonus`, default 1). */
  lengthBonus?: number;
  /** rl-prompt `caption_type`: 1 general, 2-5 answer A-D, 6 "No", 7 "Yes". */
  captionType: number;
  /** Decoded response text (special tokens removed). */
  responseText: string;
  endedWithEos: boolean;
}

export interface ShapingCoefs {
  /** Length term is -lengthCoef * tokens / max * length_bonus (default 10). */
  lengthCoef: number;
  /** Multiple-choice bonus (default 1). */
  correctBonus: number;
  /** Yes/no bonus magnitude (default 0.5). */
  yesNoBonus: number;
  /** Also reward "Yes" on caption_type 7 (default false, as the reference). */
  rewardYesQuestions: boolean;
  /** Accept a bare letter answer ("B") on multiple choice (default false, as DESIGN.md). */
  acceptBareLetter: boolean;
  /** How yes/no answers are read (default 'first-word'). */
  yesNoMatch: 'first-word' | 'reference';
  /** Penalty when the response has no EOS (default -8). */
  noEosPenalty: number;
  /** 'add' (default) or 'replace' the reward-model score. */
  noEosMode: 'add' | 'replace';
}

export const DEFAULT_SHAPING_COEFS: Readonly<ShapingCoefs> = Object.freeze({
  lengthCoef: 10,
  correctBonus: 1,
  yesNoBonus: 0.5,
  rewardYesQuestions: false,
  acceptBareLetter: false,
  yesNoMatch: 'first-word',
  noEosPenalty: -8,
  noEosMode: 'add',
});

export interface ShapedReward {
  total: number;
  terms: { reward_model: number; length: number; correctness: number; no_eos: number };
}

export const CAPTION_TYPES = { GENERAL: 1, A: 2, B: 3, C: 4, D: 5, NO: 6, YES: 7 } as const;

/**
 * Fills defaults and checks every coefficient; throws InvalidOptionError naming
 * `<prefix>.<name>`. Call it in a factory so bad options fail before any stream.
 */
export function resolveShapingCoefs(coefs: Partial<ShapingCoefs> = {}, prefix = 'shaping'): ShapingCoefs {
  const out: ShapingCoefs = { ...DEFAULT_SHAPING_COEFS, ...definedOnly(coefs) };
  for (const k of ['lengthCoef', 'correctBonus', 'yesNoBonus', 'noEosPenalty'] as const) {
    if (typeof out[k] !== 'number' || !Number.isFinite(out[k])) {
      throw new InvalidOptionError(`${prefix}.${k}`, `must be a finite number, got ${String(out[k])}`);
    }
  }
  for (const k of ['rewardYesQuestions', 'acceptBareLetter'] as const) {
    if (typeof out[k] !== 'boolean') throw new InvalidOptionError(`${prefix}.${k}`, `must be true or false, got ${String(out[k])}`);
  }
  if (out.yesNoMatch !== 'first-word' && out.yesNoMatch !== 'reference') {
    throw new InvalidOptionError(`${prefix}.yesNoMatch`, `must be "first-word" or "reference", got ${JSON.stringify(out.yesNoMatch)}`);
  }
  if (out.noEosMode !== 'add' && out.noEosMode !== 'replace') {
    throw new InvalidOptionError(`${prefix}.noEosMode`, `must be "add" or "replace", got ${JSON.stringify(out.noEosMode)}`);
  }
  return out;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** "yes" | "no" | null: how an answer reads for the yes/no bonus. */
export function readYesNo(text: string, match: ShapingCoefs['yesNoMatch'] = 'first-word'): 'yes' | 'no' | null {
  if (match === 'reference') {
    const s = text.trim();
    if (s.startsWith('No')) return 'no';
    if (s.startsWith('Yes')) return 'yes';
    return null;
  }
  const first = text.trim().split(/\s+/, 1)[0] ?? '';
  const word = first.toLowerCase().replace(/[^\p{L}\p{N}]/gu, '');
  return word === 'yes' ? 'yes' : word === 'no' ? 'no' : null;
}

/** Correctness bonus for one response (unscaled by anything else). */
export function correctnessBonus(captionType: number, responseText: string, coefs: ShapingCoefs = DEFAULT_SHAPING_COEFS): number {
  if (captionType === CAPTION_TYPES.GENERAL) return 0;
  if (captionType >= CAPTION_TYPES.A && captionType <= CAPTION_TYPES.D) {
    const letter = 'ABCD'[captionType - CAPTION_TYPES.A]!;
    const trimmed = responseText.trim();
    const hit =
      trimmed.startsWith(`${letter}.`) ||
      responseText.includes(`correct option is ${letter}.`) ||
      (coefs.acceptBareLetter && trimmed === letter);
    return hit ? coefs.correctBonus : 0;
  }
  if (captionType === CAPTION_TYPES.NO || captionType === CAPTION_TYPES.YES) {
    if (captionType === CAPTION_TYPES.YES && !coefs.rewardYesQuestions) return 0;
    const said = readYesNo(responseText, coefs.yesNoMatch);
    if (said === null) return 0;
    const expected = captionType === CAPTION_TYPES.NO ? 'no' : 'yes';
    return said === expected ? coefs.yesNoBonus : -coefs.yesNoBonus;
  }
  throw new BadRecordError(`caption_type ${captionType} is not one of 1-7`, {
    fix: 'caption_type is 1 (general), 2-5 (answer A-D), 6 ("No") or 7 ("Yes")',
  });
}

function finite(name: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new BadRecordError(`${name} must be a finite number, got ${String(v)}`);
  }
  return v;
}

/** Terminal reward of one response with every term. `coefs` may be partial (defaults fill in). */
export function shapeReward(input: ShapeRewardInput, coefs: Partial<ShapingCoefs> | ShapingCoefs = DEFAULT_SHAPING_COEFS): ShapedReward {
  const c = coefs === DEFAULT_SHAPING_COEFS ? DEFAULT_SHAPING_COEFS : resolveShapingCoefs(coefs);
  const rm = finite('reward_model', input.rewardModel);
  const tokens = finite('response_tokens', input.responseTokens);
  const maxTokens = finite('max_response_tokens', input.maxResponseTokens);
  const lengthBonus = finite('length_bonus', input.lengthBonus ?? 1);
  if (tokens < 0) throw new BadRecordError(`response_tokens must be >= 0, got ${tokens}`);
  if (maxTokens <= 0) throw new BadRecordError(`max_response_tokens must be > 0, got ${maxTokens}`);
  if (!Number.isInteger(input.captionType)) {
    throw new BadRecordError(`caption_type must be an integer 1-7, got ${String(input.captionType)}`);
  }

  const length = (-c.lengthCoef * tokens * lengthBonus) / maxTokens;
  const correctness = correctnessBonus(input.captionType, input.responseText ?? '', c);
  let noEos = 0;
  if (!input.endedWithEos) noEos = c.noEosMode === 'add' ? c.noEosPenalty : c.noEosPenalty - rm;
  const terms = { reward_model: rm, length, correctness, no_eos: noEos };
  return { total: rm + length + correctness + noEos, terms };
}

/**
 * Per-token rewards of one response: every token gets -klCoef * kl_t, and the last
 * token also gets the terminal (shaped) reward.
 */
export function tokenRewards(terminal: number, klPerToken: ArrayLike<number>, klCoef: number): number[] {
  if (klPerToken.length === 0) {
    throw new BadRecordError('an empty response has no token to carry the terminal reward', {
      fix: 'reject rollouts with zero response tokens before shaping',
    });
  }
  const out = new Array<number>(klPerToken.length);
  for (let t = 0; t < klPerToken.length; t++) out[t] = 0 - klCoef * klPerToken[t]!; // `0 -` keeps +0 (not -0) for zero KL
  out[out.length - 1]! += terminal;
  return out;
}
