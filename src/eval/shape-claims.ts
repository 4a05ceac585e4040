/**
 * Reads shapes-world text back into checkable claims: which objects (colour, shape, size,
 * coarse position, count) an answer asserts or denies, pairwise relations ("the blue star
 * is to the left of the green circle"), the background colour, and how a short answer
 * ("Yes", "3", "Red.", "At the top left.") completes its question.
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
 * - Relations: "(to the) left of", "(to the) right of", "above", "on top of", "over", "below",
 *   "under", "beneath" between two phrases. "next to", "near", "beside" are not checked.
 * - Negation: "no", "not", "never", "without", "none", "nothing", "n't" earlier in the same
 *   clause (commas end clauses); "no red circle or blue star" negates both.
 * - No coreference ("it", "they", "the red one"), no quantifiers beyond the above, no
 *   comparison ("bigger than"), no ordinals. Text it cannot read yields no claim, so it can
 *   neither hallucinate nor inform: the judge errs towards "not informative", never towards
 *   "hallucinated".
 */
import { BACKGROUNDS, COLORS, NUMBER_WORDS, SHAPES, type Color, type Position, type Shape, type Size } from '../../schemas/shapes-world.ts';

export interface ObjectSpec {
  color?: Color;
  shape?: Shape;
  size?: Size;
  /** A claimed cell ("top left") or side/row ("left", "top"). */
  position?: Position;
}

export type Relation = 'left of' | 'right of' | 'above' | 'below';

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
  | { kind: 'background'; color: string; negated: boolean; text: string };

export type QuestionFrame =
  | { kind: 'yesno'; main: Claim | null; presupposed: Claim[] }
  | { kind: 'count'; subject: ObjectSpec }
  | { kind: 'attribute'; asked: 'color' | 'shape' | 'size' | 'position'; subject: ObjectSpec }
  | { kind: 'background' }
  | { kind: 'open' };

const SHAPE_SET = new Set<string>(SHAPES);
const COLOR_SET = new Set<string>(COLORS);
// Background colours: ours, plus common ones a model might say instead (so they can be wrong).
const BACKGROUND_WORDS = new Set<string>([...COLORS, ...BACKGROUNDS, 'gray', 'brown', 'pink', 'tan', 'cream', 'beige']);
const SIZE_MAP: Record<string, Size> = { small: 'small', little: 'small', tiny: 'small', large: 'large', big: 'large', huge: 'large' };
const GENERIC = new Set(['shape', 'shapes', 'object', 'objects', 'item', 'items', 'figure', 'figures']);
const DETERMINERS = new Set(['a', 'an', 'the', 'this', 'that', 'any', 'some', 'each', 'every']);
const NEGATIONS = new Set(['no', 'not', 'never', 'without', 'none', 'nothing', 'nor']);
const LINK_VERBS = new Set([
  'is', 'are', 'can', 'be', 'seen', 'sits', 'sit', 'sitting', 'appears', 'appear', 'located', 'placed', 'lies', 'lie',
  'drawn', 'visible', 'found', 'positioned', 'shown', 'also', 'just', 'directly', 'slightly',
]);
const POSITION_WORDS: Record<string, 'top' | 'bottom' | 'left' | 'right' | 'center'> = {
  top: 'top', upper: 'top', bottom: 'bottom', lower: 'bottom', left: 'left', right: 'right', center: 'center', centre: 'center', middle: 'center',
};
const IMAGE_WORDS = new Set(['image', 'picture', 'photo', 'frame', 'canvas', 'scene', 'drawing']);

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

/** Sentences of a text (split on . ! ? ; and newlines). */
function sentences(text: string): string[] {
  return text.split(/[.!?;\n]+/).map((s) => s.trim()).filter(Boolean);
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
    } else break;
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

/** Reads a relation phrase at `i`; returns the relation and where the second phrase starts. */
function relationAt(toks: readonly string[], i: number): { relation: Relation; next: number } | null {
  let j = i;
  if (toks[j] === 'to' || toks[j] === 'on' || toks[j] === 'at') {
    if (toks[j] === 'on' && toks[j + 1] === 'top' && toks[j + 2] === 'of') return { relation: 'above', next: j + 3 };
    j++;
    if (toks[j] === 'the') j++;
  }
  const w = toks[j];
  if ((w === 'left' || w === 'right') && toks[j + 1] === 'of') {
    let k = j + 2;
    if (toks[k] === 'the' && IMAGE_WORDS.has(toks[k + 1] ?? '')) return null;
    return { relation: w === 'left' ? 'left of' : 'right of', next: k };
  }
  if (j !== i) return null;
  if (w === 'above' || w === 'over') return { relation: 'above', next: j + 1 };
  if (w === 'below' || w === 'under' || w === 'beneath' || w === 'underneath') return { relation: 'below', next: j + 1 };
  return null;
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
  const nextIsHead = toks[k] !== undefined && (singular(toks[k]!) !== null || GENERIC.has(toks[k]!));
  const conflict = (add.color && spec.color && add.color !== spec.color) || (add.size && spec.size && add.size !== spec.size);
  if (nextIsHead || conflict) return null;
  return { add, end: k, negated };
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

/** Everything one sentence asserts; also returns its noun phrases (for question subjects). */
function sentenceClaims(sentence: string): { claims: Claim[]; phrases: { np: NounPhrase; negated: boolean }[]; background: string | null } {
  const toks = tokenize(sentence);
  const claims: Claim[] = [];
  const phrases: { np: NounPhrase; negated: boolean }[] = [];
  let background: string | null = null;
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
    // background: "<colour> background" / "background is <colour>"
    if (t === 'background') {
      const before = toks[i - 1];
      let color: string | undefined;
      if (before && BACKGROUND_WORDS.has(before)) color = before;
      else if (toks[i + 1] === 'is' && BACKGROUND_WORDS.has(toks[i + 2] ?? '')) color = toks[i + 2];
      else if (toks[i + 1] === 'is' && isNegation(toks[i + 2] ?? '') && BACKGROUND_WORDS.has(toks[i + 3] ?? '')) {
        claims.push({ kind: 'background', color: normBackground(toks[i + 3]!), negated: true, text: `background not ${toks[i + 3]}` });
      }
      if (color) {
        background = normBackground(color);
        claims.push({ kind: 'background', color: background, negated: clauseNegated, text: `${clauseNegated ? 'not ' : ''}${background} background` });
      }
      i++;
      continue;
    }
    if (isNegation(t)) {
      clauseNegated = true;
      i++;
      continue;
    }
    // a colour right before "background" is not an object
    if (COLOR_SET.has(t) && toks[i + 1] === 'background') {
      i++;
      continue;
    }
    const np = nounPhraseAt(toks, i);
    if (!np) {
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
    let k = j;
    while (LINK_VERBS.has(toks[k] ?? '') && !positionAt(toks, k) && !relationAt(toks, k)) k++;
    const pos = positionAt(toks, k);
    if (pos) {
      // "the shape at the top left" says something after all
      np.spec.position = pos.position;
      np.vacuous = false;
      j = pos.end;
      if (!pred) {
        pred = readPredicate(toks, j, np.spec);
        if (pred) j = pred.end;
      }
    } else if (fronted && !np.vacuous) {
      np.spec.position = fronted;
    }
    if (pred?.negated) {
      // "the circle is not red": the thing exists, but not with that attribute
      claims.push(objectClaim({ ...np.spec }, null, negated));
      claims.push(objectClaim({ ...np.spec, ...pred.add }, null, !negated));
      phrases.push({ np, negated });
      prevNegated = negated;
      lastEnd = j;
      i = j;
      continue;
    }
    if (pred) np.spec = { ...np.spec, ...pred.add };
    if (!np.vacuous) fronted = undefined;
    // relation to a second phrase
    const rel = relationAt(toks, k);
    if (rel && !np.vacuous) {
      const other = nounPhraseAt(toks, rel.next);
      if (other && !other.vacuous) {
        if (!negated) claims.push(objectClaim({ ...np.spec }, np.exact, false));
        claims.push(objectClaim({ ...other.spec }, other.exact, false));
        claims.push(relationClaim({ ...np.spec }, rel.relation, { ...other.spec }, negated));
        phrases.push({ np, negated }, { np: other, negated: false });
        prevNegated = false;
        lastEnd = other.end;
        i = other.end;
        continue;
      }
    }
    if (!np.vacuous) claims.push(objectClaim({ ...np.spec }, np.exact, negated));
    phrases.push({ np, negated });
    prevNegated = negated;
    lastEnd = np.end;
    i = Math.max(j, np.end);
  }
  return { claims, phrases, background };
}

function normBackground(w: string): string {
  return w === 'gray' ? 'grey' : w;
}

/** Every claim a free-form text makes. */
export function extractClaims(text: string): Claim[] {
  return sentences(text).flatMap((s) => sentenceClaims(s).claims);
}

/** "yes" / "no" when the text's first word says so (case-insensitive), else null. */
export function leadingYesNo(text: string): 'yes' | 'no' | null {
  const first = tokenize(text)[0];
  return first === 'yes' ? 'yes' : first === 'no' ? 'no' : null;
}

/** Works out what a question asks (see QuestionFrame). */
export function questionFrame(question: string): QuestionFrame {
  const q = question.toLowerCase().replace(/<image>/g, ' ').trim();
  const firstSentence = sentences(q).find((s) => /\?|^(is|are|does|do|can|could|was|were|has|have|how|what|which|where)\b/.test(s)) ?? q;
  const parsed = sentenceClaims(firstSentence);
  const subject = fillFromWords(parsed.phrases[0] ? { ...parsed.phrases[0].np.spec } : {}, tokenize(firstSentence));
  if (/^how many\b/.test(firstSentence)) return { kind: 'count', subject };
  if (/\bbackground\b/.test(firstSentence) && /\bcolou?r\b/.test(firstSentence)) return { kind: 'background' };
  if (/\bwhat colou?r\b|\bwhich colou?r\b/.test(firstSentence)) return { kind: 'attribute', asked: 'color', subject: withoutKey(subject, 'color') };
  if (/\b(what|which) (kind of )?shape\b|\bwhat is the (\w+ )?(object|item|figure)\b/.test(firstSentence)) {
    return { kind: 'attribute', asked: 'shape', subject: withoutKey(subject, 'shape') };
  }
  if (/\bsmall or large\b|\blarge or small\b|\bbig or small\b|\bsmall or big\b|\bwhat size\b|\bhow (big|large)\b/.test(firstSentence)) {
    return { kind: 'attribute', asked: 'size', subject: withoutKey(subject, 'size') };
  }
  if (/^where\b/.test(firstSentence)) return { kind: 'attribute', asked: 'position', subject: withoutKey(subject, 'position') };
  if (/^(is|are|does|do|can|could|was|were|has|have)\b/.test(firstSentence)) {
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

function firstNumber(text: string): number | null {
  for (const t of tokenize(text)) {
    const n = numberValue(t);
    if (n !== null) return n;
    if (t === 'none') return 0;
  }
  return null;
}

function firstPosition(text: string): Position | null {
  for (const s of sentences(text)) {
    const toks = tokenize(s);
    for (let i = 0; i < toks.length; i++) {
      const p = positionAt(toks, i);
      if (p) return p.position;
    }
    // a bare "top left" / "center" answer
    const p = positionAt(['at', 'the', ...toks], 0);
    if (p && p.end === toks.length + 2) return p.position;
  }
  return null;
}

/** The value a text gives for what the frame asks (for comparing answer and ground truth). */
export function askedValue(frame: QuestionFrame, text: string, question = ''): string | null {
  const qWords = new Set(tokenize(question));
  switch (frame.kind) {
    case 'yesno': {
      const yn = leadingYesNo(text);
      if (yn) return yn;
      if (!frame.main) return null;
      // "There is no red circle." answers no; "There is a red circle." answers yes
      const c = extractClaims(text).find((x) => sameProposition(x, frame.main!));
      return c ? (c.negated ? 'no' : 'yes') : null;
    }
    case 'count': {
      const n = firstNumber(text);
      return n === null ? null : String(n);
    }
    case 'background':
      return tokenize(text).map(normBackground).find((t) => BACKGROUND_WORDS.has(t)) ?? null;
    case 'attribute': {
      const toks = tokenize(text);
      if (frame.asked === 'color') return toks.find((t) => COLOR_SET.has(t) && !qWords.has(t)) ?? toks.find((t) => COLOR_SET.has(t)) ?? null;
      if (frame.asked === 'shape') {
        const shapes = toks.map((t) => singular(t)?.shape).filter((s): s is Shape => !!s);
        return shapes.find((s) => !qWords.has(s)) ?? shapes[0] ?? null;
      }
      if (frame.asked === 'size') return toks.map((t) => SIZE_MAP[t]).find(Boolean) ?? null;
      return firstPosition(text);
    }
    default:
      return null;
  }
}

function sameProposition(a: Claim, b: Claim): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'object' && b.kind === 'object') return a.spec.color === b.spec.color && a.spec.shape === b.spec.shape;
  if (a.kind === 'relation' && b.kind === 'relation') return a.relation === b.relation && a.a.shape === b.a.shape && a.b.shape === b.b.shape;
  return false;
}

/**
 * Claims an answer makes in the context of its question: its own claims, plus what a short
 * answer means for the question's subject ("Yes" to "Is there a red circle?" asserts a red
 * circle; "3" to "How many squares?" asserts exactly three squares; "Red." to "What color
 * is the star?" asserts a red star).
 */
export function answerClaims(question: string, answer: string): Claim[] {
  const own = extractClaims(answer);
  const frame = questionFrame(question);
  const out = own.slice();
  switch (frame.kind) {
    case 'yesno': {
      const yn = leadingYesNo(answer);
      if (yn && frame.main) {
        if (yn === 'yes') out.push(...frame.presupposed, { ...frame.main });
        else out.push(negate(frame.main));
      }
      break;
    }
    case 'count': {
      const counted = own.some((c) => c.kind === 'object' && c.exact !== null);
      const n = firstNumber(answer);
      if (!counted && n !== null) out.push(objectClaim(frame.subject, n, false));
      break;
    }
    case 'background': {
      if (!own.some((c) => c.kind === 'background')) {
        const v = askedValue(frame, answer, question);
        if (v) out.push({ kind: 'background', color: v, negated: false, text: `${v} background` });
      }
      break;
    }
    case 'attribute': {
      const v = askedValue(frame, answer, question);
      if (v === null) break;
      const spec: ObjectSpec = { ...frame.subject, [frame.asked]: v };
      const already = own.some((c) => c.kind === 'object' && !c.negated && c.spec[frame.asked] === v && specWithin(frame.subject, c.spec));
      if (!already) out.push(objectClaim(spec, null, false));
      break;
    }
    default:
      break;
  }
  return out;
}

/** Whether every attribute of `inner` is also in `outer` with the same value. */
export function specWithin(inner: ObjectSpec, outer: ObjectSpec): boolean {
  return (Object.keys(inner) as (keyof ObjectSpec)[]).every((k) => inner[k] === undefined || inner[k] === outer[k]);
}

function negate(c: Claim): Claim {
  if (c.kind === 'object') return objectClaim(c.spec, c.exact, !c.negated);
  if (c.kind === 'relation') return relationClaim(c.a, c.relation, c.b, !c.negated);
  return { ...c, negated: !c.negated, text: `${c.negated ? '' : 'not '}${c.color} background` };
}
