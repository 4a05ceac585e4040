/**
 * The shapes world's judge: it knows every object of every image, so it checks an
 * answer's claims (read by shape-claims.ts) against the ground truth instead of asking an
 * LLM, and scores with the MMHal rubric.
 *
 * Hallucinated = the answer asserts something the image does not have: an object (colour +
 * shape, or a shape or colour alone), a size, colour or position of an object, an exact
 * count, a spatial or size relation between two objects, which object is closest to an edge,
 * or the background colour. A wrong denial ("No, there is no red circle" when there is one)
 * is wrong but asserts nothing that is absent, so it counts as not informative rather than
 * hallucinated (MMHal's GPT-4 judge may call it either); `falseDenialIsHallucination: true`
 * flips that.
 *
 * Score (fixed rules, not fitted to any policy):
 *   T = distinct true facts stated (an object claim counts 1, +1 for a stated position, +1 for
 *       an exact count; a relation, superlative or background claim counts 1; a true denial 1);
 *   A = the answer gives what the question asks as in gt_answer (yes/no, count, colour, shape,
 *       size, position, which object is larger or closest to an edge, background, or "none"
 *       when gt_answer denies the object asked about); for "where is a relative to b": some true
 *       relation between a and b; for open questions: the true object kinds of the answer
 *       cover at least half of those gt_answer names; when gt_answer gives nothing readable,
 *       A = T >= 1;
 *   very informative = A and T >= 2; somewhat = A or T >= 1; else not informative;
 *   "good analysis" = very informative, T >= 4 and at least one true position or relation.
 *   No hallucination: 6 analysis, 5 very, 4 somewhat, 3 not informative.
 *   Hallucination:    2 very, 1 somewhat, 0 not informative.
 * A one-fact answer ("Blue.", "The background is grey.") is therefore at most 4 (somewhat
 * informative): the rubric's "very informative" needs more than the bare fact asked for.
 *
 * Parsing limits (shape-claims.ts has the full list). Text it cannot read is neither credited
 * nor blamed, so an unreadable hallucination goes unflagged:
 * - objects are read only as "[count] [size] [colour] <shape|shape|object|item|figure>" phrases
 *   in our vocabulary (6 shapes, 8 colours, small/large); one colour per phrase; no synonyms
 *   ("ball", "rectangle", "violet" are not read); sizes are the two size classes.
 * - an attribute belongs to the phrase it occurs in; words outside every phrase ("Red.",
 *   "It is small.") complete the question's subject only when they give one distinct value;
 *   no other coreference ("it", "they", "the red one").
 * - positions are the nine cells of the image thirds ("at the top left", "on the left"); a
 *   side accepts its three cells. Relations: left of / right of / above / below (box centres),
 *   larger / smaller / same size (size classes), closest to an edge (box edges); "next to",
 *   "near", "between" and other comparisons are not checked.
 * - negation is read per clause (commas end clauses); "There is no circle" is a denial.
 * - the background's colour is read; its texture or other properties are not.
 */
import { AbortedError, BadRecordError } from '../errors.ts';
import { positionOf, type Position, type ShapeObject } from '../../schemas/shapes-world.ts';
import type { Judge, JudgeItem, JudgeOptions, JudgeResult, ShapesTruth } from './judge.ts';
import {
  answerClaims,
  askedValue,
  extractClaims,
  questionFrame,
  sameAnswer,
  type Claim,
  type ObjectSpec,
} from './shape-claims.ts';

export interface RuleJudgeOptions {
  /** Count a wrong denial as hallucination (default false). */
  falseDenialIsHallucination?: boolean;
}

export type ClaimVerdict = 'true' | 'hallucinated' | 'false-denial';

export interface CheckedClaim {
  claim: Claim;
  verdict: ClaimVerdict;
  /** Why it is false (absent object, wrong count, ...). */
  reason?: string;
}

export interface RuleVerdict {
  score: number;
  hallucinated: boolean;
  trueFacts: number;
  answersQuestion: boolean;
  claims: CheckedClaim[];
}

/** A claimed side/row ("left", "top") accepts its three cells; a cell or "center" only itself. */
export function positionMatches(claimed: Position, actual: Position): boolean {
  if (claimed === actual) return true;
  if (claimed === 'left' || claimed === 'right' || claimed === 'top' || claimed === 'bottom') return actual.split(' ').includes(claimed);
  return false;
}

function centre(o: ShapeObject): [number, number] {
  return [(o.box[0] + o.box[2]) / 2, (o.box[1] + o.box[3]) / 2];
}

function fits(spec: ObjectSpec, o: ShapeObject, truth: ShapesTruth): boolean {
  if (spec.color !== undefined && o.color !== spec.color) return false;
  if (spec.shape !== undefined && o.shape !== spec.shape) return false;
  if (spec.size !== undefined && o.size !== spec.size) return false;
  if (spec.position !== undefined && !positionMatches(spec.position, positionOf(o.box, truth.width, truth.height))) return false;
  return true;
}

function matching(spec: ObjectSpec, truth: ShapesTruth): ShapeObject[] {
  return truth.objects.filter((o) => fits(spec, o, truth));
}

/** Is the positive form of the claim true? With a reason when not. */
function holds(claim: Claim, truth: ShapesTruth): { ok: boolean; reason?: string } {
  if (claim.kind === 'background') {
    const ok = truth.background.replace('gray', 'grey') === claim.color;
    return ok ? { ok } : { ok, reason: `the background is ${truth.background}` };
  }
  if (claim.kind === 'extreme') {
    const as = matching(claim.spec, truth);
    if (as.length === 0) return { ok: false, reason: 'no such object in the image' };
    // box edges: the top edge's y for "top", the right edge's x for "right", ...
    const edge = (o: ShapeObject) => (claim.side === 'top' ? o.box[1] : claim.side === 'bottom' ? -o.box[3] : claim.side === 'left' ? o.box[0] : -o.box[2]);
    const best = Math.min(...truth.objects.map(edge));
    const ok = as.some((o) => edge(o) === best);
    return ok ? { ok } : { ok, reason: `another object is closer to the ${claim.side}` };
  }
  if (claim.kind === 'relation') {
    const as = matching(claim.a, truth);
    const bs = matching(claim.b, truth);
    if (as.length === 0 || bs.length === 0) return { ok: false, reason: 'one of the two objects is not in the image' };
    const ok = as.some((a) =>
      bs.some((b) => {
        if (a === b) return false;
        const [ax, ay] = centre(a);
        const [bx, by] = centre(b);
        switch (claim.relation) {
          case 'left of':
            return ax < bx;
          case 'right of':
            return ax > bx;
          case 'above':
            return ay < by;
          case 'below':
            return ay > by;
          // sizes are two classes: "larger" is large against small
          case 'larger than':
            return a.size === 'large' && b.size === 'small';
          case 'smaller than':
            return a.size === 'small' && b.size === 'large';
          case 'same size as':
            return a.size === b.size;
        }
      }),
    );
    return ok ? { ok } : { ok, reason: `no such pair is ${claim.relation} each other` };
  }
  const n = matching(claim.spec, truth).length;
  if (claim.exact !== null) {
    return n === claim.exact ? { ok: true } : { ok: false, reason: `the image has ${n}` };
  }
  if (n > 0) return { ok: true };
  // Say what is wrong: the kind is absent, or only its size/position/colour is off.
  const { position, size, ...kind } = claim.spec;
  if (matching(kind, truth).length === 0) return { ok: false, reason: 'no such object in the image' };
  if (size !== undefined && matching({ ...kind, position }, truth).length > 0) return { ok: false, reason: 'wrong size' };
  return { ok: false, reason: position !== undefined ? 'not at that position' : 'wrong attribute' };
}

/** Checks one claim; negated claims are true when their positive form is false. */
export function checkClaim(claim: Claim, truth: ShapesTruth): CheckedClaim {
  const { ok, reason } = holds(claim, truth);
  if (claim.negated) return ok ? { claim, verdict: 'false-denial', reason: 'it is in the image' } : { claim, verdict: 'true' };
  // "zero circles" that is wrong denies something present; it asserts nothing absent
  if (claim.kind === 'object' && claim.exact === 0) return ok ? { claim, verdict: 'true' } : { claim, verdict: 'false-denial', reason };
  return ok ? { claim, verdict: 'true' } : { claim, verdict: 'hallucinated', reason };
}

function factWeight(c: Claim): number {
  if (c.kind !== 'object') return 1;
  return 1 + (c.spec.position !== undefined ? 1 : 0) + (c.exact !== null ? 1 : 0);
}

/** A claimed phrase that names the question's object: agrees with it and names its colour or shape. */
function fitsSpec(asked: ObjectSpec, said: ObjectSpec): boolean {
  if (said.color === undefined && said.shape === undefined) return false;
  return (Object.keys(asked) as (keyof ObjectSpec)[]).every((k) => asked[k] === undefined || said[k] === undefined || asked[k] === said[k]);
}

function kindKey(spec: ObjectSpec): string | null {
  if (spec.color === undefined && spec.shape === undefined) return null;
  return `${spec.color ?? '*'} ${spec.shape ?? '*'}`;
}

function answersQuestion(item: Pick<JudgeItem, 'question' | 'gt_answer' | 'response'>, checked: CheckedClaim[], trueFacts: number): boolean {
  const frame = questionFrame(item.question);
  if (frame.kind === 'relation') {
    // any true relation between the two objects answers "where is a relative to b?"
    return checked.some(
      (c) => c.verdict === 'true' && c.claim.kind === 'relation' && !c.claim.negated &&
        ((fitsSpec(frame.a, c.claim.a) && fitsSpec(frame.b, c.claim.b)) || (fitsSpec(frame.b, c.claim.a) && fitsSpec(frame.a, c.claim.b))),
    );
  }
  if (frame.kind !== 'open') {
    const want = askedValue(frame, item.gt_answer, item.question);
    if (want === null) return trueFacts >= 1;
    return sameAnswer(frame, want, askedValue(frame, item.response, item.question));
  }
  const gtKinds = new Set(
    extractClaims(item.gt_answer)
      .filter((c): c is Extract<Claim, { kind: 'object' }> => c.kind === 'object' && !c.negated && c.exact !== 0)
      .map((c) => kindKey(c.spec))
      .filter((k): k is string => k !== null),
  );
  if (gtKinds.size === 0) return trueFacts >= 1;
  const told = checked.filter((c) => c.verdict === 'true' && c.claim.kind === 'object' && !c.claim.negated).map((c) => (c.claim as Extract<Claim, { kind: 'object' }>).spec);
  let covered = 0;
  for (const key of gtKinds) {
    const [color, shape] = key.split(' ');
    if (told.some((s) => (color === '*' || s.color === color) && (shape === '*' || s.shape === shape))) covered++;
  }
  return covered * 2 >= gtKinds.size;
}

/** Judges one answer against the truth (see the file comment for the rules). */
export function ruleVerdict(item: Pick<JudgeItem, 'question' | 'gt_answer' | 'response'>, truth: ShapesTruth, options: RuleJudgeOptions = {}): RuleVerdict {
  const claims = answerClaims(item.question, item.response);
  const checked: CheckedClaim[] = [];
  const seen = new Set<string>();
  for (const c of claims) {
    const key = `${c.kind}:${c.text}`;
    if (seen.has(key)) continue;
    seen.add(key);
    checked.push(checkClaim(c, truth));
  }
  const hallucinated = checked.some((c) => c.verdict === 'hallucinated' || (options.falseDenialIsHallucination === true && c.verdict === 'false-denial'));
  const trueClaims = checked.filter((c) => c.verdict === 'true');
  const trueFacts = trueClaims.reduce((s, c) => s + factWeight(c.claim), 0);
  const A = answersQuestion(item, checked, trueFacts);
  const very = A && trueFacts >= 2;
  const somewhat = A || trueFacts >= 1;
  const spatial = trueClaims.some((c) => c.claim.kind === 'relation' || c.claim.kind === 'extreme' || (c.claim.kind === 'object' && !c.claim.negated && c.claim.spec.position !== undefined));
  let score: number;
  if (hallucinated) score = very ? 2 : somewhat ? 1 : 0;
  else score = very && trueFacts >= 4 && spatial ? 6 : very ? 5 : somewhat ? 4 : 3;
  return { score, hallucinated, trueFacts, answersQuestion: A, claims: checked };
}

const RUBRIC_WORDS = [
  'not informative, with hallucination',
  'somewhat informative, with hallucination',
  'very informative, with hallucination',
  'not informative, no hallucination',
  'somewhat informative, no hallucination',
  'very informative, no hallucination',
  'very informative with good analysis or reasoning, no hallucination',
];

/** A readable account of a verdict (goes to the eval record's judge text). */
export function explainVerdict(v: RuleVerdict): string {
  const parts = v.claims.map((c) => (c.verdict === 'true' ? `true: ${c.claim.text}` : `${c.verdict}: ${c.claim.text} (${c.reason})`));
  const facts = `${v.trueFacts} true fact(s); ${v.answersQuestion ? 'answers' : 'does not answer'} the question`;
  return `${parts.length > 0 ? parts.join('; ') : 'no checkable claim'}. ${facts}. Rating: ${v.score}, ${RUBRIC_WORDS[v.score]}`;
}

export function ruleJudge(options: RuleJudgeOptions = {}): Judge {
  return {
    name: 'rule',
    async judge(items: readonly JudgeItem[], judgeOptions: JudgeOptions = {}): Promise<JudgeResult[]> {
      return items.map((item, i) => {
        if (judgeOptions.signal?.aborted) throw new AbortedError('judging was aborted', { cause: judgeOptions.signal.reason });
        if (!item.truth) {
          throw new BadRecordError(`item has no ground truth${item.question_id !== undefined ? ` (question_id ${String(item.question_id)})` : ''}`, {
            recordIndex: i,
            fix: 'the rule judge only works on shapes-world items; attach the image ground truth as `truth`, or use judge=openai',
          });
        }
        const v = ruleVerdict(item, item.truth, options);
        return { score: v.score, hallucinated: v.hallucinated, explanation: explainVerdict(v) };
      });
    },
  };
}
