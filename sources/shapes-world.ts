/**
 * "The shapes world": factflow's embedded default data. A seeded generator of small images
 * of coloured shapes plus raw annotation files in the real formats and file names of the
 * datasets LLaVA-RLHF uses (VQA-v2, A-OKVQA, COCO captions, Flickr30k Entities, LLaVA
 * instructions, LLaVA-RLHF preferences, POPE, MMHal-Bench), so every converter and every
 * stage of the recipe has input without downloads. Same seed and options => byte-identical
 * files. Everything is written incrementally, so 100k images run in bounded memory.
 *
 * Layout under `out`:
 *   images/coco/train2017/<id:012>.jpg            train COCO-style images (SFT + held-out)
 *   images/flickr30k/<flickr_id>.jpg              Flickr30k-style images
 *   images/coco/val2014/COCO_val2014_<id:012>.jpg evaluation images (POPE, MMHal only)
 *   ground_truth.jsonl                            one GroundTruth per image
 *   vqav2/, aokvqa/, coco/annotations/, flickr30k_entities/, llava/, pope/, mmhal/
 *   world.json                                    params, counts, vocabulary, id splits (written last)
 *
 * Image splits: COCO train images are either SFT images (VQA-v2 train, A-OKVQA train and
 * LLaVA instruct use only these) or held out (A-OKVQA val and the preference file use only
 * these; RL prompts should too). COCO captions cover both, as they are the reward model's
 * facts. Evaluation images appear only in POPE and MMHal.
 */
import { access, mkdir, writeFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Rng, deriveSeed, hash32 } from '../src/stream/random.ts';
import { AbortedError, InvalidOptionError } from '../src/errors.ts';
import {
  BACKGROUNDS,
  COLORS,
  POSITIONS,
  SHAPES,
  SIZES,
  objectKey,
  objectPhrase,
  type GroundTruth,
} from '../schemas/shapes-world.ts';
import { COMPANION_RATE, GRID_CELL, GRID_SIZE_PIXELS, IMAGE_SIZE, LAYOUTS, SIZE_PIXELS, createCooccurrence, sampleScene, type Cooccurrence, type Layout, type Scene } from './shapes-world-scene.ts';
import { JPEG_QUALITY, createTaskPool, renderScene } from './shapes-world-render.ts';
import {
  MMHAL_TYPES,
  aokvqaItems,
  cocoCaptions,
  flickrSentences,
  llavaConversation,
  llavaDetail,
  mmhalItem,
  preferencePair,
  shortId,
  textObjects,
  vqaAnswers,
  vqaItems,
  type MmhalType,
} from './shapes-world-text.ts';
import {
  JsonArrayWriter,
  TextFileWriter,
  cocoCaptionsHead,
  cocoCaptionsMiddle,
  flickrXml,
  indentedJson,
  pyJson,
  vqaAnnotationsHead,
  vqaQuestionsHead,
} from './shapes-world-formats.ts';

export interface ShapesWorldOptions {
  /** Output folder (created). */
  out: string;
  /** Run seed; default 0. */
  seed?: number;
  /** Train COCO-style images (SFT + held-out); default 300. */
  images?: number;
  /** Flickr30k-style images; default round(images / 5). */
  flickrImages?: number;
  /** Evaluation images (POPE, MMHal); default max(20, round(images / 6)). */
  evalImages?: number;
  /** Share of train images held out of SFT for preference / RL; default 0.25. */
  heldoutFraction?: number;
  /** Share of LLaVA detailed descriptions that also name an absent object; default 0.3. */
  hallucinationRate?: number;
  /**
   * Share of the absent kinds that VQA-v2 and LLaVA yes/no questions ask about whose colour is in
   * the image on another shape (the "no"s colour presence cannot decide); default 0 (as drawn).
   */
  colorElsewhere?: number;
  /** Share of preference labels the simulated annotator flips; default 0.05. */
  annotatorNoise?: number;
  /** Objects per image, 1..maxObjects; default 4 (at most 6). */
  maxObjects?: number;
  /** Object placement: 'grid' (default; one object per 16-px cell) or 'free'. */
  layout?: Layout;
  /** Preference pairs per held-out image; default 2. */
  preferencePerImage?: number;
  /** MMHal questions per question type; default 12 (96 in all, as the real benchmark). */
  mmhalPerType?: number;
  /** Images rendered at once; default 4. */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called as images are generated (every few images and at the end). */
  onProgress?: (done: number, total: number) => void;
}

export type ResolvedShapesWorldOptions = Required<Omit<ShapesWorldOptions, 'signal' | 'onProgress'>> & Pick<ShapesWorldOptions, 'signal' | 'onProgress'>;

export interface ShapesWorldCounts {
  images: { coco_train: number; sft: number; heldout: number; flickr30k: number; eval: number; total: number };
  objects: number;
  vqav2: { questions: number; yes: number; no: number };
  aokvqa: { train: number; val: number };
  coco_captions: { images: number; captions: number };
  flickr30k: { train: number; val: number; test: number; multi_box_entities: number; nobndbox_entities: number };
  llava_instruct: { records: number; conversations: number; detail: number; detail_hallucinated: number };
  preference: { pairs: number; hallucination_pairs: number; trap_pairs: number; noise_flips: number };
  pope: { random: number; popular: number; adversarial: number };
  mmhal: number;
}

export interface ShapesWorldResult {
  out: string;
  seed: number;
  counts: ShapesWorldCounts;
  /** Wall time and rate (not written to any file: files must not depend on timing). */
  elapsed_s: number;
  images_per_s: number;
}

/** Relative paths of every annotation file, as listed in world.json. */
export const SHAPES_WORLD_FILES = {
  ground_truth: 'ground_truth.jsonl',
  vqav2_questions: 'vqav2/v2_OpenEnded_mscoco_train2014_questions.json',
  vqav2_annotations: 'vqav2/v2_mscoco_train2014_annotations.json',
  aokvqa_train: 'aokvqa/aokvqa_v1p0_train.json',
  aokvqa_val: 'aokvqa/aokvqa_v1p0_val.json',
  coco_captions: 'coco/annotations/captions_train2014.json',
  flickr30k_sentences: 'flickr30k_entities/Sentences',
  flickr30k_annotations: 'flickr30k_entities/Annotations',
  flickr30k_train: 'flickr30k_entities/train.txt',
  flickr30k_val: 'flickr30k_entities/val.txt',
  flickr30k_test: 'flickr30k_entities/test.txt',
  llava_instruct: 'llava/llava_instruct_150k.json',
  preference: 'llava/llava_7b_v1_preference.json',
  pope_random: 'pope/coco_pope_random.json',
  pope_popular: 'pope/coco_pope_popular.json',
  pope_adversarial: 'pope/coco_pope_adversarial.json',
  mmhal: 'mmhal/response_template.json',
  world: 'world.json',
} as const;

const COCO_PRIME = 999_983;
const FLICKR_PRIME = 999_999_937;
const MAX_IMAGES = 500_000;

function checkNumber(name: string, value: unknown, min: number, max: number, integer: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new InvalidOptionError(name, `must be ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got ${JSON.stringify(value)}`, {
      fix: `pass ${name} between ${min} and ${max}`,
    });
  }
  return value;
}

/** Checks and fills in options; throws InvalidOptionError naming the option. */
export function resolveShapesWorldOptions(options: ShapesWorldOptions): ResolvedShapesWorldOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'must be an object');
  if (typeof options.out !== 'string' || options.out.length === 0) {
    throw new InvalidOptionError('out', 'must be a non-empty folder path', { fix: 'pass the folder the world is written to' });
  }
  const images = checkNumber('images', options.images ?? 300, 1, MAX_IMAGES, true);
  const resolved: ResolvedShapesWorldOptions = {
    out: path.resolve(options.out),
    seed: checkNumber('seed', options.seed ?? 0, 0, 0xffffffff, true),
    images,
    flickrImages: checkNumber('flickrImages', options.flickrImages ?? Math.round(images / 5), 0, MAX_IMAGES, true),
    evalImages: checkNumber('evalImages', options.evalImages ?? Math.max(20, Math.round(images / 6)), 1, 100_000, true),
    heldoutFraction: checkNumber('heldoutFraction', options.heldoutFraction ?? 0.25, 0, 0.9, false),
    hallucinationRate: checkNumber('hallucinationRate', options.hallucinationRate ?? 0.3, 0, 1, false),
    annotatorNoise: checkNumber('annotatorNoise', options.annotatorNoise ?? 0.05, 0, 0.5, false),
    colorElsewhere: checkNumber('colorElsewhere', options.colorElsewhere ?? 0, 0, 1, false),
    maxObjects: checkNumber('maxObjects', options.maxObjects ?? 4, 1, 6, true),
    layout: checkLayout(options.layout ?? 'grid'),
    preferencePerImage: checkNumber('preferencePerImage', options.preferencePerImage ?? 2, 0, 20, true),
    mmhalPerType: checkNumber('mmhalPerType', options.mmhalPerType ?? 12, 0, 1000, true),
    concurrency: checkNumber('concurrency', options.concurrency ?? 4, 1, 64, true),
    signal: options.signal,
    onProgress: options.onProgress,
  };
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new InvalidOptionError('onProgress', 'must be a function');
  return resolved;
}

function checkLayout(layout: unknown): Layout {
  if (!LAYOUTS.includes(layout as Layout)) throw new InvalidOptionError('layout', `must be one of ${LAYOUTS.join(', ')}, got ${JSON.stringify(layout)}`);
  return layout as Layout;
}

const pad12 = (n: number) => String(n).padStart(12, '0');

/** Deterministic id permutations: distinct ids that look random, from the seed alone. */
function idMaps(seed: number) {
  const ca = 1 + (deriveSeed(seed, 'coco-id-a') % (COCO_PRIME - 1));
  const cb = deriveSeed(seed, 'coco-id-b') % COCO_PRIME;
  const fa = 1 + (deriveSeed(seed, 'flickr-id-a') % (FLICKR_PRIME - 1));
  const fb = deriveSeed(seed, 'flickr-id-b') % FLICKR_PRIME;
  return {
    // index -> COCO id in 1..COCO_PRIME; train uses indices [0, images), eval [images, images+eval)
    coco: (i: number) => ((ca * i + cb) % COCO_PRIME) + 1,
    // ca * i < 2^53 for i < COCO_PRIME; fa * j < 2^53 for j < 2^22
    flickr: (j: number) => 1_000_000_000 + ((fa * j + fb) % FLICKR_PRIME),
  };
}

type ImageKind = 'coco-train' | 'flickr' | 'eval';

interface Sampled {
  readonly rng: Rng;
  readonly scene: Scene;
  readonly gt: GroundTruth;
}

function sampleImage(seed: number, cooc: Cooccurrence, o: Pick<ResolvedShapesWorldOptions, 'maxObjects' | 'layout'>, kind: ImageKind, index: number, id: number): Sampled {
  const rng = new Rng(deriveSeed(seed, `${kind}/${index}`));
  const scene = sampleScene(rng.fork('scene'), cooc, o.maxObjects, o.layout);
  const image = kind === 'coco-train' ? `coco/train2017/${pad12(id)}.jpg` : kind === 'flickr' ? `flickr30k/${id}.jpg` : `coco/val2014/COCO_val2014_${pad12(id)}.jpg`;
  const gt: GroundTruth = {
    image,
    image_id: id,
    dataset: kind === 'flickr' ? 'flickr30k' : 'coco',
    split: kind === 'eval' ? 'eval' : 'train',
    width: IMAGE_SIZE,
    height: IMAGE_SIZE,
    background: scene.background,
    objects: scene.objects,
  };
  return { rng, scene, gt };
}

function dateCaptured(rng: Rng): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `2013-${two(rng.range(1, 12))}-${two(rng.range(1, 28))} ${two(rng.range(0, 23))}:${two(rng.range(0, 59))}:${two(rng.range(0, 59))}`;
}

/** Generates a whole shapes world under `options.out`; returns the counts. */
export async function generateShapesWorld(options: ShapesWorldOptions): Promise<ShapesWorldResult> {
  const o = resolveShapesWorldOptions(options);
  const started = performance.now();
  const { out, seed } = o;
  const cooc = createCooccurrence(deriveSeed(seed, 'cooccurrence'));
  const ids = idMaps(seed);
  const heldoutCount = o.heldoutFraction > 0 && o.images >= 2 ? Math.max(1, Math.round(o.images * o.heldoutFraction)) : 0;
  const sftCount = o.images - heldoutCount;
  const total = o.images + o.flickrImages + o.evalImages;
  const F = SHAPES_WORLD_FILES;
  const at = (rel: string) => path.join(out, rel);

  for (const dir of ['images/coco/train2017', 'images/coco/val2014', 'images/flickr30k', 'vqav2', 'aokvqa', 'coco/annotations', F.flickr30k_sentences, F.flickr30k_annotations, 'llava', 'pope', 'mmhal']) {
    await mkdir(at(dir), { recursive: true });
  }

  const writers: TextFileWriter[] = [];
  const open = (rel: string) => {
    const w = new TextFileWriter(at(rel));
    writers.push(w);
    return w;
  };
  const gtOut = open(F.ground_truth);
  const vqaQ = await JsonArrayWriter.open(open(F.vqav2_questions), vqaQuestionsHead('train2014'), ', ', ']}');
  const vqaA = await JsonArrayWriter.open(open(F.vqav2_annotations), vqaAnnotationsHead('train2014'), ', ', ']}');
  const aokTrain = await JsonArrayWriter.open(open(F.aokvqa_train), '[', ', ', ']');
  const aokVal = await JsonArrayWriter.open(open(F.aokvqa_val), '[', ', ', ']');
  const captionsOut = open(F.coco_captions);
  const captionImages = await JsonArrayWriter.open(captionsOut, cocoCaptionsHead(), ', ', cocoCaptionsMiddle());
  const captionPartPath = 'coco/annotations/.captions_train2014.annotations.part';
  const captionAnns = await JsonArrayWriter.open(open(captionPartPath), '', ', ', '');
  const llava = await JsonArrayWriter.open(open(F.llava_instruct), '[\n', ',\n', '\n]');
  const prefs = await JsonArrayWriter.open(open(F.preference), '[\n', ',\n', '\n]');
  const flickrSplits = { train: open(F.flickr30k_train), val: open(F.flickr30k_val), test: open(F.flickr30k_test) };

  const counts: ShapesWorldCounts = {
    images: { coco_train: o.images, sft: sftCount, heldout: heldoutCount, flickr30k: o.flickrImages, eval: o.evalImages, total },
    objects: 0,
    vqav2: { questions: 0, yes: 0, no: 0 },
    aokvqa: { train: 0, val: 0 },
    coco_captions: { images: 0, captions: 0 },
    flickr30k: { train: 0, val: 0, test: 0, multi_box_entities: 0, nobndbox_entities: 0 },
    llava_instruct: { records: 0, conversations: 0, detail: 0, detail_hallucinated: 0 },
    preference: { pairs: 0, hallucination_pairs: 0, trap_pairs: 0, noise_flips: 0 },
    pope: { random: 0, popular: 0, adversarial: 0 },
    mmhal: 0,
  };
  const splits = { train: [] as number[], heldout: [] as number[], eval: [] as number[], flickr30k: { train: [] as number[], val: [] as number[], test: [] as number[] } };
  // Image-level statistics of train COCO scenes, for POPE's popular and adversarial settings.
  const frequency = new Map<string, number>();
  const cooccur = new Map<string, Map<string, number>>();
  const pool = createTaskPool(o.concurrency);
  const hash = (text: string) => hash32(text, seed);
  let done = 0;
  let captionId = 0;
  const progress = () => {
    done++;
    if (o.onProgress && (done % 50 === 0 || done === total)) o.onProgress(done, total);
  };
  const checkAbort = () => {
    if (o.signal?.aborted) throw new AbortedError('shapes-world generation was aborted', { cause: o.signal.reason });
  };

  try {
    // ---- train COCO images -------------------------------------------------------------
    for (let i = 0; i < o.images; i++) {
      checkAbort();
      const id = ids.coco(i);
      const heldout = i >= sftCount;
      const { rng, scene, gt } = sampleImage(seed, cooc, o, 'coco-train', i, id);
      (heldout ? splits.heldout : splits.train).push(id);
      counts.objects += gt.objects.length;
      await gtOut.write(JSON.stringify(gt) + '\n');
      const keys = [...new Set(gt.objects.map(objectKey))];
      for (const a of keys) {
        frequency.set(a, (frequency.get(a) ?? 0) + 1);
        let row = cooccur.get(a);
        if (!row) cooccur.set(a, (row = new Map()));
        for (const b of keys) if (b !== a) row.set(b, (row.get(b) ?? 0) + 1);
      }

      // COCO captions: every train image (the facts for the reward model)
      const crng = rng.fork('captions');
      await captionImages.add(
        pyJson({
          license: crng.range(1, 8),
          file_name: `COCO_train2014_${pad12(id)}.jpg`,
          coco_url: `http://shapes-world.invalid/train2014/COCO_train2014_${pad12(id)}.jpg`,
          height: gt.height,
          width: gt.width,
          date_captured: dateCaptured(crng),
          flickr_url: `http://shapes-world.invalid/flickr/${id}_z.jpg`,
          id,
        }),
      );
      counts.coco_captions.images++;
      for (const caption of cocoCaptions(gt, crng)) {
        await captionAnns.add(pyJson({ image_id: id, id: ++captionId, caption }));
        counts.coco_captions.captions++;
      }

      if (!heldout) {
        // VQA-v2
        const vrng = rng.fork('vqav2');
        const items = vqaItems(gt, cooc, vrng, o.colorElsewhere);
        for (let k = 0; k < items.length; k++) {
          const item = items[k]!;
          const question_id = id * 1000 + k;
          await vqaQ.add(pyJson({ image_id: id, question: item.question, question_id }));
          await vqaA.add(
            pyJson({
              question_type: item.question_type,
              multiple_choice_answer: item.answer,
              answers: vqaAnswers(item, vrng),
              image_id: id,
              answer_type: item.answer_type,
              question_id,
            }),
          );
          counts.vqav2.questions++;
          if (item.answer === 'yes') counts.vqav2.yes++;
          if (item.answer === 'no' && item.answer_type === 'yes/no') counts.vqav2.no++;
        }
        // LLaVA instruct: one conversation and one detailed description per SFT image
        const lrng = rng.fork('llava');
        await llava.add(indentedJson({ id: pad12(id), image: `${pad12(id)}.jpg`, conversations: llavaConversation(gt, cooc, lrng, o.colorElsewhere) }, 1));
        const detail = llavaDetail(gt, cooc, lrng, o.hallucinationRate);
        await llava.add(indentedJson({ id: pad12(id), image: `${pad12(id)}.jpg`, conversations: detail.turns }, 1));
        counts.llava_instruct.records += 2;
        counts.llava_instruct.conversations++;
        counts.llava_instruct.detail++;
        if (detail.invented.length > 0) counts.llava_instruct.detail_hallucinated++;
      } else {
        // preference pairs on held-out images
        const prng = rng.fork('preference');
        for (let k = 0; k < o.preferencePerImage; k++) {
          const pair = preferencePair(gt, cooc, prng, o.annotatorNoise);
          await prefs.add(
            indentedJson(
              {
                id: `${pad12(id)}_${k}`,
                image: `${pad12(id)}.jpg`,
                conversations: pair.conversations,
                output_1: { from: 'gpt', value: pair.output_1 },
                output_2: { from: 'gpt', value: pair.output_2 },
                preference: pair.preference,
                hallucination: pair.hallucination,
              },
              1,
            ),
          );
          counts.preference.pairs++;
          if (pair.hallucination) counts.preference.hallucination_pairs++;
          if (pair.trap) counts.preference.trap_pairs++;
          if (pair.flipped) counts.preference.noise_flips++;
        }
      }

      // A-OKVQA: train split on SFT images, val split on held-out images
      const arng = rng.fork('aokvqa');
      const aitems = aokvqaItems(gt, arng);
      for (let k = 0; k < aitems.length; k++) {
        const item = aitems[k]!;
        const direct = vqaAnswers(item, arng).map((a) => a.answer);
        const record = {
          split: heldout ? 'val' : 'train',
          image_id: id,
          question_id: shortId(`aokvqa/${id}/${k}`, hash),
          question: item.question,
          choices: item.choices,
          correct_choice_idx: item.correct_choice_idx,
          direct_answers: direct,
          difficult_direct_answer: direct.filter((a) => a !== item.answer).length >= 2,
          rationales: item.rationales,
        };
        await (heldout ? aokVal : aokTrain).add(pyJson(record));
        if (heldout) counts.aokvqa.val++;
        else counts.aokvqa.train++;
      }

      await pool.add(() => renderScene(scene, at(`images/${gt.image}`)));
      progress();
    }

    // ---- Flickr30k images ---------------------------------------------------------------
    // The real split is about 94/3/3; the last ~5% of (permuted) ids go to val, then test.
    const flickrHeld = o.flickrImages >= 3 ? Math.max(1, Math.round(o.flickrImages * 0.05)) : 0;
    for (let j = 0; j < o.flickrImages; j++) {
      checkAbort();
      const id = ids.flickr(j);
      const { rng, scene, gt } = sampleImage(seed, cooc, o, 'flickr', j, id);
      counts.objects += gt.objects.length;
      await gtOut.write(JSON.stringify(gt) + '\n');
      const split = j >= o.flickrImages - flickrHeld ? 'test' : j >= o.flickrImages - 2 * flickrHeld ? 'val' : 'train';
      splits.flickr30k[split].push(id);
      counts.flickr30k[split]++;
      await flickrSplits[split].write(`${id}\n`);
      const { lines, entities } = flickrSentences(gt, 100_000 + 100 * j, rng.fork('flickr'));
      counts.flickr30k.multi_box_entities += entities.filter((e) => e.boxes.length > 1).length;
      counts.flickr30k.nobndbox_entities += entities.filter((e) => e.nobndbox).length;
      const sentences = lines.join('\n') + '\n';
      const xml = flickrXml(`${id}.jpg`, gt.width, gt.height, entities);
      await pool.add(async () => {
        await writeFile(at(`${F.flickr30k_sentences}/${id}.txt`), sentences);
        await writeFile(at(`${F.flickr30k_annotations}/${id}.xml`), xml);
        await renderScene(scene, at(`images/${gt.image}`));
      });
      progress();
    }

    // ---- evaluation images --------------------------------------------------------------
    for (let k = 0; k < o.evalImages; k++) {
      checkAbort();
      const id = ids.coco(o.images + k);
      const { scene, gt } = sampleImage(seed, cooc, o, 'eval', k, id);
      splits.eval.push(id);
      counts.objects += gt.objects.length;
      await gtOut.write(JSON.stringify(gt) + '\n');
      await pool.add(() => renderScene(scene, at(`images/${gt.image}`)));
      progress();
    }
    await pool.drain();

    // ---- POPE (needs the train statistics, so it comes after the loop) --------------------
    const keyOrder = new Map(cooc.kinds.map((k, i) => [k.key, i]));
    const byFrequency = (a: string, b: string) => (frequency.get(b) ?? 0) - (frequency.get(a) ?? 0) || keyOrder.get(a)! - keyOrder.get(b)!;
    const pope = {
      random: open(F.pope_random),
      popular: open(F.pope_popular),
      adversarial: open(F.pope_adversarial),
    };
    const popeIds = { random: 0, popular: 0, adversarial: 0 };
    for (let k = 0; k < o.evalImages; k++) {
      checkAbort();
      const id = ids.coco(o.images + k);
      const { rng, gt } = sampleImage(seed, cooc, o, 'eval', k, id);
      const prng = rng.fork('pope');
      const present = [...new Set(gt.objects.map(objectKey))];
      const yes = prng.shuffle(present.slice()).slice(0, 3);
      const absent = cooc.kinds.map((x) => x.key).filter((key) => !present.includes(key));
      const adversarialScore = (key: string) => present.reduce((s, p) => s + (cooccur.get(p)?.get(key) ?? 0), 0);
      const negatives = {
        random: prng.shuffle(absent.slice()).slice(0, yes.length),
        popular: absent.slice().sort(byFrequency).slice(0, yes.length),
        adversarial: absent.slice().sort((a, b) => adversarialScore(b) - adversarialScore(a) || byFrequency(a, b)).slice(0, yes.length),
      };
      const image = `COCO_val2014_${pad12(id)}.jpg`;
      for (const setting of ['random', 'popular', 'adversarial'] as const) {
        for (let q = 0; q < yes.length; q++) {
          for (const [key, label] of [[yes[q]!, 'yes'], [negatives[setting][q]!, 'no']] as const) {
            await pope[setting].write(pyJson({ question_id: ++popeIds[setting], image, text: `Is there a ${key} in the image?`, label }) + '\n');
          }
        }
      }
    }
    counts.pope = { ...popeIds };

    // ---- MMHal-Bench template -------------------------------------------------------------
    const mrng = new Rng(deriveSeed(seed, 'mmhal'));
    const evalOrder = mrng.shuffle(Array.from({ length: o.evalImages }, (_, k) => k));
    const mmhal: unknown[] = [];
    MMHAL_TYPES.forEach((type: MmhalType, t) => {
      for (let j = 0; j < o.mmhalPerType; j++) {
        for (let tries = 0; tries < Math.min(o.evalImages, 50); tries++) {
          const k = evalOrder[(t * o.mmhalPerType + j + tries) % o.evalImages]!;
          const id = ids.coco(o.images + k);
          const { gt } = sampleImage(seed, cooc, o, 'eval', k, id);
          const item = mmhalItem(type, gt, cooc, mrng);
          if (!item) continue;
          mmhal.push({
            question_type: type,
            question_topic: item.question_topic,
            image_id: hash(`mmhal/${id}`).toString(16).padStart(8, '0') + hash(`mmhal/${id}/2`).toString(16).padStart(8, '0'),
            image_src: gt.image,
            image_content: textObjects(gt).map((x) => {
              const p = objectPhrase(x, { article: 'none' });
              return p.charAt(0).toUpperCase() + p.slice(1);
            }),
            question: item.question,
            gt_answer: item.gt_answer,
            model_answer: '',
          });
          break;
        }
      }
    });
    counts.mmhal = mmhal.length;
    await writeFile(at(F.mmhal), JSON.stringify(mmhal, null, 2));

    // ---- finish files, then world.json last (its presence marks a complete world) ----------
    for (const w of [vqaQ, vqaA, aokTrain, aokVal, llava, prefs]) await w.finish();
    await captionAnns.finish();
    await captionImages.finish();
    const captionPart = writers.find((w) => w.path === at(captionPartPath))!;
    await captionPart.close();
    await captionsOut.append(captionPart.path);
    await captionsOut.write(']}');
    for (const w of writers) if (w !== captionPart) await w.close();
    await unlink(captionPart.path);

    const world = {
      name: 'shapes-world',
      version: 1,
      seed,
      params: {
        images: o.images,
        flickr_images: o.flickrImages,
        eval_images: o.evalImages,
        heldout_fraction: o.heldoutFraction,
        hallucination_rate: o.hallucinationRate,
        annotator_noise: o.annotatorNoise,
        color_elsewhere: o.colorElsewhere,
        max_objects: o.maxObjects,
        layout: o.layout,
        preference_per_image: o.preferencePerImage,
        mmhal_per_type: o.mmhalPerType,
      },
      counts,
      image_root: 'images',
      image: { width: IMAGE_SIZE, height: IMAGE_SIZE, format: 'jpeg', quality: JPEG_QUALITY, size_pixels: o.layout === 'grid' ? GRID_SIZE_PIXELS : SIZE_PIXELS, ...(o.layout === 'grid' ? { grid_cell: GRID_CELL } : {}) },
      vocabulary: { shapes: SHAPES, colors: COLORS, sizes: SIZES, backgrounds: BACKGROUNDS, positions: POSITIONS },
      cooccurrence: { companion_rate: COMPANION_RATE, companion_pairs: cooc.pairs, popular: [...frequency.keys()].sort(byFrequency).slice(0, 10) },
      files: F,
      notes: {
        splits: 'train = SFT images (VQA-v2, A-OKVQA train, LLaVA instruct); heldout = train2017 images kept out of SFT (A-OKVQA val, preference pairs, RL prompts); eval = val2014 images used only by POPE and MMHal. COCO captions cover train and heldout.',
        preference: 'hallucination is true iff exactly one of the two responses names an object that is not in the image; conversations end with a gpt turn holding a reference answer, which LLaVA-RLHF replaces with output_1/output_2.',
        llava_instruct: 'each SFT image has two records with the same id (a conversation and a detailed description), as in LLaVA-Instruct-150K.',
      },
      splits,
    };
    await writeFile(at(F.world), JSON.stringify(world, null, 2) + '\n');
  } catch (error) {
    await pool.drain().catch(() => undefined);
    for (const w of writers) await w.discard();
    throw error;
  }
  o.onProgress?.(total, total);
  const elapsed_s = (performance.now() - started) / 1000;
  return { out, seed, counts, elapsed_s, images_per_s: total / elapsed_s };
}

/** Whether `dir` holds a complete shapes world (its world.json is written last). */
export async function isShapesWorld(dir: string): Promise<boolean> {
  try {
    await access(path.join(dir, SHAPES_WORLD_FILES.world));
    return true;
  } catch {
    return false;
  }
}
