/**
 * KL coefficient controllers. Fixed: LLaVA-RLHF's choice (0.1). Adaptive: Ziegler et
 * al. 2019 ("Fine-Tuning Language Models from Human Preferences"), which nudges the
 * coefficient so the measured KL tracks a target:
 *   err   = clip(kl / target - 1, -0.2, 0.2)
 *   coef *= 1 + err * n_steps / horizon
 */
import { InvalidOptionError } from '../errors.ts';

export interface KLControllerState {
  kind: 'fixed' | 'adaptive';
  value: number;
}

export interface KLController {
  readonly kind: 'fixed' | 'adaptive';
  /** The coefficient to use for the next rollout batch. */
  readonly value: number;
  /** Feeds the KL measured on the last batch (`nSteps` = samples it covered); returns the new value. */
  update(currentKl: number, nSteps: number): number;
  /** For checkpoints: what `restore` needs to continue identically. */
  state(): KLControllerState;
  restore(state: KLControllerState): void;
}

function positive(option: string, v: unknown, allowZero = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new InvalidOptionError(option, `must be a ${allowZero ? 'non-negative' : 'positive'} finite number, got ${String(v)}`);
  }
  return v;
}

function restoreCheck(kind: string, state: KLControllerState): number {
  if (state?.kind !== kind) {
    throw new InvalidOptionError('kl_controller.state', `state is for a ${String(state?.kind)} controller, not ${kind}`);
  }
  return positive('kl_controller.state.value', state.value, true);
}

/** A constant coefficient; `update` measures nothing. */
export function fixedKLController(coef: number): KLController {
  const value = positive('kl_coef', coef, true);
  return {
    kind: 'fixed',
    value,
    update() {
      return value;
    },
    state() {
      return { kind: 'fixed', value };
    },
    restore(state) {
      restoreCheck('fixed', state);
    },
  };
}

export interface AdaptiveKLOptions {
  /** Starting coefficient. */
  init: number;
  /** KL (per sample, summed over tokens, as the caller measures it) to aim for. */
  target: number;
  /** Samples over which a full proportional correction is applied (Ziegler: 10000). */
  horizon: number;
}

export function adaptiveKLController(options: AdaptiveKLOptions): KLController {
  let value = positive('kl_controller.init', options?.init, true);
  const target = positive('kl_controller.target', options.target);
  const horizon = positive('kl_controller.horizon', options.horizon);
  return {
    kind: 'adaptive',
    get value() {
      return value;
    },
    update(currentKl, nSteps) {
      if (!Number.isFinite(currentKl)) return value; // a NaN batch must not poison the coefficient
      const err = Math.min(Math.max(currentKl / target - 1, -0.2), 0.2);
      value *= 1 + (err * nSteps) / horizon;
      return value;
    },
    state() {
      return { kind: 'adaptive', value };
    },
    restore(state) {
      value = restoreCheck('adaptive', state);
    },
  };
}
