/**
 * The shapes world's ground truth: what every generated image really contains.
 * Shared by the generator (sources/), the rule judge (src/eval/) and evaluation,
 * so all of them speak one vocabulary.
 */
export const SHAPES = ['circle', 'square', 'triangle', 'star', 'diamond', 'hexagon'] as const;
export const COLORS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'white', 'black'] as const;
export const SIZES = ['small', 'large'] as const;
export const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'] as const;

export type Shape = (typeof SHAPES)[number];
export type Color = (typeof COLORS)[number];
export type Size = (typeof SIZES)[number];

export interface ShapeObject {
  shape: Shape;
  color: Color;
  size: Size;
  /** Pixel box, 0-based, [x0, y0, x1, y1] with x1/y1 exclusive. */
  box: [number, number, number, number];
}

/** One line of `<world>/ground_truth.jsonl`. */
export interface GroundTruth {
  /** Path relative to `<world>/images`, e.g. `coco/train2017/000000000042.jpg`. */
  image: string;
  /** Numeric id as the dataset names it (COCO image_id or Flickr30k id). */
  image_id: number;
  dataset: 'coco' | 'flickr30k';
  /** `train` images feed SFT/RM/PPO; `eval` images only POPE/MMHal. */
  split: 'train' | 'eval';
  width: number;
  height: number;
  background: string;
  objects: ShapeObject[];
}

/** "red circle" style key used for co-occurrence and hallucination checks. */
export function objectKey(o: { color: string; shape: string }): string {
  return `${o.color} ${o.shape}`;
}

// ---------------------------------------------------------------------------
// Phrase helpers. The generator writes every object mention with these, and rule
// judges parse text back with `mentionedObjects`, so both sides agree on wording.
// ---------------------------------------------------------------------------

/** Background names used by the generator (`GroundTruth.background`). */
export const BACKGROUNDS = ['grey', 'beige'] as const;

/** Coarse position of an object, from the image thirds its box centre falls in. */
export const POSITIONS = ['top left', 'top', 'top right', 'left', 'center', 'right', 'bottom left', 'bottom', 'bottom right'] as const;
export type Position = (typeof POSITIONS)[number];

/** "a" or "an" for the word that follows. */
export function article(word: string): 'a' | 'an' {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}

/** Plural of a shape name ("circles"); every shape in SHAPES takes a plain "s". */
export function pluralShape(shape: string): string {
  return `${shape}s`;
}

/** Number word for 0-9, digits beyond. */
export function numberWord(n: number): string {
  return NUMBER_WORDS[n] ?? String(n);
}

/**
 * One object phrase: "a small red circle", "the red circle", "red circle".
 * `size: false` leaves the size out; `article: 'none'` gives the bare phrase.
 */
export function objectPhrase(
  o: { color: string; shape: string; size?: string },
  options: { article?: 'a' | 'the' | 'none'; size?: boolean } = {},
): string {
  const words = [options.size !== false && o.size ? o.size : undefined, o.color, o.shape].filter((w): w is string => !!w);
  const bare = words.join(' ');
  const art = options.article ?? 'a';
  if (art === 'none') return bare;
  if (art === 'the') return `the ${bare}`;
  return `${article(bare)} ${bare}`;
}

/** Position of a pixel box [x0, y0, x1, y1) in an image of the given size. */
export function positionOf(box: readonly [number, number, number, number], width: number, height: number): Position {
  const cx = (box[0] + box[2]) / 2;
  const cy = (box[1] + box[3]) / 2;
  const col = cx < width / 3 ? 'left' : cx < (2 * width) / 3 ? 'center' : 'right';
  const row = cy < height / 3 ? 'top' : cy < (2 * height) / 3 ? 'middle' : 'bottom';
  if (row === 'middle') return col; // 'left' | 'center' | 'right'
  if (col === 'center') return row;
  return `${row} ${col}` as Position;
}

/** "at the top left", "on the left", "in the center", "at the bottom". */
export function positionPhrase(position: Position): string {
  if (position === 'center') return 'in the center';
  if (position === 'left' || position === 'right') return `on the ${position}`;
  return `at the ${position}`;
}

/** One colour+shape mention found in text by `mentionedObjects`. */
export interface ObjectMention {
  color: Color;
  shape: Shape;
  size?: Size;
  /** From a number word or digit before the phrase, 1 for a singular phrase, null for a bare plural. */
  count: number | null;
  /** True when a negation ("no", "not", "without", "n't") precedes it in the same clause. */
  negated: boolean;
  /** Character offset of the mention in the text. */
  index: number;
}

const MENTION_RE = new RegExp(
  `\\b(?:(${NUMBER_WORDS.join('|')}|\\d+)\\s+)?(?:(${SIZES.join('|')})\\s+)?(${COLORS.join('|')})\\s+(${SHAPES.join('|')})(s?)\\b`,
  'gi',
);
const NEGATION_RE = /\b(no|not|never|without|none|nothing)\b|n't\b/i;

/**
 * Every "[count] [size] colour shape" mention in `text`, in order. Only full colour+shape
 * phrases count (the generator always writes objects that way). A mention is negated when a
 * negation word stands between it and the previous mention or clause boundary.
 */
export function mentionedObjects(text: string): ObjectMention[] {
  const out: ObjectMention[] = [];
  let lastEnd = 0;
  for (const m of text.matchAll(MENTION_RE)) {
    const index = m.index ?? 0;
    const before = text.slice(lastEnd, index);
    const clauseStart = Math.max(before.lastIndexOf('.'), before.lastIndexOf('?'), before.lastIndexOf('!'), before.lastIndexOf(';'), before.lastIndexOf(','));
    const window = clauseStart >= 0 ? before.slice(clauseStart + 1) : before;
    const countWord = m[1]?.toLowerCase();
    let count: number | null = m[5] ? null : 1;
    if (countWord !== undefined) {
      const w = (NUMBER_WORDS as readonly string[]).indexOf(countWord);
      count = w >= 0 ? w : Number(countWord);
    }
    const mention: ObjectMention = {
      color: m[3]!.toLowerCase() as Color,
      shape: m[4]!.toLowerCase() as Shape,
      count,
      negated: NEGATION_RE.test(window),
      index,
    };
    if (m[2]) mention.size = m[2].toLowerCase() as Size;
    out.push(mention);
    lastEnd = index + m[0].length;
  }
  return out;
}
