/**
 * Trains the reward model on preference shards: Fact-RLHF (`facts=true`, the captions in the
 * prompt) or vanilla RLHF (`facts=false`), both from the same code, starting from the SFT
 * checkpoint's trunk.
 *
 *   npx pipeline run pipelines/reward-train.ts                    # makes SFT and preferences first
 *   npx pipeline run pipelines/reward-train.ts --set facts=false --out runs/reward-train-vanilla
 *   npx pipeline run pipelines/reward-train.ts --set preferences=runs/preference --set sft=runs/sft-train
 *
 * Steps: (1) the SFT run (`sft=`, default made in runs/sft-train) and the preference shards
 * (`preferences=`, default made from the SFT run's shapes world, inputs named explicitly so the
 * preference pipeline makes no world of its own; `preference_per_image` > the world's asks for
 * a sibling world with the same seed and parameters but more pairs on the same held-out
 * images); (2) a held-out share of the pairs, split by image (all pairs of an image on one
 * side), seeded by the run seed, so facts=true and facts=false runs with one seed are measured
 * on the same pairs; the held-out images split again (`validation_fraction`) into validation
 * pairs, which choose the kept checkpoint, and the reported ones; (3) training: shards read
 * `epochs` times, each pass shuffled -> the rest of the split -> batches -> reward-trainer
 * (metrics.jsonl, checkpoint/ = the best validation accuracy, last/ for resuming). The reward
 * prompt is longer than the policy's conversations, so `context` may extend the SFT model's
 * position table.
 *
 * `summary.json` -> `result`: `facts`, `heldout.accuracy`, `heldout.hallucination_pair_accuracy`
 * (pairs where exactly one response names an absent object) of the kept checkpoint on pairs that
 * did not choose it, `validation` (the figures that chose it), `checkpoint`.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { definePipeline } from '../src/pipeline/define-pipeline.ts';
import { BadInputError, InvalidOptionError } from '../src/errors.ts';
import type { Sink } from '../src/stream/stage.ts';
import { batch } from '../src/stream/batch.ts';
import { exactShareByKey, split } from '../src/stream/split.ts';
import { deriveSeed } from '../src/stream/random.ts';
import { selectBackend, type BackendChoice } from '../src/model/backend.ts';
import { checkpointFolder } from '../src/model/checkpoint.ts';
import { readManifest } from '../schemas/manifest.ts';
import { preferenceSchema, type Preference } from '../schemas/preference.ts';
import { shardSource } from '../sources/shards.ts';
import { repeatEpochs } from '../sources/repeat-epochs.ts';
import { SHAPES_WORLD_FILES } from '../sources/shapes-world.ts';
import { REWARD_CHECKPOINT_DIR, REWARD_METRICS_FILE, rewardTrainer } from '../sinks/reward-trainer.ts';

async function exists(p: string): Promise<boolean> {
  try { await stat(p); return true; } catch { return false; }
}

/** Collects the held-out records (a bounded evaluation set) in memory. */
function collect(limit: number): Sink<Preference, Preference[]> {
  return {
    name: 'heldout',
    async write(input) {
      const out: Preference[] = [];
      for await (const r of input) if (limit === 0 || out.length < limit) out.push(r);
      return out;
    },
  };
}

/** The shapes world an SFT run used (its summary names it), if any. */
async function sftWorld(sftRun: string): Promise<string | undefined> {
  try {
    const s = JSON.parse(await readFile(path.join(sftRun, 'summary.json'), 'utf8')) as { result?: { world?: unknown } };
    return typeof s.result?.world === 'string' ? s.result.world : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The world whose preference file has `perImage` pairs per held-out image: the world itself when
 * it already has that many (or perImage is 0), else a sibling made with the same seed and
 * parameters except preference_per_image. Generation is seeded per part, so the sibling's
 * images, captions and SFT data are the same files; only the preference file has more pairs.
 */
async function pairsWorld(world: string, perImage: number, ctx: { seed: number; log(m: string): void; ensure(p: string, out: string, params?: Record<string, unknown>): Promise<{ out: string }> }): Promise<string> {
  if (perImage === 0) return world;
  let made: { seed?: unknown; params?: Record<string, unknown> } = {};
  try { made = JSON.parse(await readFile(path.join(world, 'summary.json'), 'utf8')) as typeof made; } catch { /* a world not made by the pipeline */ }
  if (!made.params || made.seed !== ctx.seed) {
    ctx.log(`reward-train: ${world} was not made by the shapes-world pipeline with seed ${ctx.seed}; using its own preference pairs`);
    return world;
  }
  if (made.params.preference_per_image === perImage) return world;
  return (await ctx.ensure('shapes-world', `${world}-pairs${perImage}`, { ...made.params, preference_per_image: perImage })).out;
}

export default definePipeline({
  name: 'reward-train',
  description: 'Reward model (Fact-RLHF with facts=true, vanilla RLHF with facts=false) from the SFT trunk on preference shards, with held-out accuracy',
  params: {
    preferences: { type: 'path', default: '', description: 'preference shard folder; empty: made in runs/preference from the SFT run\'s shapes world' },
    sft: { type: 'path', default: '', description: 'SFT run folder (or its checkpoint/); empty: made in runs/sft-train' },
    world: { type: 'path', default: 'runs/shapes-world', description: 'shapes world for the default preferences when the SFT run does not name one' },
    preference_per_image: { type: 'number', default: 8, min: 0, max: 20, integer: true, description: 'default preferences: pairs per held-out image (a sibling world with the same images when it differs from the world\'s; 0: the world\'s own)' },
    images: { type: 'path', default: '', description: 'image root of the records\' image paths; empty: <world>/images' },
    facts: { type: 'boolean', default: true, description: 'Fact-RLHF: the reward prompt lists the record\'s captions (false: vanilla RLHF)' },
    facts_at: { type: 'enum', default: 'start', values: ['start', 'end'], description: 'where the captions go (facts=true): end = after the response, as LLaVA-RLHF; start = before the conversation, so each response word can be checked against them by a small causal model' },
    pooling: { type: 'enum', default: 'response-sum', values: ['response-sum', 'response', 'mean', 'last'], description: 'positions the reward head reads: last = the last token, as LLaVA-RLHF; mean = the mean score over every token; response = the mean score over the response tokens only; response-sum = their sum (each object mentioned counts, as the annotator counts them)' },
    likelihood: { type: 'boolean', default: true, description: 'the reward head also weighs each response token\'s log-likelihood under the SFT trunk\'s LM head (kept in the reward model): u.h + c + (v.h + d) * log p(token); false: the linear head of LLaVA-RLHF' },
    fact_match: { type: 'boolean', default: true, description: 'where facts and likelihood are on: each response token that occurs in the captions adds a learned (w.h + g) to the score, so the reward model checks the response against the facts without having to learn to read them (3,000-step trunk, 100 steps: 79.3% held out against 75.9% without; see README); ignored otherwise' },
    steps: { type: 'number', default: 120, min: 1, integer: true, description: 'optimizer steps (one batch each); ignored when epochs > 0' },
    epochs: { type: 'number', default: 0, min: 0, integer: true, description: 'passes over the training pairs (0: as many as steps need)' },
    batch_size: { type: 'number', default: 8, min: 1, integer: true, description: 'preference pairs per step (two sequences each)' },
    lr: { type: 'number', default: 1e-3, min: 0, description: 'peak learning rate (AdamW)' },
    min_lr: { type: 'number', default: -1, min: -1, description: 'learning rate at the end of the cosine (-1: lr / 10)' },
    warmup: { type: 'number', default: 10, min: 0, integer: true, description: 'linear warmup steps' },
    weight_decay: { type: 'number', default: 0, min: 0, description: 'AdamW decoupled weight decay (matrices only)' },
    clip_norm: { type: 'number', default: 1, min: 0, description: 'global gradient-norm clip (0: off)' },
    heldout_fraction: { type: 'number', default: 0.2, min: 0, max: 0.9, description: 'share of images whose pairs are held out for evaluation' },
    max_heldout: { type: 'number', default: 0, min: 0, integer: true, description: 'most held-out pairs scored (0: all)' },
    validation_fraction: { type: 'number', default: 0.5, min: 0, max: 0.9, description: 'share of the held-out images whose pairs choose the kept checkpoint; the rest give the reported figures (0: the held-out pairs do both, which flatters them)' },
    eval_every: { type: 'number', default: 20, min: 0, integer: true, description: 'held-out evaluation every N steps (0: only at the end)' },
    patience: { type: 'number', default: 0, min: 0, integer: true, description: 'evaluations without a better validation accuracy before stopping (0: never early)' },
    log_every: { type: 'number', default: 5, min: 1, integer: true, description: 'a metrics.jsonl line every N steps' },
    context: { type: 'number', default: 384, min: 0, integer: true, description: 'reward model context; longer than the SFT model\'s extends its position table (0: the SFT model\'s)' },
    max_length: { type: 'number', default: 0, min: 0, integer: true, description: 'longest reward prompt (0: the context); captions are cut first, never the response' },
    resume: { type: 'boolean', default: true, description: 'resume from <out>/last when it exists (and was trained with the same facts setting)' },
  },
  async run(ctx) {
    const p = ctx.params;
    if (ctx.partition.count > 1) throw new InvalidOptionError('partition', 'training is not partitioned', { fix: 'run reward-train without --partition' });
    if (!(p.lr > 0)) throw new InvalidOptionError('params.lr', 'must be positive');
    const backend = await selectBackend(ctx.backend as BackendChoice, { log: ctx.log });

    // ---- inputs -------------------------------------------------------------------------------
    const sftRun = p.sft !== '' ? path.resolve(p.sft) : (await ctx.ensure('sft-train', 'runs/sft-train')).out;
    const sftCheckpoint = await checkpointFolder(sftRun);
    let world = (await sftWorld(sftRun)) ?? path.resolve(p.world);
    let preferences: string;
    let pairWorld = world;
    if (p.preferences !== '') preferences = path.resolve(p.preferences);
    else {
      if (!(await exists(path.join(world, SHAPES_WORLD_FILES.world)))) world = (await ctx.ensure('shapes-world', p.world)).out;
      pairWorld = await pairsWorld(world, p.preference_per_image, ctx);
      // inputs named explicitly: the preference pipeline then makes no world of its own
      preferences = (await ctx.ensure('preference', pairWorld === world ? 'runs/preference' : `runs/preference-${path.basename(pairWorld)}`, {
        preference: path.join(pairWorld, SHAPES_WORLD_FILES.preference),
        coco: path.join(pairWorld, SHAPES_WORLD_FILES.coco_captions),
      })).out;
    }
    const imageRoot = p.images !== '' ? path.resolve(p.images) : path.join(world, 'images');
    const manifest = await readManifest(preferences);
    if (manifest.schema !== preferenceSchema.name) {
      throw new BadInputError(`the shards hold "${manifest.schema}" records, not preferences`, { file: path.join(preferences, 'manifest.json'), fix: 'point preferences= at preference shards (pipelines/preference.ts)' });
    }
    if (manifest.total_rows === 0) throw new BadInputError('the shard folder holds no preference pairs', { file: preferences, fix: 'make the preference shards again' });
    const shards = () => shardSource<Preference>({ path: preferences, schema: preferenceSchema, name: 'preferences' });

    // ---- held-out pairs, split by image -------------------------------------------------------
    const splitSeed = deriveSeed(ctx.seed, 'reward-heldout');
    const splitOptions = { seed: splitSeed, key: (r: Preference) => r.image ?? r.id, fraction: p.heldout_fraction };
    const held = await ctx.flow({ source: shards(), stages: [split<Preference>({ ...splitOptions, take: 'holdout' })] as never[], sink: collect(p.max_heldout) }, { name: 'heldout' });
    // the held-out images split again, by image: validation pairs choose the kept checkpoint, the
    // others are only reported, so the reported accuracy is not the best of several looks at them.
    // An exact share of the images: the default demo holds out ~20, and a hash threshold once gave
    // validation 2 of them (8 pairs).
    const keyOf = splitOptions.key;
    const shares = exactShareByKey(held.result, keyOf, p.validation_fraction, deriveSeed(ctx.seed, 'reward-validation'));
    let validation = shares.taken;
    let heldout = shares.rest;
    if (heldout.length === 0 || validation.length === 0) {
      if (p.validation_fraction > 0 && held.result.length > 0) ctx.log(`reward-train: the ${held.result.length} held-out pairs do not split into validation and test (validation_fraction ${p.validation_fraction}); they choose the checkpoint and are reported`);
      heldout = held.result;
      validation = [];
    }
    const trainRows = manifest.total_rows - (held.stages[1]?.out ?? held.result.length);
    if (trainRows <= 0) throw new BadInputError(`every one of the ${manifest.total_rows} pairs is held out`, { file: preferences, fix: 'lower heldout_fraction' });

    // ---- training -----------------------------------------------------------------------------
    const steps = p.epochs > 0 ? Math.ceil((trainRows * p.epochs) / p.batch_size) : p.steps;
    let epochs = p.epochs > 0 ? p.epochs : Math.ceil((steps * p.batch_size) / trainRows);
    // a margin for rejected records, so the data does not run out just before the last steps
    if (p.epochs === 0 && epochs * trainRows - steps * p.batch_size < 0.02 * trainRows) epochs++;
    const factMatch = p.fact_match && p.facts && p.likelihood;
    ctx.log(`reward-train: facts=${p.facts}${p.facts ? ` (captions at the ${p.facts_at})` : ''}, pooling ${p.pooling}${p.likelihood ? ' with token likelihoods' : ''}${factMatch ? ' and caption matches' : ''}; ${trainRows} training pairs, ${held.result.length} held out (${validation.length > 0 ? `${validation.length} choosing the checkpoint, ` : ''}${heldout.length} reported, ${heldout.filter((r) => r.hallucination === true).length} of these hallucination pairs); ${steps} steps of ${p.batch_size} pairs; backend ${backend.name}`);
    const flow = await ctx.flow({
      source: repeatEpochs({ source: shards(), epochs, name: 'preferences' }),
      stages: [split<Preference>({ ...splitOptions, take: 'rest' }), batch<Preference>(p.batch_size)] as never[],
      sink: rewardTrainer({
        sft: sftCheckpoint, out: ctx.out, facts: p.facts, factsAt: p.facts_at, pooling: p.pooling, likelihood: p.likelihood, factMatch, imageRoot,
        steps, lr: p.lr, warmup: Math.min(p.warmup, steps), minLr: p.min_lr < 0 ? p.lr / 10 : Math.min(p.min_lr, p.lr),
        optimizer: { weightDecay: p.weight_decay }, clipNorm: p.clip_norm,
        heldout, validation, evalEvery: p.eval_every, patience: p.patience, logEvery: p.log_every,
        examplesPerEpoch: trainRows, resume: p.resume, seed: ctx.seed,
        ...(p.max_length > 0 ? { maxLength: p.max_length } : {}),
        ...(p.context > 0 ? { contextLength: p.context } : {}),
        progress: ctx.progress,
      }),
    }, { name: 'train' });
    const train = flow.result;
    const pct = (x: number | null | undefined) => (typeof x === 'number' ? `${(100 * x).toFixed(1)}%` : '-');
    ctx.log(`reward-train: facts=${p.facts}: held-out accuracy ${pct(train.heldout?.accuracy)}, on hallucination pairs ${pct(train.heldout?.hallucination_pair_accuracy)} (kept step ${train.best_step} of ${train.steps}${train.validation ? `, chosen on ${train.validation.pairs} validation pairs at ${pct(train.validation.accuracy)}` : ''}${train.stopped_early ? ', stopped early' : ''}); ${train.tokens_per_s} tokens/s`);
    return {
      facts: p.facts,
      facts_at: p.facts_at,
      pooling: p.pooling,
      likelihood: p.likelihood,
      fact_match: factMatch,
      heldout: train.heldout,
      validation: train.validation,
      best_step: train.best_step,
      steps: train.steps,
      stopped_early: train.stopped_early,
      train,
      data: { preferences, train_pairs: trainRows, heldout_pairs: heldout.length, validation_pairs: validation.length, heldout_images: new Set(heldout.map(keyOf)).size, validation_images: new Set(validation.map(keyOf)).size, epochs, batch_size: p.batch_size },
      sft: sftCheckpoint,
      world,
      pairs_world: pairWorld,
      images: imageRoot,
      backend: { name: backend.name, detail: backend.detail },
      checkpoint: REWARD_CHECKPOINT_DIR,
      metrics: REWARD_METRICS_FILE,
    };
  },
});
