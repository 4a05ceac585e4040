/**
 * PPO against the (factually augmented) reward model, on the streaming backbone:
 *
 *   rl-prompt shards (repeated, reshuffled each pass) -> batch -> rollout (the live policy samples)
 *     -> reward-score (reward model + length / correctness / no-EOS terms)
 *     -> tee(rollout journal) -> ppo-trainer (reference KL, value model, GAE, PPO epochs)
 *
 * then the journal becomes rollout shards (`<out>/rollouts/`, `npx pipeline inspect` shows the
 * highest and lowest rewarded responses). Defaults are LLaVA-RLHF's settings (DESIGN.md "Models")
 * at a size that runs in minutes on 2 CPU cores.
 *
 *   npx pipeline run pipelines/ppo.ts                     # makes SFT, the reward model and RL prompts first
 *   npx pipeline run pipelines/ppo.ts --set policy=runs/sft-train --set reward_model=runs/reward-train-fact
 *   npx pipeline run pipelines/ppo.ts --set kl_coef=0 --set steps=100 --out runs/ppo-nokl
 *
 * Outputs: `metrics.jsonl` (a line per step), `checkpoint/` (the policy, loadable like an SFT
 * checkpoint; `checkpoint/value/` the value model), `rollouts.jsonl` (the journal) and
 * `rollouts/` (shards), `summary.json`. Rerunning into the same `--out` resumes from the last
 * checkpoint and, with the same seed, continues exactly as the uninterrupted run would have.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { readManifest } from '../schemas/manifest.ts';
import { rlPromptSchema, type RlPrompt } from '../schemas/rl-prompt.ts';
import { rolloutSchema, type Rollout } from '../schemas/rollout.ts';
import { BadInputError, InvalidOptionError } from '../src/errors.ts';
import { selectBackend, type BackendChoice } from '../src/model/backend.ts';
import { checkpointFolder, loadModel } from '../src/model/checkpoint.ts';
import { createImageLoader } from '../src/model/image-input.ts';
import { createLivePolicy } from '../src/model/live-policy.ts';
import { loadRewardModel } from '../src/model/reward-model.ts';
import { definePipeline } from '../src/pipeline/define-pipeline.ts';
import { batch } from '../src/stream/batch.ts';
import { map } from '../src/stream/map.ts';
import type { Stage } from '../src/stream/stage.ts';
import { tee } from '../src/stream/tee.ts';
import { repeatEpochs } from '../sources/repeat-epochs.ts';
import { shardSource } from '../sources/shards.ts';
import { ppoTrainer, PPO_CHECKPOINT_DIR, PPO_METRICS_FILE, type PpoResult } from '../sinks/ppo-trainer.ts';
import { rolloutJournal } from '../sinks/rollout-journal.ts';
import { shardSink } from '../sinks/shard-sink.ts';
import { rewardScore } from '../transforms/reward-score.ts';
import { rlPromptMode } from '../transforms/aokvqa-multichoice.ts';
import { rollout, type RolloutRecord } from '../transforms/rollout.ts';

/** `result` (or `params`) of a run's summary.json, when there is one. */
async function runResult(dir: string, part: 'result' | 'params' = 'result'): Promise<Record<string, unknown> | undefined> {
  for (const d of [dir, path.dirname(dir)]) {
    try {
      const s = JSON.parse(await readFile(path.join(d, 'summary.json'), 'utf8')) as Record<string, unknown>;
      const v = s[part];
      if (v && typeof v === 'object') return v as Record<string, unknown>;
    } catch { /* no summary there */ }
  }
  return undefined;
}

export const ROLLOUT_JOURNAL_FILE = 'rollouts.jsonl';
export const ROLLOUT_SHARDS_DIR = 'rollouts';

export default definePipeline({
  name: 'ppo',
  description: 'PPO of the SFT policy against the (factually augmented) reward model: rollouts, reward shaping, per-token KL, GAE; metrics, checkpoints, rollout shards',
  params: {
    policy: { type: 'path', default: '', description: 'SFT run folder (or its checkpoint/): the initial policy and the frozen reference; empty: made in runs/sft-train' },
    reward_model: { type: 'path', default: '', description: 'reward-train run folder (or its checkpoint/); its trunk also starts the value model; empty: made in runs/reward-train-fact (facts=true)' },
    prompts: { type: 'path', default: '', description: 'rl-prompt shard folder; empty: made in runs/rl-prompts from the SFT run\'s shapes world' },
    world: { type: 'path', default: 'runs/shapes-world', description: 'shapes world used when the SFT run names none (default prompts and images)' },
    images: { type: 'path', default: '', description: 'image root of the prompts\' image paths; empty: <world>/images' },
    facts: { type: 'enum', default: 'auto', values: ['auto', 'true', 'false'], description: 'the reward model reads the facts (Fact-RLHF); auto: as the reward model was trained (its summary), else true' },
    steps: { type: 'number', default: 40, min: 1, integer: true, description: 'PPO steps (one rollout batch each)' },
    batch_size: { type: 'number', default: 8, min: 1, integer: true, description: 'rollouts per step' },
    minibatch_size: { type: 'number', default: 4, min: 1, integer: true, description: 'rollouts per gradient step' },
    ppo_epochs: { type: 'number', default: 2, min: 1, integer: true, description: 'passes over each rollout batch (LLaVA-RLHF: 2)' },
    lr: { type: 'number', default: 1e-4, min: 0, description: 'policy learning rate (after warmup)' },
    value_lr: { type: 'number', default: 1e-3, min: 0, description: 'value-model learning rate (0: lr); the zero head must reach returns of ~10 (rewards x10) within the run' },
    warmup: { type: 'number', default: 5, min: 0, integer: true, description: 'PPO steps of linear learning-rate warmup' },
    clip_norm: { type: 'number', default: 1, min: 0, description: 'global gradient-norm clip (0: off)' },
    kl_coef: { type: 'number', default: 0.1, min: 0, description: 'per-token KL penalty coefficient (LLaVA-RLHF: 0.1, fixed)' },
    kl_target: { type: 'number', default: 0, min: 0, description: 'adaptive KL controller target (KL per response); 0: fixed kl_coef' },
    kl_horizon: { type: 'number', default: 10000, min: 1, description: 'adaptive KL controller horizon (responses)' },
    kl_estimator: { type: 'enum', default: 'k1-clamped', values: ['k1-clamped', 'k1', 'k3'], description: 'per-token KL estimator (LLaVA-RLHF: k1 clamped at 0)' },
    clip_range: { type: 'number', default: 0.2, min: 0, description: 'PPO ratio clip' },
    value_clip_range: { type: 'number', default: 0.2, min: 0, description: 'value clip' },
    value_coef: { type: 'number', default: 0.1, min: 0, description: 'value loss coefficient' },
    gamma: { type: 'number', default: 1, min: 0, max: 1, description: 'GAE discount' },
    lambda: { type: 'number', default: 1, min: 0, max: 1, description: 'GAE lambda' },
    reward_scaling: { type: 'enum', default: 'scale', values: ['scale', 'whiten'], description: 'per-token rewards scaled by reward_scale (LLaVA-RLHF) or whitened' },
    reward_scale: { type: 'number', default: 10, description: 'factor for reward_scaling=scale' },
    // off by default (LLaVA-RLHF adds the raw score): standardising a near-chance reward model
    // amplifies its noise; on the demo's reward models (54-60% held-out) it made both PPO policies
    // hallucinate more (issue notes)
    reward_norm: { type: 'boolean', default: false, description: 'standardise reward-model scores by the mean and sd of its held-out scores (recorded by reward-train) before the length and correctness terms are added; raw scores otherwise, as LLaVA-RLHF' },
    max_response_tokens: { type: 'number', default: 32, min: 1, integer: true, description: 'longest response sampled (also the length term\'s denominator)' },
    length_coef: { type: 'number', default: 10, description: 'length term coefficient: -length_coef x tokens / max_response_tokens x length_bonus' },
    correct_bonus: { type: 'number', default: 1, description: 'multiple-choice correctness bonus' },
    yes_no_bonus: { type: 'number', default: 0.5, description: '"No"-question bonus magnitude' },
    reward_yes_questions: { type: 'boolean', default: false, description: 'also give the yes/no bonus on "Yes" questions (the reference rewards only "No" ones, which pulls a policy towards answering "no" to everything)' },
    no_eos_penalty: { type: 'number', default: -8, description: 'added when a response has no EOS' },
    temperature: { type: 'number', default: 1, min: 0, description: 'sampling temperature (LLaVA-RLHF: 1)' },
    top_p: { type: 'number', default: 1, min: 0, max: 1, description: 'nucleus sampling (LLaVA-RLHF: 1)' },
    checkpoint_every: { type: 'number', default: 10, min: 0, integer: true, description: 'checkpoint every N steps (0: only at the end)' },
    shuffle_buffer: { type: 'number', default: 2000, min: 0, integer: true, description: 'prompts held by each pass\'s shuffle' },
    format: { type: 'enum', default: 'parquet', values: ['parquet', 'arrow', 'jsonl'], description: 'rollout shard format' },
  },
  async run(ctx) {
    const p = ctx.params;
    if (ctx.partition.count > 1) throw new InvalidOptionError('partition', 'PPO training is not partitioned', { fix: 'run ppo without --partition' });
    for (const k of ['lr', 'temperature', 'top_p', 'clip_range', 'value_clip_range'] as const) {
      if (!(p[k] > 0)) throw new InvalidOptionError(`params.${k}`, `must be > 0, got ${p[k]}`);
    }
    const backend = await selectBackend(ctx.backend as BackendChoice, { log: ctx.log });

    // ---- inputs -------------------------------------------------------------------------------
    const sftRun = p.policy !== '' ? path.resolve(p.policy) : (await ctx.ensure('sft-train', 'runs/sft-train')).out;
    const rmRun = p.reward_model !== '' ? path.resolve(p.reward_model) : (await ctx.ensure('reward-train', 'runs/reward-train-fact', { facts: true, sft: sftRun })).out;
    const sftCheckpoint = await checkpointFolder(sftRun);
    const rmCheckpoint = await checkpointFolder(rmRun);
    const sftInfo = await runResult(sftRun);
    const rmInfo = await runResult(rmRun);
    const worldDir = typeof sftInfo?.world === 'string' ? sftInfo.world : path.resolve(p.world);
    // default prompts ask A-OKVQA questions in the format the SFT mix taught (rlPromptMode)
    const sftParams = await runResult(sftRun, 'params');
    const promptMode = rlPromptMode(sftParams?.data === '' ? sftParams.aokvqa_mode : undefined);
    const prompts = p.prompts !== '' ? path.resolve(p.prompts) : (await ctx.ensure('rl-prompts', 'runs/rl-prompts', { world: worldDir, aokvqa_mode: promptMode })).out;
    // direct prompts ask for the bare letter: the correctness bonus then accepts it
    const acceptBareLetter = (await runResult(prompts, 'params'))?.aokvqa_mode === 'direct';
    const imageRoot = p.images !== '' ? path.resolve(p.images) : path.join(worldDir, 'images');
    const rmFacts = typeof rmInfo?.facts === 'boolean' ? rmInfo.facts : undefined;
    const facts = p.facts === 'auto' ? rmFacts ?? true : p.facts === 'true';
    if (rmFacts !== undefined && rmFacts !== facts) {
      throw new InvalidOptionError('params.facts', `is ${facts} but the reward model in ${rmRun} was trained with facts=${rmFacts}`, { fix: `set facts=${rmFacts} (or auto), or use a reward model trained with facts=${facts}` });
    }
    const manifest = await readManifest(prompts);
    if (manifest.schema !== rlPromptSchema.name) {
      throw new BadInputError(`the shards hold "${manifest.schema}" records, not rl-prompts`, { file: path.join(prompts, 'manifest.json'), fix: 'point prompts= at rl-prompt shards (pipelines/rl-prompts.ts)' });
    }
    if (manifest.total_rows === 0) throw new BadInputError('the shard folder holds no prompts', { file: prompts, fix: 'make the rl-prompt shards again' });

    // ---- models: policy + frozen reference (SFT), value (reward trunk, zero head), reward model
    const { model: policyModel, checkpoint: sft } = await loadModel(sftCheckpoint, { label: 'policy' });
    const { model: reference } = await loadModel(sftCheckpoint, { label: 'reference' });
    const { model: value } = await loadModel(rmCheckpoint, { heads: ['value'], label: 'value' });
    const rm = await loadRewardModel(rmCheckpoint);
    try {
      if (!policyModel.config.heads.includes('lm')) throw new BadInputError(`${sftCheckpoint} has no language-model head: not a policy`, { file: sftCheckpoint, fix: 'point policy= at an SFT run' });
      if (rm.tokenizer.vocabSize !== sft.tokenizer.vocabSize) {
        throw new BadInputError(`the reward model's tokenizer (${rm.tokenizer.vocabSize} tokens) is not the policy's (${sft.tokenizer.vocabSize})`, { file: rmCheckpoint, fix: 'use a reward model trained from this SFT checkpoint' });
      }
      const images = createImageLoader({ size: policyModel.config.vision.imageSize, root: imageRoot });
      const policy = createLivePolicy({ model: policyModel, tokenizer: sft.tokenizer, images });
      const journal = rolloutJournal<RolloutRecord>({ file: path.join(ctx.out, ROLLOUT_JOURNAL_FILE), policy });
      const epochs = Math.ceil((p.steps * p.batch_size) / manifest.total_rows) + 1;
      const normalize = p.reward_norm ? rm.scoreStats : null;
      if (p.reward_norm && !normalize) ctx.log(`ppo: ${rmCheckpoint} records no held-out score statistics; its scores are used raw (retrain it with held-out pairs to standardise them)`);
      const norm = normalize ? `reward-model scores standardised (mean ${normalize.mean.toFixed(3)}, sd ${normalize.std.toFixed(3)})` : 'raw reward-model scores';
      ctx.log(`ppo: ${manifest.total_rows} prompts, ${p.steps} steps x ${p.batch_size} rollouts; facts=${facts}; ${norm}; kl_coef ${p.kl_coef}; backend ${backend.name}`);

      const stages = [
        batch<RlPrompt>(p.batch_size, { name: 'batch' }),
        rollout({
          policy, reference, batchSize: p.batch_size, maxResponseTokens: p.max_response_tokens,
          temperature: p.temperature, topP: p.top_p, klEstimator: p.kl_estimator,
        }),
        rewardScore<RolloutRecord>({
          model: rm.model, tokenizer: rm.tokenizer, facts, factsAt: rm.factsAt, normalize, maxResponseTokens: p.max_response_tokens, images,
          shaping: { lengthCoef: p.length_coef, correctBonus: p.correct_bonus, yesNoBonus: p.yes_no_bonus, noEosPenalty: p.no_eos_penalty, acceptBareLetter, rewardYesQuestions: p.reward_yes_questions },
        }),
        tee(journal.consume, { name: 'rollout-journal' }),
      ] as Stage<never, unknown>[];
      const train = await ctx.flow<PpoResult>({
        source: repeatEpochs({ source: shardSource<RlPrompt>({ path: prompts, schema: rlPromptSchema }), epochs, shuffleBuffer: p.shuffle_buffer, name: 'prompts' }),
        stages,
        sink: ppoTrainer({
          policy, reference, value, out: ctx.out, steps: p.steps,
          klCoef: p.kl_coef, adaptiveKl: p.kl_target > 0 ? { target: p.kl_target, horizon: p.kl_horizon } : null, klEstimator: p.kl_estimator,
          rewardScaling: p.reward_scaling === 'whiten' ? { mode: 'whiten' } : { mode: 'scale', factor: p.reward_scale },
          gamma: p.gamma, lambda: p.lambda, ppoEpochs: p.ppo_epochs, minibatchSize: p.minibatch_size,
          clipRange: p.clip_range, valueClipRange: p.value_clip_range, valueCoef: p.value_coef,
          lr: p.lr, valueLr: p.value_lr > 0 ? p.value_lr : p.lr, warmupSteps: p.warmup, clipNorm: p.clip_norm,
          checkpointEvery: p.checkpoint_every,
          beforeCheckpoint: (step) => journal.flushedBefore(step, ctx.signal),
        }) as never,
      }, { name: 'ppo' });
      const result = train.result;
      if (result.steps < p.steps) ctx.log(`ppo: the prompts ran out after ${result.steps} of ${p.steps} steps (too many rejected?)`);

      // ---- rollout shards from the journal --------------------------------------------------
      const strip = map<RolloutRecord, Rollout>(({ response_ids: _ids, ...r }) => r, { name: 'schema-fields' });
      const shards = await ctx.flow({
        source: shardSource<RolloutRecord>({ path: journal.file, name: 'rollout-journal' }),
        stages: [strip as Stage<never, unknown>],
        sink: shardSink({ dir: path.join(ctx.out, ROLLOUT_SHARDS_DIR), schema: rolloutSchema, format: p.format as 'parquet' | 'arrow' | 'jsonl' }),
      }, { name: 'rollout-shards' });

      const last = result.last;
      const pct = (x: number): string => `${Math.round(100 * x)}%`;
      if (last) {
        ctx.log(`ppo: step ${result.steps}: reward ${last.reward_mean.toFixed(3)} (reward model ${last.reward_model_mean.toFixed(3)}), kl ${last.kl_mean.toFixed(4)}, length ${last.response_length_mean.toFixed(1)}`);
      }
      ctx.log(`ppo: ${result.time.prompts_per_s.toFixed(2)} prompts/s; time in generation ${pct(result.time.generation_share)}, scoring ${pct(result.time.scoring_share)}, updates ${pct(result.time.update_share)}`);
      return {
        steps: result.steps,
        resumed_from: result.resumed_from,
        facts,
        reward_norm: normalize,
        last,
        rollouts: { trained: result.rollouts, rejected_by_trainer: result.rejected, written: shards.stages.at(-1)?.out ?? 0, dir: ROLLOUT_SHARDS_DIR, journal: ROLLOUT_JOURNAL_FILE },
        time: result.time,
        checkpoint: PPO_CHECKPOINT_DIR,
        metrics: PPO_METRICS_FILE,
        inputs: { policy: sftCheckpoint, reward_model: rmCheckpoint, prompts, images: imageRoot, world: worldDir },
        backend: { name: backend.name, detail: backend.detail },
      };
    } finally {
      policyModel.dispose();
      reference.dispose();
      value.dispose();
      rm.model.dispose();
    }
  },
});
