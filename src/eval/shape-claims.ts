/**
 * Reads shapes-world text back into checkable claims: which objects (colour, shape, size,
 * coarse position, count) an answer asserts or denies, pairwise relations ("the blue star
 * is to the left of the green circle", "the red circle is larger than the blue star"),
 * superlatives ("the red circle is closest to the top"), the background colour, and how a
 * short answer ("Yes", "3", "Red.", "At the top left.") completes its question.
 *
 * Binding. Every attribute belongs to the phrase it occurs in: "It shows a small black
 * diamond" is a claim about a diamond whatever the question asked. Only words that belong to
 * no object phrase ("Red.", "It is red.", "On the right side.", "2") complete the question's
 * subject, and only when they are unambiguous (one distinct value). A phrase elsewhere in the
 * answer answers an attribute question only if it agrees with the subject ("The star is
 * blue." for "What color is the star?"; "A circle." for "What shape is the red object?").
 * "There is no star" denies the subject: that is the answer "none", not a colour.
 *
 * What it understands (and, by omission, what it does not):
 * - Noun phrases "[a|an|the|any|N] [size]* [colour]* (shape|shapes|shape-word|object|item|figure)",
 *   e.g. "a small red circle", "two squares", "three shapes", "the blue star", "two red objects",
 *   and "anything/something <colour>". Sizes: small/large (big/little/tiny/huge map onto them).
 *   Only one colour per phrase: "red and blue circles" is read as "blue circles".
 * - Counts: a number word or digit before the phrase is an exact count of that kind (at that
 *   position when one is given); a/an/the/bare plurals only assert that at least one exists.
 *   "There are three shapes" is the total number of objects.
 * - Predicates after "is/are": "the circle is red", "the red circle is large".
 * - Positions: "at the top left", "on the left (side)", "in the center", "in the upper right
 *   corner", after the phrase or fronting the sentence ("At the top, there is ..."). A claimed
 *   side or row ("on the left") accepts any of its three cells; "in the center" only the center.
 *   "The circle is not at the top" denies that position (and presupposes the circle).
 * - Relations: "(to the) left of", "(to the) right of", "above", "on top of", "over", "below",
 *   "under", "beneath" between two phrases; "larger/bigger/smaller than", "the same size as",
 *   "as large as" (size classes); "X is larger" when the question named the other object;
 *   "(they are) the same size", "both are large" for the question's two objects.
 *   "next to", "near", "beside" are not checked.
 * - Superlatives: "X is (the one) closest/nearest to the top|bottom|left|right (edge)",
 *   "highest", "lowest", "topmost", "leftmost", ... (by box edges).
 * - Background: "<colour> background", "background is [a] [plain|light|...] <colour> [colour]",
 *   "background colour (of the image) is <colour>".
 * - Negation: "no", "not", "never", "without", "none", "nothing", "n't" earlier in the same
 *   clause (commas end clauses); "no red circle or blue star" negates both.
 * - No coreference ("it", "they", "the red one") beyond completing the question's subject as
 *   above, no other quantifiers or comparisons, no ordinals, and a relation fronting a sentence
 *   ("Above the star, there is ...") is only read as the answer to a relation question.
 *   Text it cannot read yields no claim, so it can neither hallucinate nor inform: the judge errs
 *   towards "not informative", never towards "hallucinated".
 */
import { BACKGROUNDS, COLORS, NUMBER_WORDS, SHAPES, type Color, type Position, type Shape, type Size } from '../../schemas/shapes-world.ts';

export interface ObjectSpec {
  color?: Color;
  shape?: Shape;
  size?: Size;
  /** A claimed cell ("top left") or side/row ("left", "top"). */
  position?: Position;
}

export type SpatialRelation = 'left of' | 'right of' | 'above' | 'below';
export type SizeRelation = 'larger than' | 'smaller than' | 'same size as';
export type Relation = SpatialRelation | SizeRelation;
/** Which image edge a superlative ("closest to the top") is about. */
export type Side = 'top' | 'bottom' | 'left' | 'right';

export type Claim =
  | {
      kind: 'object';
      spec: ObjectSpec;
      /** Exact count when stated with a number, else null (at least one). */
      exact: number | null;
      negated: boolean;
      text: string;
    }
  | { kind: 'relation'; a: ObjectSpec; relation: Relation; b: ObjectSpec; negated: boolean; text: string }
  | { kind: 'extreme'; spec: ObjectSpec; side: Side; negated: boolean; text: string }
  | { kind: 'background'; color: string; negated: boolean; text: string };

export type QuestionFrame =
  | { kind: 'yesno'; main: Claim | null; presupposed: Claim[] }
  | { kind: 'count'; subject: ObjectSpec }
  | { kind: 'attribute'; asked: 'color' | 'shape' | 'size' | 'position'; subject: ObjectSpec }
  /** "Which is larger, a or b?" (form 'which') or "Is a larger than b?" (form 'yesno'). */
  | { kind: 'comparison'; form: 'which' | 'yesno'; relation: SizeRelation; a: ObjectSpec; b: ObjectSpec }
  /** "Where is a relative to b?" */
  | { kind: 'relation'; a: ObjectSpec; b: ObjectSpec }
  /** "Which shape is closest to the top?" */
  | { kind: 'extreme'; side: Side; subject: ObjectSpec }
  | { kind: 'background' }
  | { kind: 'open' };

const SHAPE_SET = new Set<string>(SHAPES);
const COLOR_SET = new Set<string>(COLORS);
// Background colours: ours, plus common ones a model might say instead (so they can be wrong).
const BACKGROUND_WORDS = new Set<string>([...COLORS, ...BACKGROUNDS, 'gray', 'brown', 'pink', 'tan', 'cream', 'beige']);
// Words that may stand between "background is" and its colour without changing it.
const BACKGROUND_MODIFIERS = new Set([
  'a', 'an', 'plain', 'solid', 'flat', 'uniform', 'uniformly', 'simple', 'single', 'light', 'pale', 'dark', 'neutral', 'soft', 'muted',
  'smooth', 'clean', 'even', 'very', 'mostly', 'entirely', 'completely', 'all', 'just', 'only', 'one', 'bright', 'dull', 'warm', 'cool',
]);
const COLOUR_NOUNS = new Set(['color', 'colour', 'colored', 'coloured', 'tone', 'shade', 'hue']);
const SIZE_MAP: Record<string, Size> = { small: 'small', little: 'small', tiny: 'small', large: 'large', big: 'large', huge: 'large' };
const GENERIC = new Set(['shape', 'shapes', 'object', 'objects', 'item', 'items', 'figure', 'figures']);
// Adjectives that say nothing checkable inside a phrase ("three geometric shapes").
const NEUTRAL_ADJECTIVES = new Set(['geometric', 'colored', 'coloured', 'colorful', 'colourful', 'distinct', 'different', 'solid', 'flat', 'simple', 'basic']);
const DETERMINERS = new Set(['a', 'an', 'the', 'this', 'that', 'any', 'some', 'each', 'every']);
const NEGATIONS = new Set(['no', 'not', 'never', 'without', 'none', 'nothing', 'nor']);
const LINK_VERBS = new Set([
  'is', 'are', 'can', 'be', 'seen', 'sits', 'sit', 'sitting', 'appears', 'appear', 'located', 'placed', 'lies', 'lie',
  'drawn', 'visible', 'found', 'positioned', 'shown', 'also', 'just', 'directly', 'slightly',
  // comparisons: "is much larger than", "is about the same size as"
  'much', 'somewhat', 'about', 'roughly', 'approximately', 'nearly', 'clearly',
]);
const POSITION_WORDS: Record<string, 'top' | 'bottom' | 'left' | 'right' | 'center'> = {
  top: 'top', upper: 'top', bottom: 'bottom', lower: 'bottom', left: 'left', right: 'right', center: 'center', centre: 'center', middle: 'center',
};
const IMAGE_WORDS = new Set(['image', 'picture', 'photo', 'frame', 'canvas', 'scene', 'drawing']);
const SIDE_WORDS: Record<string, Side> = { top: 'top', upper: 'top', bottom: 'bottom', lower: 'bottom', left: 'left', right: 'right' };
const SUPERLATIVES: Record<string, Side> = {
  highest: 'top', topmost: 'top', uppermost: 'top', lowest: 'bottom', bottommost: 'bottom', lowermost: 'bottom', leftmost: 'left', rightmost: 'right',
};
const INVERSE: Record<Relation, Relation> = {
  'left of': 'right of', 'right of': 'left of', above: 'below', below: 'above',
  'larger than': 'smaller than', 'smaller than': 'larger than', 'same size as': 'same size as',
};

function numberValue(tok: string): number | null {
  if (/^\d+$/.test(tok)) return Number(tok);
  const i = (NUMBER_WORDS as readonly string[]).indexOf(tok);
  return i >= 0 ? i : null;
}

function singular(tok: string): { shape: Shape; plural: boolean } | null {
  if (SHAPE_SET.has(tok)) return { shape: tok as Shape, plural: false };
  if (tok.endsWith('s') && SHAPE_SET.has(tok.slice(0, -1))) return { shape: tok.slice(0, -1) as Shape, plural: true };
  return null;
}

/** Lower-cased word tokens and commas of one sentence; "isn't" stays one token. */
function tokenize(sentence: string): string[] {
  return sentence.toLowerCase().match(/[a-z]+(?:'[a-z]+)?|\d+|,/g) ?? [];
}

/** Sentences of a text (split on . ! ? ; : and newlines). */
function sentences(text: string): string[] {
  return text.split(/[.!?;:\n]+/).map((s) => s.trim()).filter(Boolean);
}

interface NounPhrase {
  start: number;
  end: number; // exclusive
  spec: ObjectSpec;
  exact: number | null;
  /** A generic head with neither number nor colour/size/shape ("the shapes"): asserts nothing. */
  vacuous: boolean;
}

/** Tries to read a noun phrase starting at `i`. */
function nounPhraseAt(toks: readonly string[], i: number): NounPhrase | null {
  let j = i;
  let exact: number | null = null;
  if (toks[j] === 'only') j++;
  const num = toks[j] !== undefined ? numberValue(toks[j]!) : null;
  if (num !== null) {
    exact = num;
    j++;
  } else if (DETERMINERS.has(toks[j] ?? '')) {
    j++;
  }
  // "anything red", "something red"
  if ((toks[j] === 'anything' || toks[j] === 'something') && COLOR_SET.has(toks[j + 1] ?? '')) {
    return { start: i, end: j + 2, spec: { color: toks[j + 1] as Color }, exact: null, vacuous: false };
  }
  const spec: ObjectSpec = {};
  while (j < toks.length) {
    const t = toks[j]!;
    if (SIZE_MAP[t]) spec.size = SIZE_MAP[t];
    else if (COLOR_SET.has(t)) spec.color = t as Color;
    else if (t === 'and' && (SIZE_MAP[toks[j + 1] ?? ''] || COLOR_SET.has(toks[j + 1] ?? ''))) {
      /* "small and red circle": keep reading */
    } else if (!NEUTRAL_ADJECTIVES.has(t)) break;
    j++;
  }
  const head = toks[j];
  if (head === undefined) return null;
  const s = singular(head);
  if (s) {
    spec.shape = s.shape;
    return { start: i, end: j + 1, spec, exact, vacuous: false };
  }
  if (GENERIC.has(head)) {
    const vacuous = exact === null && spec.color === undefined && spec.size === undefined;
    return { start: i, end: j + 1, spec, exact, vacuous };
  }
  return null;
}

/** Reads "[at|in|on|to|toward(s)] the <position words> [corner|side|part|area|edge] [of the image]". */
function positionAt(toks: readonly string[], i: number): { position: Position; end: number } | null {
  let j = i;
  if (!['at', 'in', 'on', 'toward', 'towards', 'near'].includes(toks[j] ?? '')) return null;
  j++;
  if (toks[j] === 'the') j++;
  let row: 'top' | 'bottom' | 'center' | undefined;
  let col: 'left' | 'right' | 'center' | undefined;
  const startWords = j;
  while (j < toks.length && POSITION_WORDS[toks[j]!]) {
    const p = POSITION_WORDS[toks[j]!]!;
    if (p === 'top' || p === 'bottom') row = p;
    else if (p === 'left' || p === 'right') col = p;
    else if (row === undefined && col === undefined) row = 'center';
    j++;
  }
  if (j === startWords) return null;
  if (['corner', 'side', 'part', 'area', 'edge', 'half', 'region'].includes(toks[j] ?? '')) j++;
  // "... left of <object>" is a relation, not a position
  if (toks[j] === 'of') {
    let k = j + 1;
    if (toks[k] === 'the' || toks[k] === 'this') k++;
    if (!IMAGE_WORDS.has(toks[k] ?? '')) return null;
    j = k + 1;
  }
  let position: Position;
  if (row === 'top' || row === 'bottom') position = (col === 'left' || col === 'right' ? `${row} ${col}` : row) as Position;
  else if (col === 'left' || col === 'right') position = col;
  else position = 'center';
  return { position, end: j };
}

/** Reads a spatial relation phrase at `i`; returns the relation and where the second phrase starts. */
function relationAt(toks: readonly string[], i: number): { relation: SpatialRelation; next: number } | null {
  let j = i;
  if (toks[j] === 'to' || toks[j] === 'on' || toks[j] === 'at') {
    if (toks[j] === 'on' && toks[j + 1] === 'top' && toks[j + 2] === 'of') return { relation: 'above', next: j + 3 };
    j++;
    if (toks[j] === 'the') j++;
  }
  const w = toks[j];
  if ((w === 'left' || w === 'right') && toks[j + 1] === 'of') {
    const k = j + 2;
    if (toks[k] === 'the' && IMAGE_WORDS.has(toks[k + 1] ?? '')) return null;
    return { relation: w === 'left' ? 'left of' : 'right of', next: k };
  }
  if (j !== i) return null;
  if (w === 'above' || w === 'over') return { relation: 'above', next: j + 1 };
  if (w === 'below' || w === 'under' || w === 'beneath' || w === 'underneath') return { relation: 'below', next: j + 1 };
  return null;
}

/**
 * Reads a size comparison at `i`: "larger/bigger/smaller [than]", "the same size [as]",
 * "as large/big/small as". `next` is where the second phrase starts, or null when there is none
 * ("the red circle is larger.").
 */
function comparativeAt(toks: readonly string[], i: number): { relation: SizeRelation; next: number | null; end: number } | null {
  const w = toks[i];
  let relation: SizeRelation | undefined;
  let j = i;
  if (w === 'larger' || w === 'bigger') relation = 'larger than';
  else if (w === 'smaller') relation = 'smaller than';
  if (relation) {
    j = i + 1;
    return toks[j] === 'than' ? { relation, next: j + 1, end: j + 1 } : { relation, next: null, end: j };
  }
  if (w === 'the') j++;
  if (toks[j] === 'same' && toks[j + 1] === 'size') {
    j += 2;
    return toks[j] === 'as' ? { relation: 'same size as', next: j + 1, end: j + 1 } : { relation: 'same size as', next: null, end: j };
  }
  if (w === 'as' && (toks[i + 1] === 'large' || toks[i + 1] === 'big' || toks[i + 1] === 'small') && toks[i + 2] === 'as') {
    return { relation: 'same size as', next: i + 3, end: i + 3 };
  }
  return null;
}

/** Reads "[the] [one|shape|object] closest/nearest to the <side> [edge] [of the image]" or "highest", "leftmost", ... at `i`. */
function extremeAt(toks: readonly string[], i: number): { side: Side; end: number } | null {
  let j = i;
  if (toks[j] === 'the') j++;
  if (['one', 'shape', 'object', 'item', 'figure'].includes(toks[j] ?? '') && j > i) j++;
  const w = toks[j];
  if (w === undefined) return null;
  if (SUPERLATIVES[w]) return { side: SUPERLATIVES[w], end: j + 1 };
  if (w !== 'closest' && w !== 'nearest') return null;
  j++;
  if (toks[j] === 'to') j++;
  if (toks[j] === 'the') j++;
  const side = SIDE_WORDS[toks[j] ?? ''];
  if (!side) return null;
  j++;
  if (['edge', 'side', 'border', 'part', 'end'].includes(toks[j] ?? '')) j++;
  if (toks[j] === 'of') {
    let k = j + 1;
    if (toks[k] === 'the' || toks[k] === 'this') k++;
    if (IMAGE_WORDS.has(toks[k] ?? '')) j = k + 1;
  }
  return { side, end: j };
}

/** "is [not] [a|an] small/red [and ...]" after a phrase, unless a noun follows or it contradicts the phrase. */
function readPredicate(toks: readonly string[], j: number, spec: ObjectSpec): { add: ObjectSpec; end: number; negated: boolean } | null {
  if (toks[j] !== 'is' && toks[j] !== 'are') return null;
  let k = j + 1;
  let negated = false;
  if (toks[k] === 'not') {
    negated = true;
    k++;
  }
  if (toks[k] === 'a' || toks[k] === 'an') k++;
  const add: ObjectSpec = {};
  let any = false;
  while (k < toks.length && (SIZE_MAP[toks[k]!] || COLOR_SET.has(toks[k]!) || (toks[k] === 'and' && any && (SIZE_MAP[toks[k + 1] ?? ''] || COLOR_SET.has(toks[k + 1] ?? ''))))) {
    const w = toks[k]!;
    if (SIZE_MAP[w]) add.size = SIZE_MAP[w];
    else if (COLOR_SET.has(w)) add.color = w as Color;
    any = any || w !== 'and';
    k++;
  }
  if (!any) return null;
  const nextIsHead = toks[k] !== undefined && (singular(toks[k]!) !== null || GENERIC.has(toks[k]!) || toks[k] === 'background');
  const conflict = (add.color && spec.color && add.color !== spec.color) || (add.size && spec.size && add.size !== spec.size);
  if (nextIsHead || conflict) return null;
  return { add, end: k, negated };
}

/**
 * A background claim around the word "background" at `i`: "<colour> [coloured] background" before
 * it, or "background [colour] [of the image] is|looks [not] [a] [plain ...] <colour>" after it.
 */
function backgroundAt(toks: readonly string[], i: number): { color: string; negated: boolean; start: number; end: number } | null {
  let b = i - 1;
  if (COLOUR_NOUNS.has(toks[b] ?? '')) b--;
  if (b >= 0 && BACKGROUND_WORDS.has(toks[b]!)) return { color: normBackground(toks[b]!), negated: false, start: b, end: i + 1 };
  let j = i + 1;
  if (toks[j] === 'color' || toks[j] === 'colour') j++;
  if (toks[j] === 'of' && (toks[j + 1] === 'the' || toks[j + 1] === 'this') && IMAGE_WORDS.has(toks[j + 2] ?? '')) j += 3;
  // "Is the background grey?"
  if (j === toks.length - 1 && BACKGROUND_WORDS.has(toks[j]!)) return { color: normBackground(toks[j]!), negated: false, start: i, end: j + 1 };
  if (!['is', 'looks', 'appears', 'seems'].includes(toks[j] ?? '')) return null;
  j++;
  if (toks[j] === 'to' && toks[j + 1] === 'be') j += 2;
  if (toks[j] === 'like') j++;
  let negated = false;
  if (toks[j] === 'not') {
    negated = true;
    j++;
  }
  while (BACKGROUND_MODIFIERS.has(toks[j] ?? '') && !BACKGROUND_WORDS.has(toks[j] ?? '')) j++;
  if (!BACKGROUND_WORDS.has(toks[j] ?? '')) return null;
  const color = normBackground(toks[j]!);
  j++;
  if (COLOUR_NOUNS.has(toks[j] ?? '')) j++;
  return { color, negated, start: i, end: j };
}

function isNegation(tok: string): boolean {
  return NEGATIONS.has(tok) || tok.endsWith("n't");
}

export function describeSpec(spec: ObjectSpec, exact: number | null = null): string {
  const words = [spec.size, spec.color, spec.shape ?? 'object'].filter(Boolean).join(' ');
  const head = exact === null ? words : `${exact} ${words}${exact === 1 ? '' : 's'}`;
  return spec.position ? `${head} (${spec.position})` : head;
}

function objectClaim(spec: ObjectSpec, exact: number | null, negated: boolean): Claim {
  return { kind: 'object', spec, exact, negated, text: `${negated ? 'no ' : ''}${describeSpec(spec, exact)}` };
}

function relationClaim(a: ObjectSpec, relation: Relation, b: ObjectSpec, negated: boolean): Claim {
  return { kind: 'relation', a, relation, b, negated, text: `${describeSpec(a)} ${negated ? 'not ' : ''}${relation} ${describeSpec(b)}` };
}

function extremeClaim(spec: ObjectSpec, side: Side, negated: boolean): Claim {
  return { kind: 'extreme', spec, side, negated, text: `${describeSpec(spec)} ${negated ? 'not ' : ''}closest to the ${side}` };
}

function backgroundClaim(color: string, negated: boolean): Claim {
  return { kind: 'background', color, negated, text: `${negated ? 'not ' : ''}${color} background` };
}

/** Everything one sentence says, including what belongs to no object phrase. */
interface SentenceParse {
  claims: Claim[];
  phrases: { np: NounPhrase; negated: boolean }[];
  /** Attribute words outside every phrase ("Red.", "It is small.", "On the right."): they may complete a question's subject. */
  free: { color: Color[]; size: Size[]; position: Position[]; number: number[]; background: string[] };
  /** "X is larger" with no second object. */
  elliptic: { spec: ObjectSpec; relation: SizeRelation; negated: boolean }[];
  /** A relation with no object before it: "To the left of the blue star." */
  dangling: { relation: SpatialRelation; b: ObjectSpec; negated: boolean }[];
  /** "the same size" outside any phrase ("They are about the same size."). */
  sameSize: boolean;
  /** "both", "they", "each": free words may be about two objects at once. */
  plural: boolean;
}

function parseSentence(sentence: string): SentenceParse {
  const toks = tokenize(sentence);
  const used = new Array<boolean>(toks.length).fill(false);
  const mark = (from: number, to: number) => {
    for (let x = from; x < to && x < toks.length; x++) used[x] = true;
  };
  const out: SentenceParse = {
    claims: [],
    phrases: [],
    free: { color: [], size: [], position: [], number: [], background: [] },
    elliptic: [],
    dangling: [],
    sameSize: false,
    plural: toks.some((t) => t === 'both' || t === 'they' || t === 'each'),
  };
  const claims = out.claims;
  // A sentence-initial position ("At the top left, there is ...") applies to the first phrase after it.
  let fronted: Position | undefined;
  const lead = positionAt(toks, 0);
  let i = 0;
  if (lead) {
    fronted = lead.position;
    i = lead.end;
  }
  let clauseNegated = false;
  let prevNegated = false;
  let lastEnd = -1;
  while (i < toks.length) {
    const t = toks[i]!;
    if (t === ',') {
      clauseNegated = false;
      i++;
      continue;
    }
    if (t === 'background') {
      const bg = backgroundAt(toks, i);
      if (bg) {
        const negated = bg.negated !== clauseNegated;
        claims.push(backgroundClaim(bg.color, negated));
        mark(bg.start, bg.end);
        i = Math.max(bg.end, i + 1);
        continue;
      }
      i++;
      continue;
    }
    if (isNegation(t)) {
      clauseNegated = true;
      i++;
      continue;
    }
    // a colour right before "[coloured] background" is the background's
    if (BACKGROUND_WORDS.has(t) && (toks[i + 1] === 'background' || (COLOUR_NOUNS.has(toks[i + 1] ?? '') && toks[i + 2] === 'background'))) {
      i++;
      continue;
    }
    const np = nounPhraseAt(toks, i);
    if (!np) {
      // a relation with no object before it ("To the left of the blue star.")
      const rel = relationAt(toks, i);
      const other = rel ? nounPhraseAt(toks, rel.next) : null;
      if (rel && other && !other.vacuous) {
        claims.push(objectClaim({ ...other.spec }, other.exact, false));
        out.dangling.push({ relation: rel.relation, b: { ...other.spec }, negated: clauseNegated });
        out.phrases.push({ np: other, negated: false });
        mark(i, other.end);
        i = other.end;
        continue;
      }
      i++;
      continue;
    }
    // "no red circle or blue star": the negation carries over "or"/"nor"
    const between = lastEnd >= 0 ? toks.slice(lastEnd, np.start) : [];
    const negated: boolean = clauseNegated || (prevNegated && between.length === 1 && (between[0] === 'or' || between[0] === 'nor'));
    let j = np.end;
    // predicate right after the phrase ("the circle is red") or after its position
    // ("the shape at the top left is yellow"); then the position itself
    let pred = np.vacuous ? null : readPredicate(toks, j, np.spec);
    if (pred) j = pred.end;
    // what follows the linking words: a position, relation, comparison or superlative, maybe negated
    const tail = (from: number): { at: number; negated: boolean } => {
      let k = from;
      let neg = false;
      while (k < toks.length) {
        const w = toks[k]!;
        if (LINK_VERBS.has(w)) k++;
        else if (w === 'not' || w.endsWith("n't")) {
          neg = true;
          k++;
        } else break;
      }
      return { at: k, negated: neg };
    };
    let after = tail(j);
    const pos = positionAt(toks, after.at);
    if (pos && after.negated && !np.vacuous) {
      // "the circle is not at the top": the circle exists, but not there
      if (!negated) claims.push(objectClaim({ ...np.spec }, null, false));
      claims.push(objectClaim({ ...np.spec, position: pos.position }, null, !negated));
      out.phrases.push({ np, negated });
      prevNegated = negated;
      mark(np.start, pos.end);
      lastEnd = pos.end;
      i = pos.end;
      continue;
    }
    if (pos && !after.negated) {
      // "the shape at the top left" says something after all
      np.spec.position = pos.position;
      np.vacuous = false;
      j = pos.end;
      if (!pred) {
        pred = readPredicate(toks, j, np.spec);
        if (pred) j = pred.end;
      }
      after = tail(j);
    } else if (fronted && !np.vacuous) {
      np.spec.position = fronted;
      if (lead) mark(0, lead.end);
    }
    if (pred?.negated) {
      // "the circle is not red": the thing exists, but not with that attribute
      claims.push(objectClaim({ ...np.spec }, null, negated));
      claims.push(objectClaim({ ...np.spec, ...pred.add }, null, !negated));
      out.phrases.push({ np, negated });
      prevNegated = negated;
      mark(np.start, j);
      lastEnd = j;
      i = j;
      continue;
    }
    if (pred) np.spec = { ...np.spec, ...pred.add };
    if (!np.vacuous) fronted = undefined;
    const k = after.at;
    const relNegated = negated !== after.negated;
    // relation to a second phrase
    const rel = np.vacuous ? null : relationAt(toks, k);
    if (rel) {
      const other = nounPhraseAt(toks, rel.next);
      if (other && !other.vacuous) {
        if (!negated) claims.push(objectClaim({ ...np.spec }, np.exact, false));
        claims.push(objectClaim({ ...other.spec }, other.exact, false));
        claims.push(relationClaim({ ...np.spec }, rel.relation, { ...other.spec }, relNegated));
        out.phrases.push({ np, negated }, { np: other, negated: false });
        prevNegated = false;
        mark(np.start, other.end);
        lastEnd = other.end;
        i = other.end;
        continue;
      }
    }
    // size comparison, with or without the second phrase
    const comp = np.vacuous ? null : comparativeAt(toks, k);
    if (comp) {
      const other = comp.next !== null ? nounPhraseAt(toks, comp.next) : null;
      if (!negated) claims.push(objectClaim({ ...np.spec }, np.exact, false));
      out.phrases.push({ np, negated });
      let end = comp.end;
      if (other && !other.vacuous) {
        claims.push(objectClaim({ ...other.spec }, other.exact, false));
        claims.push(relationClaim({ ...np.spec }, comp.relation, { ...other.spec }, relNegated));
        out.phrases.push({ np: other, negated: false });
        end = other.end;
      } else {
        out.elliptic.push({ spec: { ...np.spec }, relation: comp.relation, negated: relNegated });
      }
      prevNegated = false;
      mark(np.start, end);
      lastEnd = end;
      i = end;
      continue;
    }
    // superlative: "the red circle is closest to the top"
    const ext = np.vacuous ? null : extremeAt(toks, k);
    if (ext) {
      if (!negated) claims.push(objectClaim({ ...np.spec }, np.exact, false));
      claims.push(extremeClaim({ ...np.spec }, ext.side, relNegated));
      out.phrases.push({ np, negated });
      prevNegated = false;
      mark(np.start, ext.end);
      lastEnd = ext.end;
      i = ext.end;
      continue;
    }
    if (!np.vacuous) claims.push(objectClaim({ ...np.spec }, np.exact, negated));
    out.phrases.push({ np, negated });
    prevNegated = negated;
    lastEnd = np.end;
    const next = Math.max(j, np.end);
    mark(np.start, next);
    i = next;
  }
  // words no phrase took
  for (let x = 0; x < toks.length; x++) {
    if (used[x]) continue;
    const w = toks[x]!;
    if (w === 'same' && toks[x + 1] === 'size' && !used[x + 1]) out.sameSize = true;
    const p = positionAt(toks, x);
    if (p && used.slice(x, p.end).every((u) => !u)) {
      out.free.position.push(p.position);
      x = p.end - 1;
      continue;
    }
    if (COLOR_SET.has(w)) out.free.color.push(w as Color);
    if (SIZE_MAP[w]) out.free.size.push(SIZE_MAP[w]);
    if (BACKGROUND_WORDS.has(w)) out.free.background.push(normBackground(w));
    const n = numberValue(w);
    if (n !== null) out.free.number.push(n);
  }
  // a bare "top left" / "center" answer
  if (out.free.position.length === 0 && toks.length > 0 && used.every((u) => !u)) {
    const p = positionAt(['at', 'the', ...toks], 0);
    if (p && p.end === toks.length + 2) out.free.position.push(p.position);
  }
  return out;
}

function normBackground(w: string): string {
  return w === 'gray' ? 'grey' : w;
}

interface TextParse {
  claims: Claim[];
  free: SentenceParse['free'];
  elliptic: SentenceParse['elliptic'];
  dangling: SentenceParse['dangling'];
  sameSize: boolean;
  plural: boolean;
}

function parseText(text: string): TextParse {
  const out: TextParse = { claims: [], free: { color: [], size: [], position: [], number: [], background: [] }, elliptic: [], dangling: [], sameSize: false, plural: false };
  for (const s of sentences(text)) {
    const p = parseSentence(s);
    out.claims.push(...p.claims);
    for (const key of Object.keys(out.free) as (keyof TextParse['free'])[]) (out.free[key] as unknown[]).push(...p.free[key]);
    out.elliptic.push(...p.elliptic);
    out.dangling.push(...p.dangling);
    out.sameSize ||= p.sameSize;
    out.plural ||= p.plural;
  }
  return out;
}

/** Every claim a free-form text makes (each bound to the phrase it occurs in). */
export function extractClaims(text: string): Claim[] {
  return parseText(text).claims;
}

/** "yes" / "no" when the text's first word says so (case-insensitive), else null. */
export function leadingYesNo(text: string): 'yes' | 'no' | null {
  const first = tokenize(text)[0];
  return first === 'yes' ? 'yes' : first === 'no' ? 'no' : null;
}

const YESNO_START = /^(is|are|does|do|can|could|was|were|has|have)\b/;

/** Works out what a question asks (see QuestionFrame). */
export function questionFrame(question: string): QuestionFrame {
  const q = question.toLowerCase().replace(/<image>/g, ' ').trim();
  const firstSentence = sentences(q).find((s) => /\?|^(is|are|does|do|can|could|was|were|has|have|how|what|which|where)\b/.test(s)) ?? q;
  const parsed = parseSentence(firstSentence);
  const toks = tokenize(firstSentence);
  const subject = fillFromWords(parsed.phrases[0] ? { ...parsed.phrases[0].np.spec } : {}, toks);
  const named = parsed.phrases.filter((p) => !p.np.vacuous).map((p) => ({ ...p.np.spec }));
  if (/^how many\b/.test(firstSentence)) return { kind: 'count', subject };
  const comparative = /\b(larger|bigger|smaller)\b|\bsame size\b/.exec(firstSentence);
  if (comparative && named.length >= 2) {
    const relation: SizeRelation = comparative[1] === 'smaller' ? 'smaller than' : comparative[1] ? 'larger than' : 'same size as';
    const form = YESNO_START.test(firstSentence) ? 'yesno' : 'which';
    return { kind: 'comparison', form, relation, a: named[0]!, b: named[1]! };
  }
  if (/\bbackground\b/.test(firstSentence) && !YESNO_START.test(firstSentence)) return { kind: 'background' };
  const asksColorOrSize = /\bcolou?r\b|\bsize\b|\bsmall or large\b|\blarge or small\b/.test(firstSentence);
  if (!asksColorOrSize && /^(which|what)\b/.test(firstSentence)) {
    for (let x = 0; x < toks.length; x++) {
      const e = extremeAt(toks, x);
      if (e) return { kind: 'extreme', side: e.side, subject: withoutKey(subject, 'position') };
    }
  }
  if (/^where\b/.test(firstSentence) && /\b(relative to|in relation to|compared to|with respect to)\b/.test(firstSentence) && named.length >= 2) {
    return { kind: 'relation', a: named[0]!, b: named[1]! };
  }
  if (/\bwhat colou?r\b|\bwhich colou?r\b/.test(firstSentence)) return { kind: 'attribute', asked: 'color', subject: withoutKey(subject, 'color') };
  if (/\b(what|which) (kind of )?shape\b|\bwhat is the (\w+ )?(object|item|figure)\b/.test(firstSentence)) {
    return { kind: 'attribute', asked: 'shape', subject: withoutKey(subject, 'shape') };
  }
  if (/\bsmall or large\b|\blarge or small\b|\bbig or small\b|\bsmall or big\b|\bwhat size\b|\bhow (big|large)\b/.test(firstSentence)) {
    return { kind: 'attribute', asked: 'size', subject: withoutKey(subject, 'size') };
  }
  if (/^where\b/.test(firstSentence)) return { kind: 'attribute', asked: 'position', subject: withoutKey(subject, 'position') };
  if (YESNO_START.test(firstSentence)) {
    const claims = parsed.claims.map((c) => ({ ...c, negated: false }) as Claim);
    const main = claims.find((c) => c.kind === 'relation') ?? claims[claims.length - 1] ?? null;
    return { kind: 'yesno', main, presupposed: claims.filter((c) => c !== main) };
  }
  return { kind: 'open' };
}

/** Adds colour / shape / size words of the question the subject phrase did not catch ("Which shape in the picture is red?"). */
function fillFromWords(spec: ObjectSpec, toks: readonly string[]): ObjectSpec {
  const out = { ...spec };
  for (const t of toks) {
    if (out.color === undefined && COLOR_SET.has(t)) out.color = t as Color;
    else if (out.size === undefined && SIZE_MAP[t]) out.size = SIZE_MAP[t];
  }
  return out;
}

function withoutKey(spec: ObjectSpec, key: keyof ObjectSpec): ObjectSpec {
  const out = { ...spec };
  delete out[key];
  return out;
}

/** Whether every attribute of `inner` is also in `outer` with the same value. */
export function specWithin(inner: ObjectSpec, outer: ObjectSpec): boolean {
  return (Object.keys(inner) as (keyof ObjectSpec)[]).every((k) => inner[k] === undefined || inner[k] === outer[k]);
}

/** No attribute stated by both with different values. */
function compatible(a: ObjectSpec, b: ObjectSpec): boolean {
  return (Object.keys(a) as (keyof ObjectSpec)[]).every((k) => a[k] === undefined || b[k] === undefined || a[k] === b[k]);
}

type ObjectClaim = Extract<Claim, { kind: 'object' }>;

function positiveObjects(claims: readonly Claim[]): ObjectClaim[] {
  return claims.filter((c): c is ObjectClaim => c.kind === 'object' && !c.negated && c.exact !== 0);
}

/** The one distinct value of a list, or null when it has none or several (ambiguous). */
function single<T>(values: readonly T[]): T | null {
  const distinct = [...new Set(values)];
  return distinct.length === 1 ? distinct[0]! : null;
}

/** Whether a phrase names `a` rather than `b` (1), `b` rather than `a` (2), or neither/both (0). */
function whichOf(spec: ObjectSpec, a: ObjectSpec, b: ObjectSpec): 0 | 1 | 2 {
  if (spec.color === undefined && spec.shape === undefined) return 0;
  const ca = compatible(spec, a);
  const cb = compatible(spec, b);
  return ca && !cb ? 1 : cb && !ca ? 2 : 0;
}

/** "The red object" + "a circle" -> "red circle": the subject completed by what a phrase adds. */
function merge(subject: ObjectSpec, spec: ObjectSpec): ObjectSpec {
  return { ...subject, ...Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined)) };
}

/** What an answer says in the context of its question: its claims (own + completed subject) and its answer value. */
interface Reading {
  claims: Claim[];
  value: string | null;
}

function sizeOutcome(relation: Relation, aFirst: boolean): 'a>b' | 'a<b' | 'a=b' | null {
  const r = aFirst ? relation : INVERSE[relation];
  return r === 'larger than' ? 'a>b' : r === 'smaller than' ? 'a<b' : r === 'same size as' ? 'a=b' : null;
}

function readAnswer(frame: QuestionFrame, text: string): Reading {
  const parse = parseText(text);
  const own = parse.claims;
  const out = own.slice();
  const positives = positiveObjects(own);
  switch (frame.kind) {
    case 'yesno': {
      const yn = leadingYesNo(text);
      if (yn && frame.main) {
        if (yn === 'yes') out.push(...frame.presupposed, { ...frame.main });
        else out.push(negate(frame.main));
      }
      if (yn) return { claims: out, value: yn };
      if (!frame.main) return { claims: out, value: null };
      // "There is no red circle." answers no; "There is a red circle." answers yes
      const c = own.find((x) => sameProposition(x, frame.main!));
      return { claims: out, value: c ? (c.negated ? 'no' : 'yes') : null };
    }
    case 'count': {
      const exactly = positives.filter((c) => c.exact !== null && specWithin(c.spec, frame.subject) && specWithin(frame.subject, c.spec));
      const within = positives.filter((c) => c.exact !== null && specWithin(frame.subject, c.spec));
      const stated = exactly.length > 0 ? single(exactly.map((c) => c.exact)) : single(within.map((c) => c.exact));
      if (stated !== null) return { claims: out, value: String(stated) };
      if (exactly.length > 0 || within.length > 1) return { claims: out, value: null };
      const denied = own.some((c) => c.kind === 'object' && (c.negated || c.exact === 0) && specWithin(c.spec, frame.subject));
      const n = parse.free.number[0] ?? (tokenize(text).includes('none') || denied ? 0 : null);
      if (n === null) return { claims: out, value: null };
      if (parse.free.number.length > 0) out.push(objectClaim({ ...frame.subject }, n, false));
      return { claims: out, value: String(n) };
    }
    case 'background': {
      const said = single(own.filter((c) => c.kind === 'background' && !c.negated).map((c) => (c as Extract<Claim, { kind: 'background' }>).color));
      if (said !== null) return { claims: out, value: said };
      const v = single(parse.free.background);
      if (v !== null) out.push(backgroundClaim(v, false));
      return { claims: out, value: v };
    }
    case 'attribute': {
      const { asked, subject } = frame;
      const stating = positives.filter((c) => c.spec[asked] !== undefined && (c.exact === null || c.exact >= 1));
      const tier1 = stating.filter((c) => specWithin(subject, c.spec));
      if (tier1.length > 0) return { claims: out, value: single(tier1.map((c) => String(c.spec[asked]))) };
      // a phrase that agrees with the subject and adds the asked attribute: "A circle." for the red object
      const tier2 = stating.filter((c) => (c.exact === null || c.exact === 1) && compatible(subject, c.spec));
      if (tier2.length > 0) {
        const v = single(tier2.map((c) => String(c.spec[asked])));
        if (v !== null) {
          const c = tier2.find((x) => String(x.spec[asked]) === v)!;
          out.push(objectClaim(merge(subject, c.spec), null, false));
        }
        return { claims: out, value: v };
      }
      // "There is no star": the subject is denied
      const denial = own.some((c) => c.kind === 'object' && c.negated && c.exact === null && specWithin(c.spec, subject));
      const free = asked === 'shape' ? [] : (parse.free[asked] as string[]);
      const v = single(free);
      if (v !== null) {
        out.push(objectClaim({ ...subject, [asked]: v }, null, false));
        return { claims: out, value: v };
      }
      return { claims: out, value: denial ? 'none' : null };
    }
    case 'comparison': {
      const { a, b } = frame;
      let outcome: 'a>b' | 'a<b' | 'a=b' | null = null;
      let negatedOutcome: 'a>b' | 'a<b' | 'a=b' | null = null;
      for (const c of own) {
        if (c.kind !== 'relation') continue;
        const wa = whichOf(c.a, a, b);
        const wb = whichOf(c.b, a, b);
        if (wa === 0 || wb === 0 || wa === wb) continue;
        const o = sizeOutcome(c.relation, wa === 1);
        if (o === null) continue;
        if (c.negated) negatedOutcome ??= o;
        else outcome ??= o;
      }
      for (const e of parse.elliptic) {
        const w = whichOf(e.spec, a, b);
        if (w === 0) continue;
        const [x, y] = w === 1 ? [a, b] : [b, a];
        out.push(relationClaim(merge(x, e.spec), e.relation, { ...y }, e.negated));
        const o = sizeOutcome(e.relation, w === 1);
        if (e.negated) negatedOutcome ??= o;
        else outcome ??= o;
      }
      if (parse.sameSize && parse.elliptic.length === 0 && !own.some((c) => c.kind === 'relation' && c.relation === 'same size as')) {
        out.push(relationClaim({ ...a }, 'same size as', { ...b }, false));
        outcome ??= 'a=b';
      }
      // "both are large": a size said of both objects at once
      const both = parse.plural ? single(parse.free.size) : null;
      if (both !== null) {
        out.push(objectClaim({ ...a, size: both }, null, false), objectClaim({ ...b, size: both }, null, false));
        outcome ??= 'a=b';
      }
      const sizeA = single(positives.filter((c) => specWithin(a, c.spec) && c.spec.size).map((c) => c.spec.size!));
      const sizeB = single(positives.filter((c) => specWithin(b, c.spec) && c.spec.size).map((c) => c.spec.size!));
      if (outcome === null && sizeA !== null && sizeB !== null) outcome = sizeA === sizeB ? 'a=b' : sizeA === 'large' ? 'a>b' : 'a<b';
      const yn = leadingYesNo(text);
      if (frame.form === 'yesno') {
        const asked = sizeOutcome(frame.relation, true)!;
        if (yn) out.push(relationClaim({ ...a }, frame.relation, { ...b }, yn === 'no'));
        const value = yn ?? (outcome !== null ? (outcome === asked ? 'yes' : 'no') : negatedOutcome === asked ? 'no' : null);
        return { claims: out, value };
      }
      if (outcome === null) {
        // "The black diamond." for "Which is larger, the black diamond or the green circle?"
        const picked = single(positives.map((c) => whichOf(c.spec, a, b)).filter((w) => w !== 0));
        if (picked !== null && frame.relation !== 'same size as') {
          const [x, y] = picked === 1 ? [a, b] : [b, a];
          out.push(relationClaim({ ...x }, frame.relation, { ...y }, false));
          outcome = sizeOutcome(frame.relation, picked === 1);
        }
      }
      return { claims: out, value: outcome };
    }
    case 'relation': {
      const { a, b } = frame;
      for (const d of parse.dangling) {
        if (whichOf(d.b, a, b) === 2) out.push(relationClaim({ ...a }, d.relation, { ...d.b }, d.negated));
      }
      const said = out
        .filter((c): c is Extract<Claim, { kind: 'relation' }> => c.kind === 'relation' && !c.negated)
        .map((c) => {
          const wa = whichOf(c.a, a, b);
          const wb = whichOf(c.b, a, b);
          return wa === 1 && wb === 2 ? c.relation : wa === 2 && wb === 1 ? INVERSE[c.relation] : null;
        })
        .filter((r): r is Relation => r !== null);
      return { claims: out, value: single(said) };
    }
    case 'extreme': {
      const { side, subject } = frame;
      const key = (s: ObjectSpec) => `${s.color ?? '*'} ${s.shape ?? '*'}`;
      const said = own.filter((c): c is Extract<Claim, { kind: 'extreme' }> => c.kind === 'extreme' && !c.negated && c.side === side && compatible(subject, c.spec));
      if (said.length > 0) return { claims: out, value: single(said.map((c) => key(merge(subject, c.spec)))) };
      // "The red circle." on its own names the object asked for
      const named = positives.filter((c) => (c.spec.color !== undefined || c.spec.shape !== undefined) && (c.exact === null || c.exact === 1) && compatible(subject, c.spec));
      const v = single(named.map((c) => key(merge(subject, c.spec))));
      if (v !== null) out.push(extremeClaim(merge(subject, named.find((c) => key(merge(subject, c.spec)) === v)!.spec), side, false));
      return { claims: out, value: v };
    }
    default:
      return { claims: out, value: null };
  }
}

/** The value a text gives for what the frame asks (for comparing answer and ground truth); "none" when it denies the subject. */
export function askedValue(frame: QuestionFrame, text: string, _question = ''): string | null {
  return readAnswer(frame, text).value;
}

/**
 * Whether an answer's value matches the ground truth's. Equal strings, except for superlatives
 * where the answer may name less than the ground truth ("the circle" for "the red circle").
 */
export function sameAnswer(frame: QuestionFrame, want: string, got: string | null): boolean {
  if (got === null) return false;
  if (frame.kind !== 'extreme') return got === want;
  const [wc, ws] = want.split(' ');
  const [gc, gs] = got.split(' ');
  if (gc === '*' && gs === '*') return false;
  return (gc === '*' || gc === wc) && (gs === '*' || gs === ws);
}

function sameProposition(a: Claim, b: Claim): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'object' && b.kind === 'object') return a.spec.color === b.spec.color && a.spec.shape === b.spec.shape;
  if (a.kind === 'relation' && b.kind === 'relation') return a.relation === b.relation && a.a.shape === b.a.shape && a.b.shape === b.b.shape;
  if (a.kind === 'background' && b.kind === 'background') return a.color === b.color;
  return false;
}

/**
 * Claims an answer makes in the context of its question: its own claims, plus what a short
 * answer means for the question's subject ("Yes" to "Is there a red circle?" asserts a red
 * circle; "3" to "How many squares?" asserts exactly three squares; "Red." to "What color
 * is the star?" asserts a red star). Attributes inside a phrase about another object never
 * complete the subject.
 */
export function answerClaims(question: string, answer: string): Claim[] {
  return readAnswer(questionFrame(question), answer).claims;
}

function negate(c: Claim): Claim {
  if (c.kind === 'object') return objectClaim(c.spec, c.exact, !c.negated);
  if (c.kind === 'relation') return relationClaim(c.a, c.relation, c.b, !c.negated);
  if (c.kind === 'extreme') return extremeClaim(c.spec, c.side, !c.negated);
  return backgroundClaim(c.color, !c.negated);
}
