/**
 * Held-out questions about shapes-world images that SFT never saw (the world's `heldout` split,
 * kept out of SFT for preference/RL, and its `eval` images), with known answers, phrased exactly
 * as the SFT data phrases them so accuracy measures what SFT taught:
 *
 *   yes/no, balanced (per image as many absent kinds as present ones), alternating the two
 *   phrasings the SFT mix holds:
 *     VQA-v2:  "Is there a red circle?\nAnswer the question using a single word or phrase."  -> "Yes"
 *     LLaVA:   "Is there a red circle in the image?"  -> "The red shapes in the image: ..., so yes, there is ..."
 *   multiple choice, in the A-OKVQA format SFT was taught (the aokvqa-multichoice converter's prompt):
 *     colour:  "What color is the star at the top left?\nA. red\nB. ...\nAnswer with the option's letter from the given choices directly."
 *     shape:   "Which shape in the picture is red?\nA. circle\n..."
 *     reasoning form: the converter's reasoning instruction; the reference reply is the world's
 *     first rationale then "So the correct option is B." (what SFT on a reasoning mix writes)
 *
 * Only unambiguous questions are asked (a colour question names a shape whose position is unique,
 * a shape question a colour that only one object has), as the world's A-OKVQA generator does.
 * Deterministic for a seed. Scoring: yes/no by the verdict (yesNoOf), multiple choice by the letter
 * after "correct option is", else the reply's first letter (letterOf).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { BadInputError, InvalidOptionError } from '../src/errors.ts';
import { Rng, deriveSeed } from '../src/stream/random.ts';
import { COLORS, SHAPES, objectKey, objectPhrase, positionOf, positionPhrase, type Color, type GroundTruth, type Shape } from '../schemas/shapes-world.ts';
import { colorQuestionRationales, evidenceYesNo, shapeQuestionRationales } from '../sources/shapes-world-text.ts';
import type { AokvqaItem } from '../schemas/aokvqa-item.ts';
import { loadShapesTruth } from '../sources/shapes-truth.ts';
import { SHAPES_WORLD_FILES } from '../sources/shapes-world.ts';
import { DIRECT_INSTRUCTION, LETTERS, REASONING_INSTRUCTION, multichoicePrompt, reasoningAnswer } from './aokvqa-multichoice.ts';
import { DEFAULT_VQA_SUFFIX } from './vqav2-multiround.ts';

export type HeldoutKind = 'yesno' | 'multichoice';

export interface HeldoutQuestion {
  id: string;
  /** Image path relative to `<world>/images`. */
  image: string;
  kind: HeldoutKind;
  /** `color` / `shape` for multiple choice; `vqa` / `llava` phrasing for yes/no. */
  form: 'vqa' | 'llava' | 'color' | 'shape';
  /** The human turn as asked (without `<image>`). */
  question: string;
  /** Expected answer: `Yes` / `No`, or the option letter. */
  answer: string;
  /** A reference reply in the SFT data's style (for the held-out loss). */
  reference: string;
  /** What the image must be read for (HeldoutContrast); a colour-only reader fails the `*-elsewhere` / `several-*` ones. */
  contrast: HeldoutContrast;
}

/**
 * What a question tests beyond colour presence. Yes/no: `present` (the kind is there),
 * `colour-absent` (the asked colour is nowhere in the image: colour alone says no) or
 * `colour-elsewhere` (the colour is there, on another shape: only the shape says no). Multiple
 * choice: `one-option-in-image` (only the right option's colour / shape is in the image:
 * presence alone finds it) or `several-options-in-image` (the asked lookup is needed).
 */
export type HeldoutContrast = 'present' | 'colour-absent' | 'colour-elsewhere' | 'one-option-in-image' | 'several-options-in-image';
export const HELDOUT_CONTRASTS: readonly HeldoutContrast[] = ['present', 'colour-absent', 'colour-elsewhere', 'one-option-in-image', 'several-options-in-image'];

export type MultichoiceForm = 'direct' | 'reasoning';
export const MULTICHOICE_FORMS: readonly MultichoiceForm[] = ['direct', 'reasoning'];

export interface HeldoutQuestionOptions {
  seed: number;
  /** Yes/no questions per image about present kinds (as many about absent ones). Default 2. */
  yesnoPerImage?: number;
  /** How multiple-choice questions are asked: the letter directly (default) or a rationale first. */
  multichoice?: MultichoiceForm;
}

function counts<T>(items: readonly T[]): Map<T, number> {
  const m = new Map<T, number>();
  for (const x of items) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

/** The prompt and reference reply the aokvqa-multichoice converter writes for this question (shared code, same text). */
function asked(gt: GroundTruth, question: string, choices: string[], idx: number, rationales: string[], form: MultichoiceForm): { question: string; reference: string } {
  const item: AokvqaItem = {
    split: 'val', image_id: gt.image_id, question_id: '', question, choices, correct_choice_idx: idx,
    direct_answers: [], difficult_direct_answer: false, rationales,
  };
  return form === 'direct'
    ? { question: multichoicePrompt(item, DIRECT_INSTRUCTION), reference: LETTERS[idx]! }
    : { question: multichoicePrompt(item, REASONING_INSTRUCTION), reference: reasoningAnswer(item, 'first') };
}

/** The questions for one image (deterministic in seed and image). */
export function questionsForImage(gt: GroundTruth, options: HeldoutQuestionOptions): HeldoutQuestion[] {
  const perImage = options.yesnoPerImage ?? 2;
  const mcForm = options.multichoice ?? 'direct';
  if (!MULTICHOICE_FORMS.includes(mcForm)) throw new InvalidOptionError('multichoice', `must be ${MULTICHOICE_FORMS.join(' or ')}, got ${JSON.stringify(mcForm)}`);
  const rng = new Rng(deriveSeed(options.seed, `heldout-questions:${gt.image}`));
  const out: HeldoutQuestion[] = [];
  const objs = gt.objects.map((o) => ({ ...o, position: positionOf(o.box, gt.width, gt.height) }));
  const present = [...new Set(objs.map(objectKey))];
  const absent: string[] = [];
  for (const c of COLORS) for (const s of SHAPES) if (!present.includes(`${c} ${s}`)) absent.push(`${c} ${s}`);
  const base = gt.image.replace(/\.[a-z]+$/i, '');
  const yes = rng.shuffle(present.slice()).slice(0, perImage);
  const no = rng.shuffle(absent.slice()).slice(0, yes.length);
  [...yes.map((k) => [k, true] as const), ...no.map((k) => [k, false] as const)].forEach(([key, isThere], i) => {
    const [color, shape] = key.split(' ') as [string, string];
    const phrase = objectPhrase({ color, shape });
    const form = rng.next() < 0.5 ? 'vqa' : 'llava';
    const question = form === 'vqa' ? `Is there ${phrase}?\n${DEFAULT_VQA_SUFFIX}` : `Is there ${phrase} in the image?`;
    const reference = form === 'vqa'
      ? (isThere ? 'Yes' : 'No')
      : evidenceYesNo(objs, { color: color as Color, shape: shape as Shape }, isThere ? objs.find((x) => objectKey(x) === key)! : undefined);
    const contrast = isThere ? 'present' : objs.some((o) => o.color === color) ? 'colour-elsewhere' : 'colour-absent';
    out.push({ id: `${base}#yn${i}`, image: gt.image, kind: 'yesno', form, question, answer: isThere ? 'Yes' : 'No', reference, contrast });
  });
  const positions = counts(objs.map((o) => o.position));
  const colors = counts(objs.map((o) => o.color));
  const optionsContrast = (choices: readonly string[], inImage: ReadonlySet<string>): HeldoutContrast =>
    choices.filter((c) => inImage.has(c)).length > 1 ? 'several-options-in-image' : 'one-option-in-image';
  const choose = (correct: string, all: readonly string[]): { choices: string[]; idx: number } => {
    const pool = rng.shuffle(all.filter((x) => x !== correct)).slice(0, 3);
    const choices = rng.shuffle([correct, ...pool]);
    return { choices, idx: choices.indexOf(correct) };
  };
  const colorCands = objs.filter((o) => positions.get(o.position) === 1);
  if (colorCands.length > 0) {
    const o = rng.pick(colorCands);
    const { choices, idx } = choose(o.color, COLORS);
    const { question, reference } = asked(gt, `What color is the ${o.shape} ${positionPhrase(o.position)}?`, choices, idx, colorQuestionRationales(o), mcForm);
    out.push({ id: `${base}#mc-color`, image: gt.image, kind: 'multichoice', form: 'color', question, answer: LETTERS[idx]!, reference, contrast: optionsContrast(choices, new Set(objs.map((x) => x.color))) });
  }
  const shapeCands = objs.filter((o) => colors.get(o.color) === 1);
  if (shapeCands.length > 0) {
    const o = rng.pick(shapeCands);
    const { choices, idx } = choose(o.shape, SHAPES);
    const { question, reference } = asked(gt, `Which shape in the picture is ${o.color}?`, choices, idx, shapeQuestionRationales(o), mcForm);
    out.push({ id: `${base}#mc-shape`, image: gt.image, kind: 'multichoice', form: 'shape', question, answer: LETTERS[idx]!, reference, contrast: optionsContrast(choices, new Set(objs.map((x) => x.shape))) });
  }
  return out;
}

export interface LoadHeldoutOptions extends HeldoutQuestionOptions {
  /** Which images: the world's `heldout` train images, its `eval` images, or both (default). */
  splits?: readonly ('heldout' | 'eval')[];
  /** Use at most this many images (the first ones, in ground-truth order); 0 = all. */
  maxImages?: number;
}

/** World images SFT did not train on, with their ground truth, in ground_truth.jsonl order. */
export async function heldoutImages(worldDir: string, splits: readonly ('heldout' | 'eval')[] = ['heldout', 'eval']): Promise<GroundTruth[]> {
  const worldFile = path.join(worldDir, SHAPES_WORLD_FILES.world);
  let world: { splits?: { heldout?: number[] } };
  try {
    world = JSON.parse(await readFile(worldFile, 'utf8')) as typeof world;
  } catch (cause) {
    throw new BadInputError(`cannot read the shapes world description: ${(cause as Error).message}`, { file: worldFile, cause, fix: 'point world= at a folder made by pipelines/shapes-world.ts' });
  }
  const heldoutIds = new Set(world.splits?.heldout ?? []);
  const truth = await loadShapesTruth(path.join(worldDir, SHAPES_WORLD_FILES.ground_truth));
  const out: GroundTruth[] = [];
  for (const gt of truth.values()) {
    if (gt.dataset !== 'coco') continue;
    const isEval = gt.split === 'eval';
    if ((isEval && splits.includes('eval')) || (!isEval && heldoutIds.has(gt.image_id) && splits.includes('heldout'))) out.push(gt);
  }
  return out;
}

/** Every held-out question of a shapes world (see the file comment). */
export async function loadHeldoutQuestions(worldDir: string, options: LoadHeldoutOptions): Promise<HeldoutQuestion[]> {
  const maxImages = options.maxImages ?? 0;
  if (!Number.isInteger(maxImages) || maxImages < 0) throw new InvalidOptionError('maxImages', `must be a non-negative integer, got ${maxImages}`);
  let images = await heldoutImages(worldDir, options.splits);
  if (maxImages > 0) images = images.slice(0, maxImages);
  return images.flatMap((gt) => questionsForImage(gt, options));
}

/**
 * The verdict of a reply: its first word when that is yes/no ("Yes, there is ..."), else the word
 * after "so" in an evidence-first answer ("The red shapes in the image: a star, so no, ..."), else null.
 */
export function yesNoOf(reply: string): 'Yes' | 'No' | null {
  const w = reply.trim().split(/[\s,.!?;:]+/)[0]?.toLowerCase();
  if (w === 'yes' || w === 'no') return w === 'yes' ? 'Yes' : 'No';
  const m = /\bso (yes|no)\b/i.exec(reply);
  return m ? (m[1]!.toLowerCase() === 'yes' ? 'Yes' : 'No') : null;
}

/**
 * The option a reply chooses: the letter after "correct option is" (a reasoning answer, as the
 * RL correctness check reads it), else the letter the reply starts with ("B", "B.", "(B)"), else null.
 */
export function letterOf(reply: string): string | null {
  const stated = /\b[Cc]orrect option is \(?([A-Z])\b/.exec(reply);
  if (stated) return stated[1]!.toUpperCase();
  const m = /^\W*([A-Z])(?![a-z])/.exec(reply.trim());
  return m ? m[1]! : null;
}

/** Whether `reply` answers `q` correctly (yes/no: first word; multiple choice: first letter). */
export function isCorrect(q: Pick<HeldoutQuestion, 'kind' | 'answer'>, reply: string): boolean {
  return q.kind === 'yesno' ? yesNoOf(reply) === q.answer : letterOf(reply) === q.answer;
}
