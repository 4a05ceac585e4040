/**
 * The shapes world's text: captions, detailed descriptions, questions and answers, and the
 * simulated preference annotator. Every object is written as one phrase from
 * `schemas/shapes-world.ts` ("a small red circle") so a rule judge can parse it back.
 * Templates are few and regular on purpose; seeded choices among them give the variety.
 */
import type { Rng } from '../src/stream/random.ts';
import {
  COLORS,
  POSITIONS,
  article,
  SHAPES,
  mentionedObjects,
  numberWord,
  objectKey,
  objectPhrase,
  pluralShape,
  positionOf,
  positionPhrase,
  type Color,
  type GroundTruth,
  type ObjectMention,
  type Position,
  type Shape,
  type ShapeObject,
  type Size,
} from '../schemas/shapes-world.ts';
import { kindByKey, pickKind, type Cooccurrence } from './shapes-world-scene.ts';

/** An object as text sees it: kind, size and coarse position. Invented objects have no box. */
export interface TextObject {
  readonly color: Color;
  readonly shape: Shape;
  readonly size: Size;
  readonly position: Position;
}

export function textObjects(gt: Pick<GroundTruth, 'objects' | 'width' | 'height'>): TextObject[] {
  return gt.objects.map((o) => ({ color: o.color, shape: o.shape, size: o.size, position: positionOf(o.box, gt.width, gt.height) }));
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** "a, b and c". */
export function joinList(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? '';
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** Objects grouped by colour+shape, in first-seen order. */
export function groupByKind<T extends { color: Color; shape: Shape }>(objects: readonly T[]): { color: Color; shape: Shape; key: string; items: T[] }[] {
  const groups = new Map<string, { color: Color; shape: Shape; key: string; items: T[] }>();
  for (const o of objects) {
    const key = objectKey(o);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { color: o.color, shape: o.shape, key, items: [] }));
    g.items.push(o);
  }
  return [...groups.values()];
}

function shapesWord(n: number): string {
  return n === 1 ? 'shape' : 'shapes';
}

// ---------------------------------------------------------------------------
// Invented (hallucinated) objects
// ---------------------------------------------------------------------------

/**
 * Objects that are NOT in the scene but plausibly could be: preferably an absent companion
 * of a present kind (they co-occur 60% of the time), else a popular absent kind.
 */
export function inventObjects(present: readonly { color: Color; shape: Shape }[], cooc: Cooccurrence, rng: Rng, count: number): TextObject[] {
  const presentKeys = new Set(present.map(objectKey));
  const taken = new Set(presentKeys);
  const out: TextObject[] = [];
  for (let i = 0; i < count; i++) {
    const companions = [...presentKeys].map((k) => cooc.companion.get(k)).filter((k): k is string => k !== undefined && !taken.has(k));
    const kind = companions.length > 0 && rng.next() < 0.75 ? kindByKey(cooc, rng.pick(companions)) : pickKind(rng, cooc, taken);
    taken.add(kind.key);
    out.push({ color: kind.color, shape: kind.shape, size: rng.next() < 0.4 ? 'large' : 'small', position: rng.pick(POSITIONS) });
  }
  return out;
}

/** The same objects with one recoloured to a colour that makes an absent kind. */
export function recolorOne(objects: readonly TextObject[], rng: Rng): TextObject[] {
  const presentKeys = new Set(objects.map(objectKey));
  const i = rng.int(objects.length);
  const o = objects[i]!;
  const colors = COLORS.filter((c) => !presentKeys.has(objectKey({ color: c, shape: o.shape })));
  const out = objects.slice();
  out[i] = { ...o, color: rng.pick(colors) };
  return out;
}

// ---------------------------------------------------------------------------
// Detailed descriptions and list answers
// ---------------------------------------------------------------------------

export const DETAIL_PROMPTS = [
  'Describe the image in detail.',
  'Give a detailed description of the image.',
  'What do you see in this image? Describe it thoroughly.',
  'Write a detailed description of the given image.',
  'Explain the contents of the image in detail.',
  'Can you describe the objects in this picture?',
] as const;

const OBJECT_SENTENCES: readonly ((phrase: string, pos: string) => string)[] = [
  (phrase, pos) => `There is ${phrase} ${pos}.`,
  (phrase, pos) => `${cap(phrase)} can be seen ${pos}.`,
  (phrase, pos) => `${cap(pos)}, there is ${phrase}.`,
  (phrase, pos) => `${cap(phrase)} sits ${pos}.`,
  // never first: "also" needs something before it
  (phrase, pos) => `You can also see ${phrase} ${pos}.`,
];

/** One sentence about one object; never the same template twice in a row. */
function objectSentence(o: TextObject, rng: Rng, previous: number): [string, number] {
  const choices = OBJECT_SENTENCES.map((_, i) => i).filter((i) => i !== previous && (previous >= 0 || i < OBJECT_SENTENCES.length - 1));
  const k = rng.pick(choices);
  return [OBJECT_SENTENCES[k]!(objectPhrase(o), positionPhrase(o.position)), k];
}

/**
 * A paragraph naming every given object once, with size, colour and position. `total` is the
 * number of shapes the intro states (the image's true count when only some objects are named).
 */
export function describeObjects(objects: readonly TextObject[], background: string, rng: Rng, total = objects.length): string {
  const n = total;
  const nw = numberWord(n);
  const intro = [
    `The image shows ${nw} ${shapesWord(n)} on a ${background} background.`,
    `This is a simple picture of ${nw} geometric ${shapesWord(n)} against a ${background} background.`,
    `In this image, ${n === 1 ? 'one shape is' : `${nw} shapes are`} drawn on a plain ${background} background.`,
  ];
  const parts = [rng.pick(intro)];
  let previous = -1;
  for (const o of objects) {
    const [sentence, k] = objectSentence(o, rng, previous);
    parts.push(sentence);
    previous = k;
  }
  const r = rng.next();
  if (r < 0.2 && n > 1) parts.push('The shapes do not overlap each other.');
  else if (r < 0.4) parts.push('Each shape is drawn in a flat, solid color.');
  else if (r < 0.5) parts.push('The picture is simple and clean.');
  return parts.join(' ');
}

/**
 * A LLaVA-style yes/no answer that states the evidence before the verdict, the evidence being the
 * shapes of the asked colour: "The red shapes in the image: a square and a star, so no, there is
 * no red circle in the image." ("... red shapes in the image: none, so no, ..."). Shapes come in
 * SHAPES order, each once.
 * Why this evidence: a small model trained from scratch reads one attribute off the image, or
 * finds one word in a short list, in a few hundred steps, but is slow to match a colour AND a shape
 * at once. Filtering by the asked colour first turns "is there a red circle?" into two one-attribute
 * steps. Measured (frozen pretrained encoder, 3,000-image world, 200 held-out questions): 79.5%
 * after 1,000 steps, against 49-60% for a bare "Yes"/"No" and for listing every object first.
 */
export function evidenceYesNo(objects: readonly TextObject[], asked: { color: Color; shape: Shape }, present: TextObject | undefined): string {
  const shapes = SHAPES.filter((s) => objects.some((o) => o.color === asked.color && o.shape === s));
  const seen = shapes.length === 0 ? 'none' : joinList(shapes.map((s) => `${article(s)} ${s}`));
  const evidence = `The ${asked.color} shapes in the image: ${seen}`;
  return present
    ? `${evidence}, so yes, there is ${objectPhrase(present)} ${positionPhrase(present.position)}.`
    : `${evidence}, so no, there is no ${asked.color} ${asked.shape} in the image.`;
}

/** A one-sentence answer listing the given objects; `partial`: some objects are left out, so no total is stated. */
export function listObjects(objects: readonly TextObject[], background: string, rng: Rng, withPositions: boolean, partial = false): string {
  const phrases = objects.map((o) => (withPositions ? `${objectPhrase(o)} ${positionPhrase(o.position)}` : objectPhrase(o)));
  const form = rng.int(3);
  switch (partial ? form % 2 : form) {
    case 0:
      return `I can see ${joinList(phrases)}.`;
    case 1:
      return `The image contains ${joinList(phrases)} on a ${background} background.`;
    default:
      return `There ${objects.length === 1 ? 'is' : 'are'} ${numberWord(objects.length)} ${shapesWord(objects.length)}: ${joinList(phrases)}.`;
  }
}

// ---------------------------------------------------------------------------
// Judging text against the ground truth (the simulated annotator and tests use this)
// ---------------------------------------------------------------------------

export interface MentionJudgement {
  /** Ground-truth objects the text names (each counted once). */
  readonly matched: number;
  /** Mentions that name no object in the image (absent kind, wrong size, or too many). */
  readonly hallucinated: number;
  readonly mentions: readonly ObjectMention[];
}

/**
 * Matches each non-negated colour+shape mention to ground-truth objects of that kind (and size
 * when given). A mention that finds no such object, or claims more than exist, is hallucinated;
 * a repeated mention of an object already matched is a re-reference, not a hallucination.
 */
export function judgeMentions(text: string, objects: readonly { color: string; shape: string; size: string }[]): MentionJudgement {
  const mentions = mentionedObjects(text).filter((m) => !m.negated);
  const used = new Set<number>();
  let hallucinated = 0;
  for (const m of mentions) {
    const fits = objects.map((o, i) => ({ o, i })).filter(({ o }) => o.color === m.color && o.shape === m.shape && (m.size === undefined || o.size === m.size));
    const want = m.count ?? 2;
    if (fits.length === 0 || want > fits.length) {
      hallucinated++;
      continue;
    }
    let need = want;
    for (const { i } of fits) {
      if (need === 0) break;
      if (!used.has(i)) {
        used.add(i);
        need--;
      }
    }
  }
  return { matched: used.size, hallucinated, mentions };
}

// ---------------------------------------------------------------------------
// COCO captions (the Fact-RLHF "facts")
// ---------------------------------------------------------------------------

/**
 * Five accurate captions, varied in wording; at least one lists every object, so together they
 * cover the image. A little real-data untidiness: some lack the final period or start lower-case.
 */
export function cocoCaptions(gt: GroundTruth, rng: Rng): string[] {
  const objs = textObjects(gt);
  const bg = gt.background;
  const n = objs.length;
  const full = objs.map((o) => objectPhrase(o));
  const bare = objs.map((o) => objectPhrase(o, { size: false }));
  const groups = groupByKind(objs).map((g) => (g.items.length === 1 ? objectPhrase(g.items[0]!, { size: false }) : `${numberWord(g.items.length)} ${g.color} ${pluralShape(g.shape)}`));
  const covering = [
    `A ${bg} background with ${joinList(full)}.`,
    `${cap(joinList(full))} on a ${bg} background.`,
    `${cap(numberWord(n))} ${shapesWord(n)} on a ${bg} background: ${joinList(full)}.`,
    `A simple drawing of ${joinList(full)}.`,
  ];
  const pool: (() => string)[] = [
    () => `A picture of ${joinList(bare)}.`,
    () => `${cap(joinList(groups))} on a plain ${bg} background.`,
    () => {
      const o = rng.pick(objs);
      return `${cap(objectPhrase(o))} ${positionPhrase(o.position)} of the image.`;
    },
    () => `Simple flat shapes: ${joinList(bare)}.`,
    () => {
      if (n < 2) return `A single ${objectPhrase(objs[0]!, { article: 'none' })} on a ${bg} background.`;
      const [a, b] = rng.shuffle(objs.slice());
      return `${cap(objectPhrase(a!))} and ${objectPhrase(b!)}${n > 2 ? ' among other shapes' : ''}.`;
    },
    () => `${cap(numberWord(n))} colored ${shapesWord(n)} ${n === 1 ? 'is' : 'are'} drawn on this ${bg} image.`,
    () => `An image with ${joinList(objs.map((o) => `${objectPhrase(o)} ${positionPhrase(o.position)}`))}.`,
  ];
  const captions = rng.shuffle(covering.slice()).slice(0, 2);
  const order = rng.shuffle(pool.map((_, i) => i));
  for (const i of order) {
    if (captions.length >= 5) break;
    const c = pool[i]!();
    if (!captions.includes(c)) captions.push(c);
  }
  while (captions.length < 5) captions.push(`A ${bg} image with ${joinList(full)} in it.`);
  return rng.shuffle(captions).map((c) => {
    const r = rng.next();
    if (r < 0.08) return c.replace(/\.$/, '');
    if (r < 0.12) return c.charAt(0).toLowerCase() + c.slice(1);
    if (r < 0.16) return c + ' ';
    return c;
  });
}

// ---------------------------------------------------------------------------
// VQA-v2 questions
// ---------------------------------------------------------------------------

export type VqaAnswerType = 'yes/no' | 'number' | 'other';

export interface VqaItem {
  readonly question: string;
  readonly question_type: string;
  readonly answer: string;
  readonly answer_type: VqaAnswerType;
  /** What a careless annotator might answer instead. */
  readonly wrong: readonly string[];
}

function counts<T>(items: readonly T[]): Map<T, number> {
  const m = new Map<T, number>();
  for (const x of items) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

function numberWrong(n: number): string[] {
  return [String(n + 1), ...(n > 0 ? [String(n - 1)] : [])];
}

/**
 * An absent kind: with probability `colorElsewhere` one whose colour is in the image on another
 * shape (only the shape says no), else half the time one that co-occurs with a present kind
 * (harder), else any. No extra draw when `colorElsewhere` is 0, so such worlds stay as they were.
 */
function absentKind(gt: GroundTruth, cooc: Cooccurrence, rng: Rng, taken: Set<string>, colorElsewhere = 0): { color: Color; shape: Shape } {
  const present = new Set(gt.objects.map(objectKey));
  if (colorElsewhere > 0 && rng.next() < colorElsewhere) {
    const colors = new Set(gt.objects.map((o) => o.color));
    const elsewhere = cooc.kinds.filter((k) => colors.has(k.color) && !present.has(k.key) && !taken.has(k.key));
    if (elsewhere.length > 0) return rng.pick(elsewhere);
  }
  const companions = [...present].map((k) => cooc.companion.get(k)).filter((k): k is string => k !== undefined && !present.has(k) && !taken.has(k));
  if (companions.length > 0 && rng.next() < 0.5) return kindByKey(cooc, rng.pick(companions));
  const kinds = cooc.kinds.filter((k) => !present.has(k.key) && !taken.has(k.key));
  return rng.pick(kinds);
}

/**
 * 6 questions per image: 2 "yes" and 2 "no" yes/no questions (balanced), one count and one
 * "other" (colour of a unique shape, shape of a unique colour, or the background colour).
 * Yes/no questions take five wordings on both sides, so no wording predicts the answer; a
 * colour-and-shape one is asked as POPE asks ("Is there a red circle in the image?") as often as
 * bare ("Is there a red circle?"): a policy trained on the bare wording alone answered POPE's
 * "No" 99.5% of the time while it answered the bare one right 81% of the time.
 */
export function vqaItems(gt: GroundTruth, cooc: Cooccurrence, rng: Rng, colorElsewhere = 0): VqaItem[] {
  const objs = gt.objects;
  const shapes = counts(objs.map((o) => o.shape));
  const colors = counts(objs.map((o) => o.color));
  const items: VqaItem[] = [];
  const asked = new Set<string>();
  const add = (item: VqaItem): boolean => {
    if (asked.has(item.question)) return false;
    asked.add(item.question);
    items.push(item);
    return true;
  };
  const yesNo = (question: string, qtype: string, yes: boolean) =>
    add({ question, question_type: qtype, answer: yes ? 'yes' : 'no', answer_type: 'yes/no', wrong: [yes ? 'no' : 'yes'] });
  // "yes" questions about present objects
  for (let tries = 0, made = 0; made < 2 && tries < 12; tries++) {
    const o = rng.pick(objs);
    const form = rng.int(5);
    const ok =
      form === 0 ? yesNo(`Is there ${objectPhrase(o, { size: false })}?`, 'is there a', true)
      : form === 1 ? yesNo(`Is there ${objectPhrase(o, { size: false })} in the image?`, 'is there a', true)
      : form === 2 ? yesNo(`Is there ${article(o.shape)} ${o.shape} in the image?`, 'is there a', true)
      : form === 3 ? yesNo(`Is there anything ${o.color}?`, 'is there', true)
      : yesNo(`Are there any ${pluralShape(o.shape)}?`, 'are there any', true);
    if (ok) made++;
  }
  // "no" questions about absent objects
  const taken = new Set<string>();
  for (let tries = 0, made = 0; made < 2 && tries < 12; tries++) {
    const form = rng.int(5);
    let ok = false;
    if (form <= 1) {
      const k = absentKind(gt, cooc, rng, taken, colorElsewhere);
      taken.add(objectKey(k));
      ok = yesNo(`Is there ${objectPhrase(k, { size: false })}${form === 1 ? ' in the image' : ''}?`, 'is there a', false);
    } else {
      const absentShapes = SHAPES.filter((s) => !shapes.has(s));
      const absentColors = COLORS.filter((c) => !colors.has(c));
      const s = absentShapes.length > 0 ? rng.pick(absentShapes) : undefined;
      if (form === 2 && s) ok = yesNo(`Is there ${article(s)} ${s} in the image?`, 'is there a', false);
      else if (form === 4 && s) ok = yesNo(`Are there any ${pluralShape(s)}?`, 'are there any', false);
      else if (absentColors.length > 0) ok = yesNo(`Is there anything ${rng.pick(absentColors)}?`, 'is there', false);
    }
    if (ok) made++;
  }
  // one count
  const cForm = rng.int(4);
  if (cForm === 0) {
    add({ question: 'How many shapes are in the image?', question_type: 'how many', answer: String(objs.length), answer_type: 'number', wrong: numberWrong(objs.length) });
  } else if (cForm === 1) {
    const c = rng.pick(objs).color;
    const n = colors.get(c) ?? 0;
    add({ question: `How many ${c} objects are there?`, question_type: 'how many', answer: String(n), answer_type: 'number', wrong: numberWrong(n) });
  } else {
    // mostly a present shape; sometimes an absent one (answer "0", as in VQA)
    const s = rng.next() < 0.85 ? rng.pick(objs).shape : rng.pick(SHAPES);
    const n = shapes.get(s) ?? 0;
    add({ question: `How many ${pluralShape(s)} are there?`, question_type: 'how many', answer: String(n), answer_type: 'number', wrong: numberWrong(n) });
  }
  // one "other"
  const uniqueShapes = [...shapes].filter(([, n]) => n === 1).map(([s]) => s);
  const uniqueColors = [...colors].filter(([, n]) => n === 1).map(([c]) => c);
  const oForm = rng.int(2);
  if (oForm === 0 && uniqueShapes.length > 0) {
    const s = rng.pick(uniqueShapes);
    const o = objs.find((x) => x.shape === s)!;
    add({ question: `What color is the ${s}?`, question_type: 'what color is the', answer: o.color, answer_type: 'other', wrong: COLORS.filter((c) => c !== o.color) });
  } else if (uniqueColors.length > 0) {
    const c = rng.pick(uniqueColors);
    const o = objs.find((x) => x.color === c)!;
    add({ question: `What shape is the ${c} object?`, question_type: 'what', answer: o.shape, answer_type: 'other', wrong: SHAPES.filter((s) => s !== o.shape) });
  } else {
    add({ question: 'What color is the background?', question_type: 'what color is the', answer: gt.background, answer_type: 'other', wrong: ['white', 'brown', 'gray'] });
  }
  return rng.shuffle(items);
}

/** Ten annotator answers: mostly the truth, up to three careless ones; confidences mostly "yes". */
export function vqaAnswers(item: { answer: string; wrong: readonly string[] }, rng: Rng): { answer: string; answer_confidence: 'yes' | 'maybe' | 'no'; answer_id: number }[] {
  let wrongLeft = 3;
  const out = [];
  for (let i = 1; i <= 10; i++) {
    let answer = item.answer;
    if (wrongLeft > 0 && item.wrong.length > 0 && rng.next() < 0.07) {
      answer = rng.pick(item.wrong);
      wrongLeft--;
    }
    const r = rng.next();
    const answer_confidence = r < 0.85 ? 'yes' : r < 0.97 ? 'maybe' : 'no';
    out.push({ answer, answer_confidence: answer_confidence as 'yes' | 'maybe' | 'no', answer_id: i });
  }
  return out;
}

// ---------------------------------------------------------------------------
// A-OKVQA
// ---------------------------------------------------------------------------

export interface AokvqaItem {
  readonly question: string;
  readonly choices: string[];
  readonly correct_choice_idx: number;
  readonly answer: string;
  readonly wrong: readonly string[];
  readonly rationales: string[];
}

function choicesWith(correct: string, others: readonly string[], rng: Rng): { choices: string[]; idx: number } {
  const pool = rng.shuffle(others.filter((x) => x !== correct)).slice(0, 3);
  const choices = rng.shuffle([correct, ...pool]);
  return { choices, idx: choices.indexOf(correct) };
}

/** Rationales of "What color is the <shape> <where>?" (the first states the evidence plainly). */
export function colorQuestionRationales(o: TextObject): string[] {
  const where = positionPhrase(o.position);
  return [`The ${o.shape} ${where} is ${o.color}.`, `There is ${objectPhrase(o)} ${where} of the picture.`, `The shape ${where} is filled with ${o.color}.`];
}

/** Rationales of "Which shape in the picture is <color>?". */
export function shapeQuestionRationales(o: TextObject): string[] {
  return [`The only ${o.color} object is a ${o.shape}.`, `There is ${objectPhrase(o)} ${positionPhrase(o.position)}.`, `Only one shape is ${o.color}, and it is a ${o.shape}.`];
}

/** 1-2 four-choice questions about colour, shape, count or position, each with 3 rationales. */
export function aokvqaItems(gt: GroundTruth, rng: Rng): AokvqaItem[] {
  const objs = textObjects(gt);
  const kinds = counts(objs.map(objectKey));
  const shapes = counts(objs.map((o) => o.shape));
  const colors = counts(objs.map((o) => o.color));
  const positions = counts(objs.map((o) => o.position));
  const makers: (() => AokvqaItem | undefined)[] = [
    () => {
      // colour of the shape at a position
      const cands = objs.filter((o) => positions.get(o.position) === 1);
      if (cands.length === 0) return undefined;
      const o = rng.pick(cands);
      const where = positionPhrase(o.position);
      const { choices, idx } = choicesWith(o.color, COLORS, rng);
      return {
        question: `What color is the ${o.shape} ${where}?`, choices, correct_choice_idx: idx, answer: o.color, wrong: COLORS.filter((c) => c !== o.color),
        rationales: colorQuestionRationales(o),
      };
    },
    () => {
      const cands = objs.filter((o) => colors.get(o.color) === 1);
      if (cands.length === 0) return undefined;
      const o = rng.pick(cands);
      const { choices, idx } = choicesWith(o.shape, SHAPES, rng);
      return {
        question: `Which shape in the picture is ${o.color}?`, choices, correct_choice_idx: idx, answer: o.shape, wrong: SHAPES.filter((s) => s !== o.shape),
        rationales: shapeQuestionRationales(o),
      };
    },
    () => {
      const s = rng.pick(objs).shape;
      const n = shapes.get(s) ?? 0;
      const { choices, idx } = choicesWith(String(n), ['0', '1', '2', '3', '4', '5'], rng);
      const where = objs.filter((o) => o.shape === s).map((o) => `${objectPhrase(o, { size: false })} ${positionPhrase(o.position)}`);
      return {
        question: `How many ${pluralShape(s)} can be seen in the picture?`, choices, correct_choice_idx: idx, answer: String(n), wrong: numberWrong(n),
        rationales: [`There ${n === 1 ? 'is' : 'are'} ${numberWord(n)} ${n === 1 ? s : pluralShape(s)} in the image.`, `I can see ${joinList(where)}.`, `Counting the ${pluralShape(s)} gives ${numberWord(n)}.`],
      };
    },
    () => {
      const cands = objs.filter((o) => kinds.get(objectKey(o)) === 1);
      if (cands.length === 0) return undefined;
      const o = rng.pick(cands);
      const { choices, idx } = choicesWith(o.position, POSITIONS, rng);
      return {
        question: `Where is the ${o.color} ${o.shape} located?`, choices, correct_choice_idx: idx, answer: o.position, wrong: POSITIONS.filter((p) => p !== o.position),
        rationales: [`The ${o.color} ${o.shape} is ${positionPhrase(o.position)} of the image.`, `${cap(objectPhrase(o))} appears ${positionPhrase(o.position)}.`, `Looking at the picture, the ${o.color} ${o.shape} sits ${positionPhrase(o.position)}.`],
      };
    },
  ];
  const want = rng.next() < 0.5 ? 1 : 2;
  const items: AokvqaItem[] = [];
  const seen = new Set<string>();
  for (const i of rng.shuffle(makers.map((_, k) => k))) {
    if (items.length >= want) break;
    const item = makers[i]!();
    if (item && !seen.has(item.question)) {
      seen.add(item.question);
      items.push(item);
    }
  }
  return items;
}

/** A 22-character id in A-OKVQA's alphabet, from a seeded hash of `key`. */
export function shortId(key: string, hash: (text: string) => number): string {
  const alphabet = '23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  let id = '';
  for (let block = 0; id.length < 22; block++) {
    let h = hash(`${key}#${block}`);
    for (let k = 0; k < 5 && id.length < 22; k++) {
      id += alphabet[h % alphabet.length];
      h = Math.floor(h / alphabet.length);
    }
  }
  return id;
}

// ---------------------------------------------------------------------------
// LLaVA instruction data
// ---------------------------------------------------------------------------

export interface Turn {
  from: 'human' | 'gpt';
  value: string;
}

/** Index of the existence question ("Is there a red circle in the image?") among llavaConversation's makers. */
const EXISTENCE = 4;

/**
 * Where object a is relative to b ("to the left of", "above", ...), along the axis on which their
 * box centres differ most. a and b are kinds the image holds once each.
 */
export function relationOf(gt: GroundTruth, a: { color: Color; shape: Shape }, b: { color: Color; shape: Shape }): string {
  const ga = gt.objects.find((o) => objectKey(o) === objectKey(a))!;
  const gb = gt.objects.find((o) => objectKey(o) === objectKey(b))!;
  const dx = (ga.box[0] + ga.box[2]) / 2 - (gb.box[0] + gb.box[2]) / 2;
  const dy = (ga.box[1] + ga.box[3]) / 2 - (gb.box[1] + gb.box[3]) / 2;
  return Math.abs(dx) >= Math.abs(dy) ? (dx < 0 ? 'to the left of' : 'to the right of') : dy < 0 ? 'above' : 'below';
}

/** Index of the object whose box starts highest (the first such on a tie). */
export function topmostIndex(gt: GroundTruth): number {
  let t = 0;
  gt.objects.forEach((o, i) => {
    if (o.box[1] < gt.objects[t]!.box[1]) t = i;
  });
  return t;
}

/** A multi-turn conversation of faithful questions and answers about the shapes; one asks whether a kind is there. */
export function llavaConversation(gt: GroundTruth, cooc: Cooccurrence, rng: Rng, colorElsewhere = 0): Turn[] {
  const objs = textObjects(gt);
  const shapes = counts(objs.map((o) => o.shape));
  const kinds = counts(objs.map(objectKey));
  const makers: (() => [string, string] | undefined)[] = [
    () => ['What shapes are in the image?', listObjects(objs, gt.background, rng, false)],
    () => {
      const uniq = objs.filter((o) => shapes.get(o.shape) === 1);
      if (uniq.length === 0) return undefined;
      const o = rng.pick(uniq);
      return [`What color is the ${o.shape}?`, `The ${o.shape} is ${o.color}.`];
    },
    () => {
      const s = rng.pick(objs).shape;
      const n = shapes.get(s)!;
      return [`How many ${pluralShape(s)} are there?`, n === 1 ? `There is one ${s} in the image.` : `There are ${numberWord(n)} ${pluralShape(s)} in the image.`];
    },
    () => {
      const uniq = objs.filter((o) => kinds.get(objectKey(o)) === 1);
      if (uniq.length === 0) return undefined;
      const o = rng.pick(uniq);
      return [`Where is the ${o.color} ${o.shape}?`, `The ${o.color} ${o.shape} is ${positionPhrase(o.position)} of the image.`];
    },
    () => {
      if (rng.next() < 0.5) {
        const o = rng.pick(objs);
        return [`Is there ${objectPhrase(o, { size: false })} in the image?`, evidenceYesNo(objs, o, o)];
      }
      const k = absentKind(gt, cooc, rng, new Set(), colorElsewhere);
      return [`Is there ${objectPhrase(k, { size: false })} in the image?`, evidenceYesNo(objs, k, undefined)];
    },
    () => ['What color is the background?', `The background is ${gt.background}.`],
    () => {
      const uniq = objs.filter((o) => kinds.get(objectKey(o)) === 1);
      if (uniq.length === 0) return undefined;
      const o = rng.pick(uniq);
      return [`Is the ${o.color} ${o.shape} small or large?`, `The ${o.color} ${o.shape} is ${o.size}.`];
    },
    // since world version 7 the conversations also ask the kinds of question a hallucination
    // benchmark asks (LLaVA-Instruct's conversations do: absent objects, relations, sizes compared,
    // the extreme one), in wordings of their own, so SFT has taught an answer before RLHF
    () => {
      const absent = SHAPES.filter((s) => !shapes.has(s));
      if (absent.length === 0) return undefined;
      const s = rng.pick(absent);
      return [`What color is the ${s}?`, `There is no ${s} in the image. It shows ${joinList(objs.map((o) => objectPhrase(o, { size: false })))}.`];
    },
    () => {
      const uniq = objs.filter((o) => kinds.get(objectKey(o)) === 1);
      if (uniq.length < 2) return undefined;
      const [a, b] = rng.shuffle(uniq.slice());
      return [`Where is the ${a!.color} ${a!.shape} compared to the ${b!.color} ${b!.shape}?`, `The ${a!.color} ${a!.shape} is ${relationOf(gt, a!, b!)} the ${b!.color} ${b!.shape}.`];
    },
    () => {
      const uniq = objs.filter((o) => kinds.get(objectKey(o)) === 1);
      if (uniq.length < 2) return undefined;
      const [a, b] = rng.shuffle(uniq.slice());
      const q = `Which one is bigger, the ${a!.color} ${a!.shape} or the ${b!.color} ${b!.shape}?`;
      if (a!.size === b!.size) return [q, `Neither: the ${a!.color} ${a!.shape} and the ${b!.color} ${b!.shape} are both ${a!.size}.`];
      const big = a!.size === 'large' ? a! : b!;
      return [q, `The ${big.color} ${big.shape} is bigger.`];
    },
    () => {
      if (objs.length < 2) return undefined;
      const top = objs[topmostIndex(gt)]!;
      return ['Which shape is the highest in the image?', `The highest shape is ${objectPhrase(top, { article: 'the', size: false })}.`];
    },
  ];
  const rounds = rng.range(2, 4);
  const turns: Turn[] = [];
  const asked = new Set<string>();
  // every conversation asks one existence question (at a random round): it is the question POPE
  // and the hallucination judge turn on, and a small model learns to read the asked colour off
  // the question only when it sees that often (at 1 conversation in 7 it copied the image's colour)
  const order = rng.shuffle(makers.map((_, k) => k).filter((k) => k !== EXISTENCE));
  order.splice(rng.int(rounds), 0, EXISTENCE);
  for (const i of order) {
    if (asked.size >= rounds) break;
    const qa = makers[i]!();
    if (!qa || asked.has(qa[0])) continue;
    asked.add(qa[0]);
    turns.push({ from: 'human', value: turns.length === 0 ? `<image>\n${qa[0]}` : qa[0] }, { from: 'gpt', value: qa[1] });
  }
  return turns;
}

/**
 * A "describe in detail" record. With probability `hallucinationRate` the description also
 * names 1-2 objects that are not in the image, chosen among kinds that co-occur with the
 * present ones: the LLaVA data mechanism the paper blames for hallucination.
 */
export function llavaDetail(gt: GroundTruth, cooc: Cooccurrence, rng: Rng, hallucinationRate: number): { turns: Turn[]; invented: TextObject[] } {
  const objs = rng.shuffle(textObjects(gt));
  const invented = rng.next() < hallucinationRate ? inventObjects(objs, cooc, rng, rng.next() < 0.7 ? 1 : 2) : [];
  const all = objs.slice();
  for (const o of invented) all.splice(rng.int(all.length + 1), 0, o);
  const prompt = rng.pick(DETAIL_PROMPTS);
  return {
    turns: [{ from: 'human', value: `<image>\n${prompt}` }, { from: 'gpt', value: describeObjects(all, gt.background, rng) }],
    invented,
  };
}

// ---------------------------------------------------------------------------
// Preference pairs (LLaVA-RLHF human preference format)
// ---------------------------------------------------------------------------

export type ResponseKind = 'faithful-full' | 'faithful-partial' | 'hallucinated' | 'hallucinated-swap' | 'hallucinated-color';

export interface PreferencePair {
  readonly conversations: Turn[];
  readonly output_1: string;
  readonly output_2: string;
  readonly kinds: readonly [ResponseKind, ResponseKind];
  readonly preference: 1 | 2;
  /** True iff exactly one of the two responses names an object that is not in the image. */
  readonly hallucination: boolean;
  /** Whether the annotator noise flipped the rule's choice. */
  readonly flipped: boolean;
  /** True when the hallucinated response is the longer one (what fools a length-loving RM). */
  readonly trap: boolean;
}

const PREFERENCE_PROMPTS = [...DETAIL_PROMPTS, 'What shapes can you see in this image?', 'What is in this image?'] as const;

function response(kind: ResponseKind, objs: readonly TextObject[], gt: GroundTruth, cooc: Cooccurrence, rng: Rng): string {
  let shown: TextObject[];
  if (kind === 'faithful-partial' && objs.length > 1) shown = rng.shuffle(objs.slice()).slice(0, rng.range(1, objs.length - 1));
  else shown = rng.shuffle(objs.slice());
  if (kind === 'hallucinated') {
    for (const o of inventObjects(objs, cooc, rng, rng.next() < 0.6 ? 1 : 2)) shown.splice(rng.int(shown.length + 1), 0, o);
  } else if (kind === 'hallucinated-swap') {
    // as many objects as the image has, one (or two, of three or more) of them invented: only a
    // reader that checks the objects themselves can tell it from the faithful answer
    const invented = inventObjects(objs, cooc, rng, shown.length >= 3 && rng.next() < 0.4 ? 2 : 1);
    invented.forEach((o, k) => { shown[k] = o; });
    shown = rng.shuffle(shown);
  } else if (kind === 'hallucinated-color') {
    shown = recolorOne(shown, rng);
  }
  // a partial answer names fewer objects than the image has: it must not state a wrong total
  const partial = kind === 'faithful-partial' && shown.length < objs.length;
  return rng.next() < 0.7
    ? describeObjects(shown, gt.background, rng, partial ? objs.length : shown.length)
    : listObjects(shown, gt.background, rng, rng.next() < 0.5, partial);
}

/**
 * The simulated annotator: prefers the response without hallucinated objects; between two
 * faithful (or two hallucinated) ones, the one naming more true objects, then the one with
 * fewer hallucinated mentions, then a seeded coin. Returns 1 or 2 before noise.
 */
export function annotatorChoice(a: MentionJudgement, b: MentionJudgement, coin: number): 1 | 2 {
  const ha = a.hallucinated > 0;
  const hb = b.hallucinated > 0;
  if (ha !== hb) return ha ? 2 : 1;
  if (a.matched !== b.matched) return a.matched > b.matched ? 1 : 2;
  if (a.hallucinated !== b.hallucinated) return a.hallucinated < b.hallucinated ? 1 : 2;
  return coin < 0.5 ? 1 : 2;
}

/**
 * One preference pair on a held-out image. The mix is chosen so that length does not give the
 * annotator's choice away (a first version let "the shorter answer wins" score 84% on the
 * hallucination pairs, and both reward models learned exactly that and nothing else):
 *   40% faithful-full vs faithful-partial: the longer, more informative answer wins;
 *   20% trap: faithful-partial vs a longer answer listing every true object plus invented ones
 *       (the longer answer loses: what fools a length-loving reward model);
 *   30% faithful vs hallucinated-swap / hallucinated-color: the same number of objects, one
 *       invented or recoloured (length says nothing; only checking the objects does);
 *   10% two hallucinated answers.
 * Images with one object cannot have a partial answer; they get the same-count pairs.
 */
export function preferencePair(gt: GroundTruth, cooc: Cooccurrence, rng: Rng, annotatorNoise: number): PreferencePair {
  const objs = textObjects(gt);
  const multi = objs.length > 1;
  const r = rng.next();
  let kinds: [ResponseKind, ResponseKind];
  let trapCandidate = false;
  const sameCount = () => rng.pick(['hallucinated-swap', 'hallucinated-color'] as const);
  if (r < 0.4 && multi) kinds = ['faithful-full', 'faithful-partial'];
  else if (r < 0.6 && multi) {
    kinds = ['faithful-partial', 'hallucinated'];
    trapCandidate = true;
  } else if (r < 0.9 || !multi) kinds = ['faithful-full', sameCount()];
  else kinds = ['hallucinated-swap', 'hallucinated-color'];
  let texts: [string, string] = [response(kinds[0], objs, gt, cooc, rng), response(kinds[1], objs, gt, cooc, rng)];
  if (trapCandidate) {
    // The trap needs the hallucinated answer to look more informative: full listing + invented,
    // written as a paragraph, so it is longer than the partial faithful one.
    const shown = rng.shuffle(objs.slice());
    for (const o of inventObjects(objs, cooc, rng, rng.next() < 0.6 ? 1 : 2)) shown.splice(rng.int(shown.length + 1), 0, o);
    texts = [texts[0], describeObjects(shown, gt.background, rng)];
  }
  if (rng.next() < 0.5) {
    kinds = [kinds[1], kinds[0]];
    texts = [texts[1], texts[0]];
  }
  const ja = judgeMentions(texts[0], objs);
  const jb = judgeMentions(texts[1], objs);
  const rule = annotatorChoice(ja, jb, rng.next());
  const flipped = rng.next() < annotatorNoise;
  const preference: 1 | 2 = flipped ? (rule === 1 ? 2 : 1) : rule;
  const hallucination = ja.hallucinated > 0 !== jb.hallucinated > 0;
  const hallIdx = ja.hallucinated > 0 ? 0 : 1;
  const trap = hallucination && texts[hallIdx].length > texts[1 - hallIdx]!.length && (hallIdx === 0 ? jb : ja).matched <= (hallIdx === 0 ? ja : jb).matched;
  const prompt = rng.pick(PREFERENCE_PROMPTS);
  const reference = describeObjects(rng.shuffle(objs.slice()), gt.background, rng);
  // LLaVA-RLHF's reward code asserts the last turn is "gpt" and swaps in output_1/output_2, so
  // the prompt turns are followed by a reference answer that converters must drop.
  const conversations: Turn[] = [];
  if (rng.next() < 0.3) {
    const first = llavaConversation(gt, cooc, rng).slice(0, 2);
    conversations.push(...first, { from: 'human', value: prompt }, { from: 'gpt', value: reference });
  } else {
    conversations.push({ from: 'human', value: `<image>\n${prompt}` }, { from: 'gpt', value: reference });
  }
  return { conversations, output_1: texts[0], output_2: texts[1], kinds, preference, hallucination, flipped, trap };
}

// ---------------------------------------------------------------------------
// Flickr30k Entities sentences
// ---------------------------------------------------------------------------

export interface FlickrEntity {
  readonly chainId: number;
  /** Boxes of the entity (several for "two red circles"); empty for scene / no-box entities. */
  readonly boxes: ShapeObject['box'][];
  readonly scene: boolean;
  readonly nobndbox: boolean;
}

/**
 * Five Flickr30k Entities sentences: one entity chain per colour+shape group (one box per
 * object), one `scene` chain for the background, sometimes a box-less "the shapes" chain and
 * the `notvisual` chain 0. Tokens are space-separated, punctuation included, as in the dataset.
 */
export function flickrSentences(gt: GroundTruth, chainBase: number, rng: Rng): { lines: string[]; entities: FlickrEntity[] } {
  const groups = groupByKind(gt.objects);
  const entities: FlickrEntity[] = [];
  const groupChains = groups.map((g, i) => {
    const chainId = chainBase + i;
    entities.push({ chainId, boxes: g.items.map((o) => o.box), scene: false, nobndbox: false });
    return chainId;
  });
  const sceneChain = chainBase + groups.length;
  entities.push({ chainId: sceneChain, boxes: [], scene: true, nobndbox: false });
  const useGroupChain = rng.next() < 0.4;
  const allChain = chainBase + groups.length + 1;
  if (useGroupChain) entities.push({ chainId: allChain, boxes: [], scene: false, nobndbox: true });

  const phrase = (gi: number, capitalise = false): string => {
    const g = groups[gi]!;
    let words: string;
    if (g.items.length > 1) words = `${numberWord(g.items.length)} ${g.color} ${pluralShape(g.shape)}`;
    else words = objectPhrase(g.items[0]!, { size: rng.next() < 0.6 });
    if (capitalise) words = cap(words);
    return `[/EN#${groupChains[gi]}/other ${words}]`;
  };
  const scene = (words: string) => `[/EN#${sceneChain}/scene ${words}]`;
  const listAll = (capFirst: boolean) => {
    const parts = groups.map((_, i) => phrase(i, capFirst && i === 0));
    if (parts.length === 1) return parts[0]!;
    return `${parts.slice(0, -1).join(' , ')} and ${parts[parts.length - 1]}`;
  };
  const bg = gt.background;
  const lines: string[] = [];
  lines.push(`${listAll(true)} on ${scene(`a ${bg} background`)} .`);
  const pool: (() => string)[] = [
    () => `[/EN#0/notvisual Someone] drew ${listAll(false)} on ${scene(`a ${bg} background`)} .`,
    () => `${phrase(rng.int(groups.length), true)} is shown on ${scene(`the ${bg} background`)} .`,
    () => (groups.length > 1 ? `${phrase(0, true)} near ${phrase(1)} .` : `${phrase(0, true)} alone on ${scene(`a plain ${bg} surface`)} .`),
    () => `A picture of ${listAll(false)} .`,
    () => `${scene(`A ${bg} background`)} with ${listAll(false)} .`,
    () => `Simple shapes , including ${phrase(rng.int(groups.length))} , on ${scene(`a ${bg} backdrop`)} .`,
  ];
  if (useGroupChain) lines.push(`[/EN#${allChain}/other The shapes] are spread over ${scene(`a ${bg} background`)} .`);
  for (const i of rng.shuffle(pool.map((_, k) => k))) {
    if (lines.length >= 5) break;
    const line = pool[i]!();
    if (!lines.includes(line)) lines.push(line);
  }
  while (lines.length < 5) lines.push(`${listAll(true)} .`);
  return { lines: rng.shuffle(lines), entities };
}

// ---------------------------------------------------------------------------
// MMHal-Bench
// ---------------------------------------------------------------------------

export const MMHAL_TYPES = ['attribute', 'adversarial', 'comparison', 'counting', 'relation', 'environment', 'holistic', 'other'] as const;
export type MmhalType = (typeof MMHAL_TYPES)[number];

export interface MmhalItem {
  readonly question_topic: string;
  readonly question: string;
  readonly gt_answer: string;
}

/** One MMHal-style question of the given type about the image, or undefined if it does not fit. */
export function mmhalItem(type: MmhalType, gt: GroundTruth, cooc: Cooccurrence, rng: Rng): MmhalItem | undefined {
  const objs = textObjects(gt);
  const shapes = counts(objs.map((o) => o.shape));
  const kinds = counts(objs.map(objectKey));
  const uniqueKinds = objs.filter((o) => kinds.get(objectKey(o)) === 1);
  switch (type) {
    case 'attribute': {
      const uniq = objs.filter((o) => shapes.get(o.shape) === 1);
      if (uniq.length === 0) return undefined;
      const o = rng.pick(uniq);
      return rng.next() < 0.5
        ? { question_topic: o.shape, question: `What color is the ${o.shape} in the image?`, gt_answer: `The ${o.shape} is ${o.color}.` }
        : { question_topic: o.shape, question: `Is the ${o.shape} small or large?`, gt_answer: `The ${o.shape} is ${o.size}; it is ${objectPhrase(o)}.` };
    }
    case 'adversarial': {
      const absent = SHAPES.filter((s) => !shapes.has(s));
      if (absent.length === 0) return undefined;
      const s = rng.pick(absent);
      return { question_topic: s, question: `What color is the ${s} in the image?`, gt_answer: `There is no ${s} in the image. It shows ${joinList(objs.map((o) => objectPhrase(o)))}.` };
    }
    case 'comparison': {
      if (uniqueKinds.length < 2) return undefined;
      const [a, b] = rng.shuffle(uniqueKinds.slice());
      if (a!.size === b!.size) {
        return { question_topic: a!.shape, question: `Is the ${a!.color} ${a!.shape} larger than the ${b!.color} ${b!.shape}?`, gt_answer: `They are about the same size: both are ${a!.size}.` };
      }
      const big = a!.size === 'large' ? a! : b!;
      return { question_topic: a!.shape, question: `Which is larger, the ${a!.color} ${a!.shape} or the ${b!.color} ${b!.shape}?`, gt_answer: `The ${big.color} ${big.shape} is larger.` };
    }
    case 'counting': {
      if (rng.next() < 0.5) return { question_topic: 'shapes', question: 'How many shapes are there in the image?', gt_answer: `There ${objs.length === 1 ? 'is one shape' : `are ${numberWord(objs.length)} shapes`} in the image.` };
      const s = rng.pick(objs).shape;
      const n = shapes.get(s)!;
      return { question_topic: s, question: `How many ${pluralShape(s)} are in the image?`, gt_answer: n === 1 ? `There is one ${s}.` : `There are ${numberWord(n)} ${pluralShape(s)}.` };
    }
    case 'relation': {
      if (uniqueKinds.length < 2) return undefined;
      const [a, b] = rng.shuffle(uniqueKinds.slice());
      const rel = relationOf(gt, a!, b!);
      return { question_topic: a!.shape, question: `Where is the ${a!.color} ${a!.shape} relative to the ${b!.color} ${b!.shape}?`, gt_answer: `The ${a!.color} ${a!.shape} is ${rel} the ${b!.color} ${b!.shape}.` };
    }
    case 'environment':
      return { question_topic: 'background', question: 'What does the background of the image look like?', gt_answer: `The background is a plain ${gt.background} color with no texture.` };
    case 'holistic':
      return { question_topic: 'shapes', question: 'Describe the image in detail.', gt_answer: describeObjects(objs, gt.background, rng) };
    case 'other': {
      const top = objs[topmostIndex(gt)]!;
      if (objs.length < 2) return { question_topic: top.shape, question: 'Where in the image is the shape placed?', gt_answer: `${cap(objectPhrase(top))} is ${positionPhrase(top.position)}.` };
      return { question_topic: top.shape, question: 'Which shape is closest to the top edge of the image?', gt_answer: `${cap(objectPhrase(top, { article: 'the' }))} is closest to the top.` };
    }
  }
}

