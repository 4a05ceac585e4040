/**
 * PPO trainer as a sink over batches of scored rollouts (one batch = one PPO step), with
 * LLaVA-RLHF's settings as defaults (DESIGN.md "Models"):
 *
 *   per-token KL    k1 clamped: max(logp - logp_ref, 0), reference = the frozen SFT policy
 *   token rewards   -kl_coef * KL on every token, + the shaped terminal reward on the last
 *   scaling         x10 (or whitening) over the per-token rewards, then GAE (gamma 1, lambda 1)
 *   advantages      whitened over the batch
 *   updates         2 PPO epochs over shuffled minibatches: clipped policy loss (0.2) on the
 *                   policy, clipped value loss (0.2) x 0.1 on the value model (trunk of the
 *                   reward model, zero head); AdamW each, lr with linear warmup, grad-norm clip;
 *                   the vision encoder and projector stay frozen (LLaVA-RLHF freezes CLIP)
 *   KL coefficient  fixed 0.1, or adaptive (Ziegler et al.)
 *
 * The policy is the LivePolicy the rollout stage samples from (so every rollout uses the latest
 * weights, in lockstep). A rollout with NaN/infinite log-probs or reward is rejected through
 * `ctx.reject` with the reason and never reaches an update; an empty batch is an error.
 *
 * Output folder `out`: `metrics.jsonl` (one line per step), `checkpoint/` (the policy, loadable by
 * loadModel like an SFT checkpoint, with its optimizer; `checkpoint/value/` the value model and
 * its optimizer; trainer_state.json: step, KL controller), saved every `checkpointEvery` steps and
 * at the end, atomically (both models swap in together). A rerun resumes from the checkpoint: the
 * policy announces the step so the rollout stage skips what was done, metrics.jsonl is cut back
 * to that step, and since rollout sampling and minibatch order derive from (seed, step), the
 * metrics that follow are those of an uninterrupted run (all but the timing fields).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, appendFile } from 'node:fs/promises';
import { cutMetrics } from './metrics-log.ts';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import { AbortedError, BadInputError, CheckpointError, InvalidOptionError } from '../src/errors.ts';
import { createAdamW, type AdamW } from '../src/model/adamw.ts';
import { assignWeights, CONFIG_FILE, loadCheckpoint, restoreOptimizer, saveCheckpoint, WEIGHTS_FILE } from '../src/model/checkpoint.ts';
import { configDifferences, type ModelConfig } from '../src/model/config.ts';
import type { EncodedPrompt, LivePolicy, PromptFields, StepTiming } from '../src/model/live-policy.ts';
import type { MultimodalModel } from '../src/model/multimodal-model.ts';
import type { Parameter } from '../src/model/parameters.ts';
import { applyGradients, computeGradients } from '../src/model/train-step.ts';
import { gaeBatch } from '../src/rl/gae.ts';
import { checkKlEstimator, klPerToken, type KlEstimator } from '../src/rl/kl.ts';
import { adaptiveKLController, fixedKLController, type KLController, type KLControllerState } from '../src/rl/kl-controller.ts';
import { approxKl, clippedPolicyLoss, clippedValueLoss, meanEntropy, policyClipFraction, valueClipFraction } from '../src/rl/losses.ts';
import { tokenRewards } from '../src/rl/reward-shaping.ts';
import { checkRewardScaling, DEFAULT_REWARD_SCALING, scaleRewards, type RewardScaling } from '../src/rl/reward-scaling.ts';
import { responseBatch, responseLogprobs, responseLogprobsTensor, responseValues, responseValuesTensor, type ResponseExample } from '../src/rl/response-batch.ts';
import { validateRollout } from '../src/rl/validate-rollout.ts';
import { whitenBatch } from '../src/rl/whiten.ts';
import { deriveSeed, Rng } from '../src/stream/random.ts';
import type { Sink, SinkContext } from '../src/stream/stage.ts';

/** What the trainer reads from a rollout record (the rollout schema's fields plus the ids). */
export interface ScoredRollout extends PromptFields {
  id: string;
  response_tokens: number;
  ended_with_eos: boolean;
  logprobs: number[];
  /** Empty: the trainer computes them with `reference`. */
  ref_logprobs?: number[];
  reward_model: number;
  reward_total: number;
  reward_length?: number;
  reward_correctness?: number;
  reward_no_eos?: number;
  policy_version: number;
  /** Sampled token ids (the rollout stage's). */
  response_ids: number[];
}

export interface PpoTrainerOptions {
  /** The policy being trained, shared with the rollout stage. */
  policy: LivePolicy;
  /** Frozen reference policy (the SFT checkpoint). */
  reference: MultimodalModel;
  /** Value model: a trunk with a value head (reward model trunk, zero head). */
  value: MultimodalModel;
  /** Folder for metrics.jsonl and checkpoint/. */
  out: string;
  /** PPO steps in all (a resumed run counts the steps already done); the sink stops reading then. */
  steps: number;
  /** KL penalty coefficient (0.1). With `adaptiveKl`, its starting value. */
  klCoef?: number;
  adaptiveKl?: { target: number; horizon: number } | null;
  klEstimator?: KlEstimator;
  rewardScaling?: RewardScaling;
  gamma?: number;
  lambda?: number;
  whitenAdvantages?: boolean;
  ppoEpochs?: number;
  /** Rollouts per gradient step (default: the whole batch). */
  minibatchSize?: number;
  clipRange?: number;
  valueClipRange?: number;
  valueCoef?: number;
  entropyCoef?: number;
  /** Peak policy learning rate. */
  lr?: number;
  /** Peak value-model learning rate (default: lr). */
  valueLr?: number;
  /** PPO steps of linear warmup to the peak (then constant). */
  warmupSteps?: number;
  /** Global gradient-norm clip (0: none). Default 1. */
  clipNorm?: number;
  weightDecay?: number;
  /**
   * Keep the vision encoder and projector frozen in the policy and the value model (default true,
   * as LLaVA-RLHF, whose CLIP tower is frozen): the gradients then stop at the language model,
   * which also saves the vision backward pass.
   */
  freezeVision?: boolean;
  /** Save a checkpoint every N steps (0: only at the end). */
  checkpointEvery?: number;
  /** Resume from `out/checkpoint` when it exists (default true). */
  resume?: boolean;
  /** Awaited before each checkpoint (e.g. until the rollout journal holds every step before it). */
  beforeCheckpoint?: (step: number) => Promise<void>;
  /** Called after each step's metrics are written (progress; tests interrupt here). */
  afterStep?: (metrics: PpoMetrics) => void | Promise<void>;
  name?: string;
}

/** One line of metrics.jsonl. Timing fields (tokens_per_s, time_*) vary between runs. */
export interface PpoMetrics {
  step: number;
  policy_version: number;
  rollouts: number;
  /** Rollouts the trainer rejected (NaN log-probs or reward...). */
  rejected: number;
  /** Rollouts the rollout stage made that a stage before the trainer rejected (scoring). */
  rejected_upstream: number;
  reward_mean: number;
  reward_std: number;
  reward_model_mean: number;
  length_penalty_mean: number;
  correctness_mean: number;
  no_eos_rate: number;
  /** Per-token KL(policy || reference), averaged over response tokens. */
  kl_mean: number;
  /** Per-response KL (summed over its tokens), averaged over responses. */
  kl_seq_mean: number;
  kl_coef: number;
  response_length_mean: number;
  policy_loss: number;
  value_loss: number;
  clipfrac: number;
  value_clipfrac: number;
  entropy: number;
  approx_kl: number;
  advantage_std: number;
  returns_mean: number;
  values_mean: number;
  policy_grad_norm: number;
  value_grad_norm: number;
  lr: number;
  skipped_updates: number;
  tokens_per_s: number;
  time_generation_s: number;
  time_scoring_s: number;
  time_update_s: number;
  time_generation_share: number;
  time_scoring_share: number;
  time_update_share: number;
}

/** Fields of PpoMetrics that depend on wall-clock time. */
export const PPO_TIMING_FIELDS = [
  'tokens_per_s', 'time_generation_s', 'time_scoring_s', 'time_update_s', 'time_generation_share', 'time_scoring_share', 'time_update_share',
] as const satisfies readonly (keyof PpoMetrics)[];
type TimingField = (typeof PPO_TIMING_FIELDS)[number];

export interface PpoResult {
  /** Steps done in all. */
  steps: number;
  /** Step the run resumed from (0: fresh). */
  resumed_from: number;
  checkpoint: string;
  metrics: string;
  /** The last step's metrics (null when no step ran in this process). */
  last: PpoMetrics | null;
  rollouts: number;
  rejected: number;
  /** Wall-clock seconds of this process's steps, by phase, and their shares. */
  time: { generation_s: number; scoring_s: number; update_s: number; generation_share: number; scoring_share: number; update_share: number; prompts_per_s: number; tokens_per_s: number };
}

export const PPO_CHECKPOINT_DIR = 'checkpoint';
export const PPO_METRICS_FILE = 'metrics.jsonl';
const VALUE_DIR = 'value';

function num(option: string, v: unknown, check: (x: number) => boolean, want: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) throw new InvalidOptionError(option, `must be ${want}, got ${String(v)}`);
  return v;
}
const int = (option: string, v: unknown, min: number): number => num(option, v, (x) => Number.isInteger(x) && x >= min, `an integer >= ${min}`);

interface Settings {
  steps: number;
  klCoef: number;
  klEstimator: KlEstimator;
  scaling: RewardScaling;
  gamma: number;
  lambda: number;
  whitenAdvantages: boolean;
  ppoEpochs: number;
  minibatchSize: number;
  clipRange: number;
  valueClipRange: number;
  valueCoef: number;
  entropyCoef: number;
  lr: number;
  valueLr: number;
  warmupSteps: number;
  clipNorm: number;
  weightDecay: number;
  freezeVision: boolean;
  checkpointEvery: number;
}

function checkOptions(o: PpoTrainerOptions): Settings {
  if (!o || typeof o !== 'object') throw new InvalidOptionError('ppo', 'options must be an object');
  if (!o.policy || typeof o.policy.attachTrainer !== 'function') throw new InvalidOptionError('ppo.policy', 'must be a live policy (createLivePolicy)');
  for (const k of ['reference', 'value'] as const) {
    if (!o[k] || typeof o[k].forward !== 'function') throw new InvalidOptionError(`ppo.${k}`, 'must be a model (loadModel / createModel)');
  }
  if (!o.reference.config.heads.includes('lm')) throw new InvalidOptionError('ppo.reference', 'has no "lm" head');
  if (!o.value.params.has('head.value.weight')) throw new InvalidOptionError('ppo.value', 'has no value head', { fix: "load it with heads: ['value'] (a fresh zero head on the reward model's trunk)" });
  // the reference and the value model read the policy's sequences and images
  const pc = o.policy.model.config;
  for (const k of ['reference', 'value'] as const) {
    const c = o[k].config;
    const why = c.language.vocabSize !== pc.language.vocabSize ? `vocabulary ${c.language.vocabSize} differs from the policy's ${pc.language.vocabSize}`
      : c.language.contextLength < pc.language.contextLength ? `context ${c.language.contextLength} is shorter than the policy's ${pc.language.contextLength}`
        : c.vision.imageSize !== pc.vision.imageSize || c.vision.patchSize !== pc.vision.patchSize ? `images of ${c.vision.imageSize} px in ${c.vision.patchSize} px patches, the policy's are ${pc.vision.imageSize} in ${pc.vision.patchSize}`
          : null;
    if (why) throw new InvalidOptionError(`ppo.${k}`, why, { fix: 'use models trained from the same SFT checkpoint' });
  }
  if (typeof o.out !== 'string' || o.out === '') throw new InvalidOptionError('ppo.out', 'must be a folder path');
  if (o.adaptiveKl !== undefined && o.adaptiveKl !== null) {
    num('ppo.adaptiveKl.target', o.adaptiveKl.target, (x) => x > 0, 'a positive number');
    num('ppo.adaptiveKl.horizon', o.adaptiveKl.horizon, (x) => x > 0, 'a positive number');
  }
  const lr = num('ppo.lr', o.lr ?? 1e-5, (x) => x > 0, 'a positive number');
  const s: Settings = {
    steps: int('ppo.steps', o.steps, 1),
    klCoef: num('ppo.klCoef', o.klCoef ?? 0.1, (x) => x >= 0, 'a number >= 0'),
    klEstimator: checkKlEstimator(o.klEstimator ?? 'k1-clamped', 'ppo.klEstimator'),
    scaling: checkRewardScaling(o.rewardScaling ?? DEFAULT_REWARD_SCALING, 'ppo.rewardScaling'),
    gamma: num('ppo.gamma', o.gamma ?? 1, (x) => x >= 0 && x <= 1, 'in [0, 1]'),
    lambda: num('ppo.lambda', o.lambda ?? 1, (x) => x >= 0 && x <= 1, 'in [0, 1]'),
    whitenAdvantages: o.whitenAdvantages ?? true,
    ppoEpochs: int('ppo.ppoEpochs', o.ppoEpochs ?? 2, 1),
    minibatchSize: int('ppo.minibatchSize', o.minibatchSize ?? Number.MAX_SAFE_INTEGER, 1),
    clipRange: num('ppo.clipRange', o.clipRange ?? 0.2, (x) => x > 0, 'a positive number'),
    valueClipRange: num('ppo.valueClipRange', o.valueClipRange ?? 0.2, (x) => x > 0, 'a positive number'),
    valueCoef: num('ppo.valueCoef', o.valueCoef ?? 0.1, (x) => x >= 0, 'a number >= 0'),
    entropyCoef: num('ppo.entropyCoef', o.entropyCoef ?? 0, (x) => x >= 0, 'a number >= 0'),
    lr,
    valueLr: num('ppo.valueLr', o.valueLr ?? lr, (x) => x > 0, 'a positive number'),
    warmupSteps: int('ppo.warmupSteps', o.warmupSteps ?? 0, 0),
    clipNorm: num('ppo.clipNorm', o.clipNorm ?? 1, (x) => x >= 0, 'a number >= 0'),
    weightDecay: num('ppo.weightDecay', o.weightDecay ?? 0, (x) => x >= 0, 'a number >= 0'),
    freezeVision: o.freezeVision ?? true,
    checkpointEvery: int('ppo.checkpointEvery', o.checkpointEvery ?? 0, 0),
  };
  if (typeof s.freezeVision !== 'boolean') throw new InvalidOptionError('ppo.freezeVision', 'must be true or false');
  if (typeof s.whitenAdvantages !== 'boolean') throw new InvalidOptionError('ppo.whitenAdvantages', 'must be true or false');
  for (const k of ['beforeCheckpoint', 'afterStep'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'function') throw new InvalidOptionError(`ppo.${k}`, 'must be a function');
  }
  return s;
}

async function exists(p: string): Promise<boolean> {
  try { await stat(p); return true; } catch { return false; }
}

const mean = (xs: readonly number[]): number => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
const std = (xs: readonly number[]): number => {
  if (xs.length === 0) return Number.NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / xs.length);
};
const flatMean = (rows: readonly (readonly number[])[]): number => mean(rows.flat());

/** Why a rollout cannot be trained on, or null. */
function rolloutProblem(r: ScoredRollout): string | null {
  if (!r || typeof r !== 'object') return 'not a rollout record';
  const ids = r.response_ids;
  if (!Array.isArray(ids)) return 'response_ids is missing (a stage between rollout and ppo-trainer dropped it)';
  const numbers = validateRollout({
    response_tokens: r.response_tokens,
    logprobs: r.logprobs,
    ref_logprobs: r.ref_logprobs && r.ref_logprobs.length > 0 ? r.ref_logprobs : undefined,
    reward_model: r.reward_model,
    reward_total: r.reward_total,
  });
  if (numbers) return numbers;
  if (typeof r.reward_total !== 'number') return 'reward_total is missing (no scoring stage before the trainer?)';
  if (ids.length !== r.logprobs.length) return `response_ids has ${ids.length} entries but logprobs has ${r.logprobs.length}`;
  return null;
}

/** The checkpoint folder to resume from, or null (the `.old-*` a save interrupted mid-swap leaves counts). */
async function findCheckpoint(out: string): Promise<string | null> {
  const dir = path.join(out, PPO_CHECKPOINT_DIR);
  if (await exists(path.join(dir, CONFIG_FILE))) return dir;
  const names = await readdir(out).catch(() => [] as string[]);
  const old = names.filter((n) => n.startsWith(`${PPO_CHECKPOINT_DIR}.old-`)).sort();
  for (const n of old.reverse()) if (await exists(path.join(out, n, CONFIG_FILE))) return dir;
  return null;
}

/** Removes what an interrupted save leaves: half-built `checkpoint.next-*`, and `.old-*` once `checkpoint` is whole. */
async function removeStaleCheckpoints(out: string): Promise<void> {
  const names = await readdir(out).catch(() => [] as string[]);
  const whole = await exists(path.join(out, PPO_CHECKPOINT_DIR, CONFIG_FILE));
  for (const n of names) {
    if (n.startsWith(`${PPO_CHECKPOINT_DIR}.next-`) || (whole && n.startsWith(`${PPO_CHECKPOINT_DIR}.old-`))) {
      await rm(path.join(out, n), { recursive: true, force: true });
    }
  }
}

export function ppoTrainer(options: PpoTrainerOptions): Sink<readonly ScoredRollout[], PpoResult> {
  const s = checkOptions(options);
  const { policy, reference, value, out } = options;
  const resume = options.resume ?? true;
  const name = options.name ?? 'ppo-trainer';
  const kl: KLController = options.adaptiveKl
    ? adaptiveKLController({ init: s.klCoef, target: options.adaptiveKl.target, horizon: options.adaptiveKl.horizon })
    : fixedKLController(s.klCoef);
  policy.attachTrainer();
  const tok = policy.tokenizer;
  const ckDir = path.join(out, PPO_CHECKPOINT_DIR);
  const metricsFile = path.join(out, PPO_METRICS_FILE);
  const lrAt = (step: number, peak: number): number => (s.warmupSteps > 0 ? peak * Math.min(1, (step + 1) / s.warmupSteps) : peak);

  let policyOpt: AdamW | undefined;
  let valueOpt: AdamW | undefined;
  const trainable = (m: MultimodalModel): readonly Parameter[] =>
    s.freezeVision ? m.parameters().filter((p) => !p.name.startsWith('vision.') && !p.name.startsWith('projector.')) : m.parameters();
  const policyParams = trainable(policy.model);
  const valueParams = trainable(value);

  /** A checkpoint of another model (another SFT policy since, say) is not continued as this one. */
  function refuseOtherModel(saved: ModelConfig, current: ModelConfig, dir: string, what: string): void {
    const differs = configDifferences(saved, current);
    if (differs.length > 0) {
      throw new CheckpointError(`the PPO checkpoint's ${what} was another model (${differs.join(', ')}) than this run's`, { file: dir, fix: `rerun with the policy it was trained from, or delete ${ckDir} to start over` });
    }
  }

  async function restore(ctx: SinkContext): Promise<number> {
    await mkdir(out, { recursive: true });
    await removeStaleCheckpoints(out);
    const found = resume ? await findCheckpoint(out) : null;
    if (!found) {
      await cutMetrics(metricsFile, 0);
      return 0;
    }
    const loaded = await loadCheckpoint(found);
    const state = loaded.state as { kind?: unknown; step?: unknown; seed?: unknown; kl_controller?: KLControllerState };
    if (state.kind !== 'ppo' || typeof state.step !== 'number' || !Number.isInteger(state.step) || state.step < 0) {
      throw new CheckpointError('not a PPO checkpoint (trainer_state.json has no PPO step)', { file: loaded.dir, fix: `use a new output folder, or delete ${ckDir} to start over` });
    }
    refuseOtherModel(loaded.config, policy.model.config, loaded.dir, 'policy');
    assignWeights(policy.model, loaded.weights, { file: path.join(loaded.dir, WEIGHTS_FILE) });
    restoreOptimizer(policyOpt!, loaded);
    const valueDir = path.join(loaded.dir, VALUE_DIR);
    if (!(await exists(path.join(valueDir, CONFIG_FILE)))) {
      throw new CheckpointError('the PPO checkpoint has no value model', { file: valueDir, fix: `delete ${ckDir} to start over` });
    }
    const v = await loadCheckpoint(valueDir);
    refuseOtherModel(v.config, value.config, v.dir, 'value model');
    assignWeights(value, v.weights, { file: path.join(v.dir, WEIGHTS_FILE) });
    restoreOptimizer(valueOpt!, v);
    if (state.kl_controller) kl.restore(state.kl_controller);
    await cutMetrics(metricsFile, state.step);
    ctx.note(`resumed from step ${state.step}${typeof state.seed === 'number' && state.seed !== ctx.seed ? ` (saved with seed ${state.seed}, this run has ${ctx.seed}: the rest of the run follows the new seed)` : ''}`);
    return state.step;
  }

  async function save(step: number, seed: number): Promise<void> {
    await options.beforeCheckpoint?.(step);
    const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
    const next = path.join(out, `${PPO_CHECKPOINT_DIR}.next-${tag}`);
    await saveCheckpoint(next, {
      model: policy.model, tokenizer: tok, optimizer: policyOpt,
      // no generator state to keep: rollout sampling and minibatch order derive from (seed, step)
      state: { kind: 'ppo', step, seed, rng: 'derived from (seed, step)', kl_controller: kl.state(), settings: { ...s, scaling: s.scaling } },
    });
    await saveCheckpoint(path.join(next, VALUE_DIR), { model: value, tokenizer: tok, optimizer: valueOpt, state: { kind: 'ppo-value', step } });
    // both models swap in together; a kill in between leaves checkpoint.old-* (found on resume)
    const old = `${ckDir}.old-${tag}`;
    const had = await exists(ckDir);
    if (had) await rename(ckDir, old);
    await rename(next, ckDir);
    if (had) await rm(old, { recursive: true, force: true });
  }

  /** One PPO step on one batch; returns its metrics (without timing). */
  async function step(batch: readonly ScoredRollout[], stepIndex: number, ctx: SinkContext, emitted?: number): Promise<Omit<PpoMetrics, TimingField>> {
    const kept: ScoredRollout[] = [];
    for (const r of batch) {
      if (r && typeof r === 'object' && r.policy_version !== stepIndex) {
        throw new BadInputError(`a rollout of policy_version ${String(r.policy_version)} reached the trainer at step ${stepIndex}`, {
          fix: 'give the rollout stage the same live policy as the trainer (they run in lockstep)',
        });
      }
      const problem = rolloutProblem(r);
      if (problem) ctx.reject(r, `rollout not used for the PPO update: ${problem}`);
      else kept.push(r);
    }
    const klCoef = kl.value;
    const lr = lrAt(stepIndex, s.lr);
    const base = {
      step: stepIndex + 1,
      policy_version: stepIndex,
      rollouts: kept.length,
      rejected: batch.length - kept.length,
      rejected_upstream: emitted === undefined ? 0 : Math.max(0, emitted - batch.length),
      kl_coef: klCoef,
      lr,
    };
    if (kept.length === 0) {
      ctx.note(`step ${stepIndex + 1}: every rollout rejected, no update`);
      const nan = Number.NaN;
      return {
        ...base, reward_mean: nan, reward_std: nan, reward_model_mean: nan, length_penalty_mean: nan, correctness_mean: nan, no_eos_rate: nan,
        kl_mean: nan, kl_seq_mean: nan, response_length_mean: nan, policy_loss: nan, value_loss: nan, clipfrac: nan, value_clipfrac: nan,
        entropy: nan, approx_kl: nan, advantage_std: nan, returns_mean: nan, values_mean: nan, policy_grad_norm: nan, value_grad_norm: nan,
        skipped_updates: 0,
      };
    }

    const encs: EncodedPrompt[] = [];
    for (const r of kept) encs.push(await policy.encode(r));
    const examples: ResponseExample[] = kept.map((r, i) => ({ promptIds: encs[i]!.ids, imagePositions: encs[i]!.imagePositions, pixels: encs[i]!.pixels, responseIds: r.response_ids }));
    const whole = responseBatch(policy.model, examples, tok.padId);
    const needRef = kept.some((r) => !r.ref_logprobs || r.ref_logprobs.length === 0);
    const computedRef = needRef ? await responseLogprobs(reference, whole) : undefined;
    const refs = kept.map((r, i) => (r.ref_logprobs && r.ref_logprobs.length > 0 ? r.ref_logprobs : computedRef![i]!));
    const oldValues = await responseValues(value, whole);
    const oldLogprobs = kept.map((r) => r.logprobs);

    const klRows = kept.map((r, i) => klPerToken(r.logprobs, refs[i]!, s.klEstimator));
    const rewards = scaleRewards(kept.map((r, i) => tokenRewards(r.reward_total, klRows[i]!, klCoef)), s.scaling);
    const { advantages, returns } = gaeBatch(rewards, oldValues, { gamma: s.gamma, lambda: s.lambda });
    const adv = s.whitenAdvantages ? whitenBatch(advantages) : advantages;

    const rng = new Rng(deriveSeed(ctx.seed, `ppo-minibatch:${stepIndex}`));
    const stats = { policy: [] as number[], clip: [] as number[], akl: [] as number[], ent: [] as number[], value: [] as number[], vclip: [] as number[], pgn: [] as number[], vgn: [] as number[], skipped: 0 };
    const valueLr = lrAt(stepIndex, s.valueLr);
    for (let epoch = 0; epoch < s.ppoEpochs; epoch++) {
      const order = rng.shuffle(kept.map((_, i) => i));
      for (let at = 0; at < order.length; at += s.minibatchSize) {
        if (ctx.signal.aborted) throw new AbortedError('PPO training was aborted', { cause: ctx.signal.reason });
        const idx = order.slice(at, at + s.minibatchSize);
        const mrb = responseBatch(policy.model, idx.map((i) => examples[i]!), tok.padId);
        const flat = (rows: readonly (readonly number[])[]): Float32Array => Float32Array.from(idx.flatMap((i) => rows[i]!));
        const oldLp = flat(oldLogprobs);
        const advFlat = flat(adv);
        const oldV = flat(oldValues);
        const ret = flat(returns);

        let pstats: tf.Tensor | undefined;
        const pg = await computeGradients(policy.model, () => {
          const { logprobs, entropy } = responseLogprobsTensor(policy.model, mrb, { entropy: true });
          const inputs = { logprobs, oldLogprobs: tf.tensor1d(oldLp), advantages: tf.tensor1d(advFlat), clipRange: s.clipRange };
          const loss = clippedPolicyLoss(inputs);
          const ent = meanEntropy(entropy!);
          pstats = tf.keep(tf.stack([loss, policyClipFraction(inputs), approxKl(logprobs, inputs.oldLogprobs), ent]));
          return s.entropyCoef > 0 ? (tf.sub(loss, tf.mul(ent, s.entropyCoef)) as tf.Scalar) : loss;
        }, policyParams);
        const [pl, cf, ak, en] = Array.from(await pstats!.data());
        pstats!.dispose();
        const pApplied = await applyGradients(policyOpt!, pg.grads, { lr, clipNorm: s.clipNorm });

        let vstats: tf.Tensor | undefined;
        const vg = await computeGradients(value, () => {
          const v = responseValuesTensor(value, mrb);
          const inputs = { values: v, oldValues: tf.tensor1d(oldV), returns: tf.tensor1d(ret), clipRange: s.valueClipRange };
          const loss = clippedValueLoss(inputs);
          vstats = tf.keep(tf.stack([loss, valueClipFraction(inputs)]));
          return tf.mul(loss, s.valueCoef) as tf.Scalar;
        }, valueParams);
        const [vl, vc] = Array.from(await vstats!.data());
        vstats!.dispose();
        const vApplied = await applyGradients(valueOpt!, vg.grads, { lr: valueLr, clipNorm: s.clipNorm });

        stats.policy.push(pl!); stats.clip.push(cf!); stats.akl.push(ak!); stats.ent.push(en!);
        stats.value.push(vl!); stats.vclip.push(vc!); stats.pgn.push(pApplied.gradNorm); stats.vgn.push(vApplied.gradNorm);
        stats.skipped += (pApplied.skipped ? 1 : 0) + (vApplied.skipped ? 1 : 0);
      }
    }

    const klSeq = klRows.map((row) => row.reduce((a, b) => a + b, 0));
    kl.update(mean(klSeq), kept.length);
    const totals = kept.map((r) => r.reward_total);
    return {
      ...base,
      reward_mean: mean(totals),
      reward_std: std(totals),
      reward_model_mean: mean(kept.map((r) => r.reward_model)),
      length_penalty_mean: mean(kept.map((r) => r.reward_length ?? 0)),
      correctness_mean: mean(kept.map((r) => r.reward_correctness ?? 0)),
      no_eos_rate: mean(kept.map((r) => (r.ended_with_eos ? 0 : 1))),
      kl_mean: flatMean(klRows),
      kl_seq_mean: mean(klSeq),
      response_length_mean: mean(kept.map((r) => r.response_ids.length)),
      policy_loss: mean(stats.policy),
      value_loss: mean(stats.value),
      clipfrac: mean(stats.clip),
      value_clipfrac: mean(stats.vclip),
      entropy: mean(stats.ent),
      approx_kl: mean(stats.akl),
      advantage_std: std(advantages.flat()),
      returns_mean: flatMean(returns),
      values_mean: flatMean(oldValues),
      policy_grad_norm: mean(stats.pgn),
      value_grad_norm: mean(stats.vgn),
      skipped_updates: stats.skipped,
    };
  }

  /** The trainer's input, telling the live policy whenever the trainer waits for a batch. */
  async function* watched<T>(input: AsyncIterable<T>): AsyncGenerator<T> {
    const it = input[Symbol.asyncIterator]();
    let finished = false;
    try {
      for (;;) {
        policy.setIdle(true);
        const r = await it.next();
        policy.setIdle(false);
        if (r.done) { finished = true; return; }
        yield r.value;
      }
    } finally {
      policy.setIdle(false);
      if (!finished) await it.return?.();
    }
  }

  return {
    name,
    async write(input, ctx) {
      policyOpt = createAdamW(policyParams, { weightDecay: s.weightDecay });
      valueOpt = createAdamW(valueParams, { weightDecay: s.weightDecay });
      const time = { generation: 0, scoring: 0, update: 0, tokens: 0, prompts: 0 };
      let last: PpoMetrics | null = null;
      let rollouts = 0;
      let rejected = 0;
      let start = 0;
      let done = 0;
      let saved = 0;

      /** Writes a step's metrics, checkpoints when due, calls afterStep. */
      const record = async (m: Omit<PpoMetrics, TimingField>, timing: StepTiming | undefined, received: number, finished: number): Promise<void> => {
        const generation = timing ? timing.generation + timing.reference : 0;
        const scoring = timing ? Math.max(0, (received - timing.emittedAt) / 1000) : 0;
        const update = (finished - received) / 1000;
        const total = generation + scoring + update;
        const tokens = timing?.tokens ?? (Number.isFinite(m.response_length_mean) ? m.response_length_mean * m.rollouts : 0);
        const metrics: PpoMetrics = {
          ...m,
          tokens_per_s: total > 0 ? tokens / total : 0,
          time_generation_s: generation,
          time_scoring_s: scoring,
          time_update_s: update,
          time_generation_share: total > 0 ? generation / total : 0,
          time_scoring_share: total > 0 ? scoring / total : 0,
          time_update_share: total > 0 ? update / total : 0,
        };
        time.generation += generation; time.scoring += scoring; time.update += update; time.tokens += tokens;
        time.prompts += m.rollouts + m.rejected + m.rejected_upstream;
        rollouts += m.rollouts; rejected += m.rejected;
        done++;
        await appendFile(metricsFile, JSON.stringify(metrics) + '\n');
        last = metrics;
        ctx.note(`step ${done}/${s.steps}: reward ${metrics.reward_mean.toFixed(3)}, kl ${metrics.kl_mean.toFixed(4)}`);
        if ((s.checkpointEvery > 0 && done % s.checkpointEvery === 0) || done === s.steps) {
          await save(done, ctx.seed);
          saved = done;
        }
        await options.afterStep?.(metrics);
      };
      /** Steps whose whole batch a stage before the trainer dropped: no update, a metrics line. */
      const recordLost = async (until: number): Promise<void> => {
        while (done < until && done < s.steps) {
          const timing = policy.takeTiming(done);
          ctx.note(`step ${done + 1}: every rollout was rejected before the trainer, no update`);
          const now = performance.now();
          await record(emptyStep(done, timing?.rollouts ?? 0), timing, now, now);
        }
      };
      const emptyStep = (stepIndex: number, upstream: number): Omit<PpoMetrics, TimingField> => {
        const nan = Number.NaN;
        return {
          step: stepIndex + 1, policy_version: stepIndex, rollouts: 0, rejected: 0, rejected_upstream: upstream, kl_coef: kl.value, lr: lrAt(stepIndex, s.lr),
          reward_mean: nan, reward_std: nan, reward_model_mean: nan, length_penalty_mean: nan, correctness_mean: nan, no_eos_rate: nan,
          kl_mean: nan, kl_seq_mean: nan, response_length_mean: nan, policy_loss: nan, value_loss: nan, clipfrac: nan, value_clipfrac: nan,
          entropy: nan, approx_kl: nan, advantage_std: nan, returns_mean: nan, values_mean: nan, policy_grad_norm: nan, value_grad_norm: nan,
          skipped_updates: 0,
        };
      };

      try {
        start = await restore(ctx);
        done = start;
        saved = start;
        policy.start(start, s.steps);
        if (done < s.steps) {
          for await (const batch of watched(input)) {
            if (!Array.isArray(batch)) {
              throw new BadInputError(`ppo-trainer expects batches (arrays) of scored rollouts, got ${typeof batch}`, { fix: 'put batch(n) and rollout stages before the trainer' });
            }
            if (batch.length === 0) {
              throw new BadInputError(`empty batch at step ${done + 1}: a PPO step needs at least one rollout`, { fix: 'check the stages before the trainer: rollout emits non-empty batches' });
            }
            // batches the gate let through after a dropped one carry a later version
            const v = (batch[0] as { policy_version?: unknown } | undefined)?.policy_version;
            if (typeof v === 'number' && Number.isInteger(v) && v > done && v <= policy.version) await recordLost(v);
            if (done >= s.steps) break;
            const received = performance.now();
            const timing = policy.takeTiming(done);
            const m = await step(batch, done, ctx, timing?.rollouts);
            const finished = performance.now();
            policy.advance();
            await record(m, timing, received, finished);
            if (done >= s.steps) break;
          }
          // the last batch dropped before the trainer
          if (policy.version > done) await recordLost(policy.version);
        }
        if (saved !== done || !(await exists(path.join(ckDir, CONFIG_FILE)))) await save(done, ctx.seed);
        const total = time.generation + time.scoring + time.update;
        const share = (x: number): number => (total > 0 ? x / total : 0);
        return {
          steps: done,
          resumed_from: start,
          checkpoint: ckDir,
          metrics: metricsFile,
          last,
          rollouts,
          rejected,
          time: {
            generation_s: time.generation, scoring_s: time.scoring, update_s: time.update,
            generation_share: share(time.generation), scoring_share: share(time.scoring), update_share: share(time.update),
            prompts_per_s: total > 0 ? time.prompts / total : 0, tokens_per_s: total > 0 ? time.tokens / total : 0,
          },
        };
      } finally {
        policy.finish();
        policyOpt.dispose();
        valueOpt.dispose();
      }
    },
  };
}
