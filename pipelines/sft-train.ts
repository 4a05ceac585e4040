/**
 * Supervised fine-tuning of the small LLaVA-style policy on conversation shards, then a held-out
 * evaluation on shapes-world questions SFT never saw.
 *
 *   npx pipeline run pipelines/sft-train.ts                  # makes the shapes world and its SFT mix first
 *   npx pipeline run pipelines/sft-train.ts --set data=runs/my-mix --set images=data/images
 *
 * Steps: (1) data: `data=` shards, or by default a shapes world (`world=`, `world_images=`) and its
 * SFT mix with A-OKVQA in the direct multiple-choice format (what the held-out multiple-choice
 * questions ask); (2) a tokenizer trained on the shards' text (a first pass; saved as
 * tokenizer.json), or the checkpoint's when resuming; (3) training: shards read `epochs` times,
 * each pass shuffled, -> tokenize-conversation -> bucket-by-length -> sft-trainer (metrics.jsonl,
 * checkpoint/); (4) greedy answers to held-out yes/no and multiple-choice questions.
 *
 * Rerunning into the same `--out` resumes from `checkpoint/` (the data order is fixed by the seed);
 * a finished checkpoint is only evaluated again. `summary.json` -> `result.heldout` holds `loss`,
 * `yesno_accuracy` and `multichoice_accuracy`; `heldout_answers.jsonl` every answer.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { definePipeline } from '../src/pipeline/define-pipeline.ts';
import { BadInputError, InvalidOptionError } from '../src/errors.ts';
import type { Sink } from '../src/stream/stage.ts';
import { selectBackend, type BackendChoice } from '../src/model/backend.ts';
import { buildTokenizer, tokenizerConfigFor } from '../src/model/build-tokenizer.ts';
import { IMAGE_TAG, systemPromptOf, VICUNA_SYSTEM_PROMPT } from '../src/model/chat-template.ts';
import { checkpointFolder, loadCheckpoint, loadModel } from '../src/model/checkpoint.ts';
import { DEFAULT_MODEL_CONFIG, imageTokenCount, resolveModelConfig, type PositionEncoding } from '../src/model/config.ts';
import { createImageLoader } from '../src/model/image-input.ts';
import { createModel, type MultimodalModel } from '../src/model/multimodal-model.ts';
import { loadTokenizer, tokenizerFromJson, type TextTokenizer } from '../src/model/tokenizer.ts';
import { readManifest } from '../schemas/manifest.ts';
import { conversationSchema, type Conversation } from '../schemas/conversation.ts';
import { shardSource } from '../sources/shards.ts';
import { repeatEpochs } from '../sources/repeat-epochs.ts';
import { SHAPES_WORLD_FILES } from '../sources/shapes-world.ts';
import { shapesWorldFor } from './shapes-world.ts';
import sftMix from './sft-mix.ts';
import { tokenizeConversation } from '../transforms/tokenize-conversation.ts';
import { bucketBatch } from '../transforms/bucket-by-length.ts';
import { loadHeldoutQuestions, type MultichoiceForm } from '../transforms/shapes-heldout-questions.ts';
import { evaluateShapesAccuracy, heldoutLossBatches } from '../transforms/shapes-heldout-eval.ts';
import type { LossWeighting } from '../src/model/collate.ts';
import { CHECKPOINT_DIR, METRICS_FILE, heldoutLoss, sftTrainer, type SftTrainerSummary } from '../sinks/sft-trainer.ts';
import { visionPretrainer, type TaggedImage, type VisionPretrainerSummary } from '../sinks/vision-pretrainer.ts';
import { cocoCaptionsSource, type CocoCaptionsItem } from '../sources/coco-captions.ts';
import { loadShapesTruth } from '../sources/shapes-truth.ts';
import { batch } from '../src/stream/batch.ts';
import { filter } from '../src/stream/filter.ts';
import { map } from '../src/stream/map.ts';
import { captionTagger, shapesWorldTagGroups, shapesWorldTags } from '../src/model/vision-tags.ts';
import { alignProjector, type ProjectorAlignment } from '../src/model/projector-alignment.ts';
import type { TagHead } from '../src/model/vision-pretrain.ts';
import { heldoutImages } from '../transforms/shapes-heldout-questions.ts';

/** Seed offset of a vision corpus world, so its images are not the SFT world's (same generator). */
const VISION_WORLD_SEED_OFFSET = 1000;
/** Images whose patches the projector alignment regresses on (256 x 16 patches: ample for 193 features). */
const ALIGN_IMAGES = 256;
/**
 * Images of the world this pipeline makes by default. On 300 images the policy memorises its 225
 * SFT images before the question-to-image lookup forms and stays at chance; on 3,000 it answers from
 * the image by 1,000-1,500 steps (README, "What kept the 300-image default at chance").
 */
const SFT_WORLD_IMAGES = 3000;

/** What sft-train reads of a shapes world's world.json: its train-image count and held-out ids. */
async function worldInfo(worldDir: string): Promise<{ images?: number; heldout: number[] }> {
  const world = JSON.parse(await readFile(path.join(worldDir, SHAPES_WORLD_FILES.world), 'utf8')) as { counts?: { images?: { coco_train?: unknown } }; splits?: { heldout?: number[] } };
  const n = world.counts?.images?.coco_train;
  return { images: typeof n === 'number' ? n : undefined, heldout: world.splits?.heldout ?? [] };
}

async function exists(p: string): Promise<boolean> {
  try { await stat(p); return true; } catch { return false; }
}

/**
 * Word counts of the text the template will tokenise (counted, not kept: memory is the vocabulary).
 * Vicuna's system prompt counts whatever the run's is, so the vocabulary does not change with it.
 */
function corpusSink(systemPrompt: string): Sink<Conversation, Map<string, number>> {
  return {
    name: 'corpus',
    async write(input) {
      const counts = new Map<string, number>();
      const add = (text: string): void => {
        for (const w of text.split(' ')) counts.set(w, (counts.get(w) ?? 0) + 1);
      };
      for await (const c of input) {
        add(VICUNA_SYSTEM_PROMPT);
        if (systemPrompt !== VICUNA_SYSTEM_PROMPT && systemPrompt !== '') add(systemPrompt);
        for (const t of c.conversations) {
          if (t.from === 'human') add('USER: ASSISTANT:');
          add(t.value.replace(IMAGE_TAG, '').trim());
        }
      }
      return counts;
    },
  };
}

/** Each word as often as it occurs: buildTokenizer pre-tokenises on spaces, so this equals the full text. */
function* words(counts: ReadonlyMap<string, number>): Generator<string> {
  for (const [w, n] of counts) for (let i = 0; i < n; i++) yield w;
}

export default definePipeline({
  name: 'sft-train',
  description: 'Supervised fine-tuning of the small LLaVA-style policy on conversation shards (default: the shapes world), with held-out accuracy',
  params: {
    data: { type: 'path', default: '', description: 'conversation shard folder; empty: make the shapes world and its SFT mix (A-OKVQA direct)' },
    images: { type: 'path', default: '', description: 'image root of the records\' image paths; empty: <world>/images' },
    world: { type: 'path', default: 'runs/shapes-world', description: 'shapes world (made if missing) for the default data and the held-out questions' },
    world_images: { type: 'number', default: SFT_WORLD_IMAGES, min: 10, integer: true, description: 'images of the shapes world when it is made (an existing world is used as it is)' },
    mix: { type: 'path', default: '', description: 'where the default SFT mix is made (when data is empty); empty: runs/sft-mix-<aokvqa_mode>' },
    aokvqa_mode: { type: 'enum', default: 'direct', values: ['direct', 'reasoning', 'mixed'], description: 'A-OKVQA answers in the default mix: the letter, a rationale first, or each question one of the two' },
    heldout_multichoice: { type: 'enum', default: 'auto', values: ['auto', 'direct', 'reasoning'], description: 'how held-out multiple-choice questions are asked: the letter directly, a rationale first, or auto (reasoning when aokvqa_mode is reasoning, else direct)' },
    steps: { type: 'number', default: 1500, min: 1, integer: true, description: 'optimizer steps (one batch each); ignored when epochs > 0' },
    epochs: { type: 'number', default: 0, min: 0, integer: true, description: 'passes over the data (0: as many as steps need)' },
    batch_size: { type: 'number', default: 16, min: 1, integer: true, description: 'conversations per step' },
    lr: { type: 'number', default: 2e-3, min: 0, description: 'peak learning rate (AdamW)' },
    min_lr: { type: 'number', default: -1, min: -1, description: 'learning rate at the end of the cosine (-1: lr / 10)' },
    warmup: { type: 'number', default: 30, min: 0, integer: true, description: 'linear warmup steps' },
    loss_weighting: { type: 'enum', default: 'token', values: ['token', 'turn'], description: 'how answers share the loss: token (each answer token the same, as LLaVA) or turn (each assistant turn the same, so one-word answers count as much as descriptions)' },
    weight_decay: { type: 'number', default: 0.01, min: 0, description: 'AdamW decoupled weight decay (matrices only)' },
    adam_beta2: { type: 'number', default: 0.999, min: 0, max: 0.99999, description: 'AdamW second-moment decay (LLaMA pretraining uses 0.95)' },
    clip_norm: { type: 'number', default: 1, min: 0, description: 'global gradient-norm clip (0: off)' },
    image_size: { type: 'number', default: DEFAULT_MODEL_CONFIG.vision.imageSize, min: 8, integer: true, description: 'model image side in pixels (images are padded square, resized)' },
    patch_size: { type: 'number', default: DEFAULT_MODEL_CONFIG.vision.patchSize, min: 1, integer: true, description: 'vision patch side (image_size / patch_size squared visual tokens)' },
    vision_width: { type: 'number', default: DEFAULT_MODEL_CONFIG.vision.width, min: 8, integer: true, description: 'vision encoder width' },
    vision_layers: { type: 'number', default: DEFAULT_MODEL_CONFIG.vision.layers, min: 1, integer: true, description: 'vision encoder blocks' },
    vision_heads: { type: 'number', default: DEFAULT_MODEL_CONFIG.vision.heads, min: 1, integer: true, description: 'vision attention heads' },
    width: { type: 'number', default: DEFAULT_MODEL_CONFIG.language.width, min: 8, integer: true, description: 'language model width' },
    layers: { type: 'number', default: DEFAULT_MODEL_CONFIG.language.layers, min: 1, integer: true, description: 'language model blocks' },
    heads: { type: 'number', default: DEFAULT_MODEL_CONFIG.language.heads, min: 1, integer: true, description: 'language model attention heads' },
    positions: { type: 'enum', default: 'rotary', values: ['rotary', 'learned'], description: 'language-model positions: rotary (RoPE, as LLaMA/Vicuna; a question is read wherever it sits in a conversation) or learned (a table added to the embeddings)' },
    rotary_fraction: { type: 'number', default: 1, min: 0.01, max: 1, description: 'share of each head\'s rotary channel pairs that rotate; the rest match by content at any distance (GPT-NeoX rotary_pct)' },
    tie_embeddings: { type: 'boolean', default: false, description: 'language model head shares the token embedding table (GPT-2 style), so a word is read and written through the same vectors' },
    system_prompt: { type: 'string', default: 'vicuna', description: 'system prompt every conversation opens with: vicuna (Vicuna v1\'s, as LLaVA-RLHF), empty for none (a model trained from scratch learns nothing from it; sequences ~20% shorter), or the text; saved in tokenizer_config.json, so evaluation, reward models and PPO prompt the same way. A started or resumed policy keeps its own' },
    max_length: { type: 'number', default: 256, min: 16, integer: true, description: 'context length; longer conversations keep their leading rounds that fit' },
    vocab_size: { type: 'number', default: 1024, min: 128, integer: true, description: 'largest tokenizer vocabulary (BPE trained on the data)' },
    checkpoint_every: { type: 'number', default: 200, min: 0, integer: true, description: 'checkpoint every N steps (0: only at the end)' },
    eval_every: { type: 'number', default: 200, min: 0, integer: true, description: 'held-out loss every N steps (0: only at the end)' },
    log_every: { type: 'number', default: 10, min: 1, integer: true, description: 'a metrics.jsonl line every N steps' },
    eval_images: { type: 'number', default: 200, min: 0, integer: true, description: 'held-out images asked about, the first ones in ground-truth order (0: all held-out and eval images; 200 on the default world ask 1,079 questions)' },
    heldout_loss_questions: { type: 'number', default: 128, min: 0, integer: true, description: 'held-out questions the periodic held-out loss is computed on' },
    vision_pretrain_steps: { type: 'number', default: 600, min: 0, integer: true, description: 'steps of vision pretraining before SFT (the encoder learns the colour/shape tags the world captions mention; our CLIP stand-in); 0: none' },
    vision_batch_size: { type: 'number', default: 32, min: 1, integer: true, description: 'images per vision pretraining step' },
    vision_world: { type: 'path', default: '', description: 'shapes world whose training images vision pretraining learns from (our CLIP stand-in\'s own corpus; made if missing, with vision_world_images images and its own seed); empty: the SFT world\'s training images' },
    vision_world_images: { type: 'number', default: 10000, min: 10, integer: true, description: 'images of vision_world when it is made' },
    vision_lr: { type: 'number', default: -1, min: -1, description: 'vision pretraining peak learning rate (-1: lr)' },
    align_projector: { type: 'boolean', default: false, description: 'after vision pretraining, start the projector so each patch enters the language model as the sum of the embeddings of the words its tags name (src/model/projector-alignment.ts; our stage-1 feature alignment; measured mixed, so off by default); ignored without vision pretraining' },
    freeze_vision: { type: 'boolean', default: true, description: 'keep the pretrained vision encoder frozen during SFT, as LLaVA does (ignored without vision pretraining or init)' },
    threads: { type: 'number', default: 2, min: 1, max: 64, integer: true, description: 'CPU threads computing gradients (data parallel on wasm/cpu; tfjs-wasm uses one core per thread)' },
    resume: { type: 'boolean', default: true, description: 'resume from <out>/checkpoint when it exists' },
    init: { type: 'path', default: '', description: 'policy run folder (or its checkpoint/) to start from: its weights, model config and tokenizer, a fresh optimizer and schedule, no vision pretraining (e.g. a second SFT stage on other data); empty: from scratch' },
  },
  async run(ctx) {
    const p = ctx.params;
    if (ctx.partition.count > 1) throw new InvalidOptionError('partition', 'training is not partitioned', { fix: 'run sft-train without --partition' });
    if (p.image_size % p.patch_size !== 0) throw new InvalidOptionError('params.image_size', `${p.image_size} is not a multiple of patch_size ${p.patch_size}`);
    if (!(p.lr > 0)) throw new InvalidOptionError('params.lr', 'must be positive');
    if (p.vision_lr === 0) throw new InvalidOptionError('params.vision_lr', 'must be positive, or -1 for lr');
    const visionLr = p.vision_lr < 0 ? p.lr : p.vision_lr;
    const systemPrompt = p.system_prompt === 'vicuna' ? VICUNA_SYSTEM_PROMPT : p.system_prompt.trim();
    if (systemPrompt.includes(IMAGE_TAG)) throw new InvalidOptionError('params.system_prompt', `must not hold ${IMAGE_TAG}`);
    const backend = await selectBackend(ctx.backend as BackendChoice, { log: ctx.log });

    // ---- data ---------------------------------------------------------------------------------
    // a complete world (world.json written last) is used as it is, whatever it was made with, as
    // the other pipelines do: every stage of the recipe then sees the same world
    const worldDir = await shapesWorldFor(ctx, p.world, { images: p.world_images });
    const worldSize = (await worldInfo(worldDir)).images;
    if (worldSize !== undefined && worldSize !== p.world_images) {
      ctx.log(`using the existing world ${p.world} (${worldSize} images; world_images=${p.world_images} applies only when a world is made: --set world=DIR for a new one)`);
    }
    let dataDir: string;
    if (p.data === '') {
      // inputs named explicitly, so sft-mix does not (re)make a world of its own; the definition is
      // imported, not looked up by name, so a bundle of this pipeline (bench/gpu-sft.ts) carries it
      dataDir = (await ctx.ensure(sftMix, p.mix === '' ? `runs/sft-mix-${p.aokvqa_mode}` : p.mix, {
        vqav2: path.join(worldDir, 'vqav2'),
        aokvqa: path.join(worldDir, 'aokvqa'),
        flickr30k: path.join(worldDir, 'flickr30k_entities'),
        llava: path.join(worldDir, SHAPES_WORLD_FILES.llava_instruct),
        aokvqa_mode: p.aokvqa_mode,
        aokvqa_image_path: 'coco/train2017/{image_id:012}.jpg',
      })).out;
    } else {
      dataDir = path.resolve(p.data);
    }
    const imageRoot = p.images === '' ? path.join(worldDir, 'images') : path.resolve(p.images);
    const manifest = await readManifest(dataDir);
    if (manifest.schema !== conversationSchema.name) {
      throw new BadInputError(`the shards hold "${manifest.schema}" records, not conversations`, { file: path.join(dataDir, 'manifest.json'), fix: 'point data= at conversation shards (pipelines/sft-mix.ts)' });
    }
    const rows = manifest.total_rows;
    if (rows === 0) throw new BadInputError('the shard folder holds no conversations', { file: dataDir, fix: 'make the SFT mix again' });
    const shards = () => shardSource<Conversation>({ path: dataDir, schema: conversationSchema, name: 'conversations' });

    // ---- tokenizer ----------------------------------------------------------------------------
    const checkpointDir = path.join(ctx.out, CHECKPOINT_DIR);
    const resuming = p.resume && (await exists(path.join(checkpointDir, 'config.json')));
    // a started policy: its config and tokenizer define the model (resuming such a run needs them too)
    const init = p.init === '' ? undefined : await loadCheckpoint(await checkpointFolder(path.resolve(p.init)));
    let tokenizer: TextTokenizer;
    if (resuming) {
      tokenizer = await loadTokenizer(checkpointDir);
      ctx.log(`sft-train: resuming from ${checkpointDir}`);
    } else if (init) {
      tokenizer = init.tokenizer;
      ctx.log(`sft-train: starting from the policy in ${init.dir} (its weights, config and tokenizer; the model-size params do not apply)`);
    } else {
      const corpus = await ctx.flow({ source: shards(), sink: corpusSink(systemPrompt) }, { name: 'corpus' });
      tokenizer = tokenizerFromJson(buildTokenizer(words(corpus.result), { vocabSize: p.vocab_size }), { ...tokenizerConfigFor(), system_prompt: systemPrompt });
    }
    if ((resuming || init) && p.system_prompt !== 'vicuna' && systemPromptOf(tokenizer) !== systemPrompt) {
      ctx.log(`sft-train: system_prompt does not apply to a ${resuming ? 'resumed' : 'started'} policy; its tokenizer's is kept (${JSON.stringify(systemPromptOf(tokenizer).slice(0, 40))})`);
    }
    await writeFile(path.join(ctx.out, 'tokenizer.json'), JSON.stringify(tokenizer.json));
    await writeFile(path.join(ctx.out, 'tokenizer_config.json'), JSON.stringify(tokenizer.config, null, 2) + '\n');

    // ---- model --------------------------------------------------------------------------------
    const config = init ? { ...init.config, heads: ['lm' as const] } : resolveModelConfig({
      vision: { imageSize: p.image_size, patchSize: p.patch_size, width: p.vision_width, layers: p.vision_layers, heads: p.vision_heads },
      language: { vocabSize: tokenizer.vocabSize, width: p.width, layers: p.layers, heads: p.heads, contextLength: p.max_length, tieEmbeddings: p.tie_embeddings, positions: p.positions as PositionEncoding, ...(p.rotary_fraction < 1 ? { rotaryFraction: p.rotary_fraction } : {}) },
      heads: ['lm'],
    }, DEFAULT_MODEL_CONFIG, 'params');
    const images = createImageLoader({ size: config.vision.imageSize, root: imageRoot, cacheSize: 4096 });
    const worldImages = createImageLoader({ size: config.vision.imageSize, root: path.join(worldDir, 'images'), cacheSize: 1024 });
    let model: MultimodalModel = init && !resuming ? (await loadModel(init.dir, { heads: ['lm'], label: 'policy' })).model : createModel(config, { seed: ctx.seed, label: 'policy' });
    const parameters = {
      total: model.parameterCount(),
      vision: model.parameterCount('vision.'),
      projector: model.parameterCount('projector.'),
      language: model.parameterCount('lm.'),
      head: model.parameterCount('head.'),
    };
    ctx.log(`sft-train: ${parameters.total.toLocaleString('en-US')} parameters (vision ${parameters.vision.toLocaleString('en-US')}, projector ${parameters.projector.toLocaleString('en-US')}, language ${parameters.language.toLocaleString('en-US')}); ${imageTokenCount(config)} visual tokens; vocabulary ${tokenizer.vocabSize}; backend ${backend.name}`);

    // ---- held-out questions -------------------------------------------------------------------
    const multichoice: MultichoiceForm = p.heldout_multichoice === 'auto' ? (p.aokvqa_mode === 'reasoning' ? 'reasoning' : 'direct') : (p.heldout_multichoice as MultichoiceForm);
    const questions = await loadHeldoutQuestions(worldDir, { seed: ctx.seed, maxImages: p.eval_images, multichoice });
    if (questions.length === 0) throw new BadInputError('the shapes world has no held-out images to ask about', { file: worldDir, fix: 'make the world with heldout_fraction > 0' });
    const stride = Math.max(1, Math.floor(questions.length / Math.max(1, p.heldout_loss_questions)));
    const lossQuestions = p.heldout_loss_questions === 0 ? [] : questions.filter((_, i) => i % stride === 0).slice(0, p.heldout_loss_questions);
    const heldout = await heldoutLossBatches({ model, tokenizer, images: worldImages, questions: lossQuestions });

    // ---- vision pretraining (stage 1) ---------------------------------------------------------
    // skipped when resuming: the SFT checkpoint holds the pretrained (frozen) encoder already
    let vision: VisionPretrainerSummary | undefined;
    if (p.vision_pretrain_steps > 0 && !resuming && !init) {
      const corpusDir = p.vision_world === '' ? worldDir : await shapesWorldFor(ctx, p.vision_world, { images: p.vision_world_images, eval_images: 20, flickr_images: 0 }, ctx.seed + VISION_WORLD_SEED_OFFSET);
      const corpus = corpusDir === worldDir ? { dir: worldDir, images: worldImages } : { dir: corpusDir, images: createImageLoader({ size: config.vision.imageSize, root: path.join(corpusDir, 'images'), cacheSize: 0 }) };
      const align = p.align_projector ? tokenizer : null;
      vision = await pretrainVision(ctx, model, corpus, { dir: worldDir, images: worldImages }, p.vision_pretrain_steps, p.vision_batch_size, visionLr, align);
      const h = vision.heldout;
      ctx.log(`sft-train: vision pretraining ${vision.steps} steps, loss ${vision.final_loss.toFixed(4)}${h ? `, held-out tags: present ${(100 * h.present_recall).toFixed(1)}%, absent ${(100 * h.absent_accuracy).toFixed(1)}% (${h.images} images)${h.by_group ? `; present by group: ${Object.entries(h.by_group).map(([g, sc]) => `${g} ${(100 * sc.present_recall).toFixed(1)}%`).join(', ')}` : ''}` : ''}`);
    }
    // a started policy's encoder was pretrained (or trained) already: frozen the same way
    const frozen = (p.vision_pretrain_steps > 0 || init) && p.freeze_vision ? ['vision.'] : [];

    // ---- training -----------------------------------------------------------------------------
    const steps = p.epochs > 0 ? Math.ceil((rows * p.epochs) / p.batch_size) : p.steps;
    let epochs = p.epochs > 0 ? p.epochs : Math.ceil((steps * p.batch_size) / rows);
    // a margin for rejected records, so the data does not run out just before the last steps
    if (p.epochs === 0 && epochs * rows - steps * p.batch_size < 0.02 * rows) epochs++;
    let done = 0;
    if (resuming) {
      const state = JSON.parse(await readFile(path.join(checkpointDir, 'trainer_state.json'), 'utf8')) as { step?: number };
      done = state.step ?? 0;
    }
    let train: SftTrainerSummary | undefined;
    if (done >= steps) {
      ctx.log(`sft-train: the checkpoint has finished ${done} steps; evaluating it`);
      model.dispose();
      model = (await loadModel(checkpointDir)).model;
    } else {
      const flow = await ctx.flow({
        source: repeatEpochs({ source: shards(), epochs, name: 'conversations', expectedRecords: steps * p.batch_size }),
        stages: [
          tokenizeConversation({ tokenizer, images, imageTokens: imageTokenCount(config), maxLength: p.max_length }),
          bucketBatch({ batchSize: p.batch_size }),
        ] as never[],
        sink: sftTrainer({
          model, tokenizer, out: ctx.out, steps, lr: p.lr, warmup: Math.min(p.warmup, steps),
          minLr: p.min_lr < 0 ? p.lr / 10 : Math.min(p.min_lr, p.lr),
          optimizer: { weightDecay: p.weight_decay, beta2: p.adam_beta2 }, clipNorm: p.clip_norm,
          checkpointEvery: p.checkpoint_every, evalEvery: p.eval_every, logEvery: p.log_every,
          heldout, examplesPerEpoch: rows, resume: p.resume, progress: ctx.progress, frozen, lossWeighting: p.loss_weighting as LossWeighting,
          threads: backend.name === 'wasm' || backend.name === 'cpu' ? p.threads : 1,
        }),
      }, { name: 'train' });
      train = flow.result;
      ctx.log(`sft-train: ${train.steps} steps, ${train.tokens_per_s} tokens/s, ${train.ms_per_step} ms/step, loss ${train.final_loss.toFixed(3)}, held-out loss ${train.heldout_loss?.toFixed(3) ?? '-'}`);
    }

    // ---- held-out accuracy --------------------------------------------------------------------
    const bar = ctx.progress.start('heldout-eval', { total: questions.length, unit: 'questions' });
    const report = await evaluateShapesAccuracy({
      model, tokenizer, images: worldImages, questions, signal: ctx.signal,
      onProgress: (d) => bar.update(d),
    });
    bar.stop();
    const { answers, ...scores } = report;
    await writeFile(path.join(ctx.out, 'heldout_answers.jsonl'), answers.map((a) => JSON.stringify(a)).join('\n') + '\n');
    const heldoutLossValue = train?.heldout_loss ?? (heldout.length > 0 ? await heldoutLoss(model, heldout) : undefined);
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    ctx.log(`sft-train: held-out yes/no ${pct(scores.yesno_accuracy)} (${scores.yesno.total}), multiple choice ${pct(scores.multichoice_accuracy)} (${scores.multichoice.total})`);
    const hard = (c: string) => (scores.by_contrast[c]!.total === 0 ? 'none asked' : `${pct(scores.by_contrast[c]!.accuracy)} (${scores.by_contrast[c]!.total})`);
    ctx.log(`sft-train: where the colour alone does not tell: yes/no about a colour that is there on another shape ${hard('colour-elsewhere')}, multiple choice with several options in the image ${hard('several-options-in-image')}`);
    model.dispose();
    return {
      heldout: {
        loss: heldoutLossValue ?? null,
        yesno_accuracy: scores.yesno_accuracy,
        multichoice_accuracy: scores.multichoice_accuracy,
        yesno: scores.yesno,
        multichoice: scores.multichoice,
        by_form: scores.by_form,
        by_contrast: scores.by_contrast,
        yes_rate: scores.yes_rate,
        questions: questions.length,
        loss_questions: lossQuestions.length,
        answers: 'heldout_answers.jsonl',
        generate_s: scores.generate_s,
      },
      parameters,
      backend: { name: backend.name, detail: backend.detail },
      tokens_per_s: train?.tokens_per_s ?? null,
      vision_pretraining: vision ?? null,
      init: init?.dir ?? null,
      frozen,
      train: train ?? { steps: done, resumed_from: done, note: 'checkpoint already complete; not trained again' },
      data: { dir: dataDir, rows, epochs, steps, batch_size: p.batch_size },
      world: worldDir,
      model: config,
      tokenizer: { vocab_size: tokenizer.vocabSize, file: 'tokenizer.json' },
      checkpoint: CHECKPOINT_DIR,
      metrics: METRICS_FILE,
    };
  },
});

/**
 * Stage 1: the vision encoder learns the tags the world's COCO-style captions mention (training
 * images only; held-out and eval images are scored from their ground truth).
 */
async function pretrainVision(
  ctx: Parameters<Parameters<typeof definePipeline>[0]['run']>[0],
  model: MultimodalModel,
  corpus: { dir: string; images: ReturnType<typeof createImageLoader> },
  scored: { dir: string; images: ReturnType<typeof createImageLoader> },
  steps: number,
  batchSize: number,
  lr: number,
  alignWith: TextTokenizer | null,
): Promise<VisionPretrainerSummary & { projector_alignment?: ProjectorAlignment }> {
  const vocabulary = shapesWorldTags();
  const tagsOf = captionTagger(vocabulary);
  const truth = await loadShapesTruth(path.join(corpus.dir, SHAPES_WORLD_FILES.ground_truth));
  // the SFT world's held-out images stay unseen; a corpus of its own has nothing to keep out
  const kept = new Set(corpus.dir === scored.dir ? (await worldInfo(corpus.dir)).heldout : []);
  const pathOf = new Map<number, string>();
  for (const gt of truth.values()) if (gt.dataset === 'coco' && gt.split === 'train' && !kept.has(gt.image_id)) pathOf.set(gt.image_id, gt.image);
  if (pathOf.size === 0) throw new BadInputError('the shapes world has no training images for vision pretraining', { file: corpus.dir, fix: 'make the world again, or set vision_pretrain_steps=0' });
  const heldout: TaggedImage[] = [];
  for (const gt of (await heldoutImages(scored.dir)).slice(0, 256)) {
    heldout.push({ image: gt.image, pixels: await scored.images.load(gt.image), tags: tagsOf(gt.objects.map((o) => `${o.color} ${o.shape}`)) });
  }
  let alignment: ProjectorAlignment | undefined;
  const withHead = alignWith === null ? undefined : async function align(head: TagHead): Promise<void> {
    // single-word tags only: "red circle" would count "red" and "circle" twice
    const tagTokens = vocabulary.map((tag) => (/\s/.test(tag) ? [] : alignWith.encode(tag)));
    const sample = [...pathOf.values()].slice(0, ALIGN_IMAGES);
    const size = model.config.vision.imageSize ** 2 * 3;
    const pixels = new Float32Array(sample.length * size);
    for (let i = 0; i < sample.length; i++) pixels.set(await corpus.images.load(sample[i]!), i * size);
    alignment = await alignProjector(model, head, { pixels, count: sample.length, tagTokens });
    ctx.log(`sft-train: projector aligned to the word embeddings of the tags on ${alignment.patches} patches (R^2 ${alignment.r2.toFixed(3)}; visual tokens' mean norm ${alignment.visual_norm.toFixed(2)}, word embeddings' ${alignment.embedding_norm.toFixed(2)})`);
  };
  // every training image has captions, so the count is exact: no spare epoch to drain
  const epochs = Math.max(1, Math.ceil((steps * batchSize) / pathOf.size));
  const flow = await ctx.flow({
    source: repeatEpochs({ source: cocoCaptionsSource({ file: path.join(corpus.dir, SHAPES_WORLD_FILES.coco_captions), name: 'captions' }), epochs, name: 'captions', expectedRecords: steps * batchSize }),
    stages: [
      filter<CocoCaptionsItem>((x) => pathOf.has(x.image_id), { name: 'training-images' }),
      map<CocoCaptionsItem, TaggedImage>(async (x) => ({ image: pathOf.get(x.image_id)!, pixels: await corpus.images.load(pathOf.get(x.image_id)!), tags: tagsOf(x.captions) }), { name: 'tag', concurrency: 8 }),
      batch<TaggedImage>(batchSize),
    ] as never[],
    sink: visionPretrainer({ model, tags: vocabulary.length, steps, lr, warmup: Math.min(20, steps), out: ctx.out, heldout, groups: shapesWorldTagGroups(), evalEvery: 100, progress: ctx.progress, withHead }),
  }, { name: 'vision' });
  return alignment ? { ...flow.result, projector_alignment: alignment } : flow.result;
}

