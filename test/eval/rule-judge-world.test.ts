import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { explainVerdict, ruleVerdict } from '../../src/eval/rule-judge.ts';
import { deriveSeed, Rng } from '../../src/stream/random.ts';
import { generateShapesWorld, SHAPES_WORLD_FILES as F } from '../../sources/shapes-world.ts';
import { createCooccurrence, kindByKey, sampleScene, type ObjectKind } from '../../sources/shapes-world-scene.ts';
import { DETAIL_PROMPTS, MMHAL_TYPES, judgeMentions, llavaDetail } from '../../sources/shapes-world-text.ts';
import { BACKGROUNDS, SHAPES, article, mentionedObjects, numberWord, objectKey, type GroundTruth } from '../../schemas/shapes-world.ts';

// The judge against the shapes world's own texts: its MMHal template answered with its own
// gt_answers, those answers with one object swapped for an absent one, and its LLaVA detailed
// descriptions (faithful or with invented objects). Nothing here is fitted to a policy.

const SEED = 3;
const cooc = createCooccurrence(deriveSeed(SEED, 'cooccurrence')); // the generator's co-occurrence
let tmp: string;
let truth: Map<string, GroundTruth>;

interface Item { question_type: string; image_src: string; question: string; gt_answer: string }
let items: Item[];

test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-rule-judge-world-'));
  await generateShapesWorld({ out: tmp, seed: SEED, images: 40 }); // mmhalPerType default: 12 per type
  const lines = (await readFile(path.join(tmp, F.ground_truth), 'utf8')).trim().split('\n');
  truth = new Map(lines.map((l) => JSON.parse(l) as GroundTruth).map((g) => [g.image, g]));
  items = JSON.parse(await readFile(path.join(tmp, F.mmhal), 'utf8')) as Item[];
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const verdict = (it: Item, response: string) => ruleVerdict({ question: it.question, gt_answer: it.gt_answer, response }, truth.get(it.image_src)!);

test('the template answered with its own gt_answers: no hallucination, every score >= 4', (t) => {
  t.is(items.length, 96);
  const scores: Record<string, number[]> = {};
  for (const it of items) {
    const v = verdict(it, it.gt_answer);
    (scores[it.question_type] ??= []).push(v.score);
    t.false(v.hallucinated, `${it.question} | ${it.gt_answer} => ${explainVerdict(v)}`);
    t.true(v.answersQuestion, `${it.question} | ${it.gt_answer} => ${explainVerdict(v)}`);
    t.true(v.score >= 4, `${it.question} | ${it.gt_answer} => ${explainVerdict(v)}`);
  }
  t.deepEqual(Object.keys(scores), [...MMHAL_TYPES]);
  // Types whose gt_answer states several true facts reach "very informative" (5) or more;
  // "What color is the X?" -> "The X is red." and the environment's background colour are one
  // checkable fact each, which the rubric calls somewhat informative (4) at most.
  for (const type of ['adversarial', 'comparison', 'counting', 'relation', 'other']) t.true(scores[type]!.every((s) => s >= 5), type);
  t.true(scores.holistic!.every((s) => s === 6), 'holistic descriptions give positions of every object');
  t.true(scores.environment!.every((s) => s === 4));
});

/** An absent kind that co-occurs with `of` (or with another present kind), as the generator invents them. */
function absentCompanion(gt: GroundTruth, of: { color: string; shape: string }): ObjectKind {
  const present = new Set(gt.objects.map(objectKey));
  for (const key of [objectKey(of), ...present]) {
    const c = cooc.companion.get(key);
    if (c !== undefined && !present.has(c)) return kindByKey(cooc, c);
  }
  return cooc.kinds.find((k) => !present.has(k.key))!;
}

/** The gt answer once per colour+shape mention, with that mention replaced by an absent co-occurring kind. */
function objectSwaps(text: string, gt: GroundTruth): string[] {
  const out: string[] = [];
  for (const m of mentionedObjects(text)) {
    const k = absentCompanion(gt, m);
    const at = text.toLowerCase().indexOf(`${m.color} ${m.shape}`, m.index);
    const before = text.slice(0, at).replace(/\b(a|an)\s+$/i, (w) => (w[0] === 'A' ? 'A' : 'a') + article(k.color).slice(1) + ' ');
    out.push(`${before}${k.color} ${k.shape}${text.slice(at + m.color.length + 1 + m.shape.length)}`);
  }
  // "The square is red." names its object without a colour+shape phrase
  const attr = /^The (\w+) is (\w+)\.$/.exec(text);
  if (out.length === 0 && attr) {
    const k = absentCompanion(gt, gt.objects.find((o) => o.shape === attr[1])!);
    out.push(`The ${k.shape} is ${k.color}.`);
  }
  // "There are two squares." -> a shape the image does not have
  const count = /^There (is one|are \w+) (\w+?)(s?)\.$/.exec(text);
  if (out.length === 0 && count && count[2] !== 'shape') {
    const absent = SHAPES.find((s) => !gt.objects.some((o) => o.shape === s))!;
    out.push(`There ${count[1]} ${absent}${count[3]}.`);
  }
  return out;
}

/** For gt answers that name no object: the one fact they state, made false. */
function factSwap(text: string, gt: GroundTruth): string | null {
  if (/background/.test(text)) return text.replace(gt.background, BACKGROUNDS.find((b) => b !== gt.background)!);
  const total = /^There (?:is|are) (\w+) shapes? in the image\.$/.exec(text);
  if (total) return `There are ${numberWord(gt.objects.length + 1)} shapes in the image.`;
  const both = /both are (small|large)\.$/.exec(text);
  if (both) return text.replace(/(small|large)\.$/, both[1] === 'small' ? 'large.' : 'small.');
  return null;
}

test('one object of each gt answer swapped for an absent co-occurring one: always flagged', (t) => {
  let swapped = 0;
  const factOnly: string[] = [];
  for (const it of items) {
    const gt = truth.get(it.image_src)!;
    const swaps = objectSwaps(it.gt_answer, gt);
    if (swaps.length === 0) {
      // environment, total counts and same-size comparisons name no object: falsify their fact instead
      const f = factSwap(it.gt_answer, gt);
      t.not(f, null, `no object and no fact to change in ${JSON.stringify(it.gt_answer)}`);
      swaps.push(f!);
      factOnly.push(it.question_type);
    } else {
      swapped += swaps.length;
    }
    for (const s of swaps) {
      t.not(s, it.gt_answer);
      const v = verdict(it, s);
      t.true(v.hallucinated, `${it.question} | ${s} => ${explainVerdict(v)}`);
      t.true(v.score <= 2);
    }
  }
  t.log(`${swapped} object swaps, ${factOnly.length} fact swaps`);
  t.true(swapped >= 100, `${swapped} object swaps`);
  t.true(factOnly.every((x) => x === 'comparison' || x === 'counting' || x === 'environment'), factOnly.join());
  t.is(factOnly.filter((x) => x === 'environment').length, 12);
});

test('the LLaVA instruct file: faithful detailed descriptions never flagged, hallucinated ones always', async (t) => {
  const records = JSON.parse(await readFile(path.join(tmp, F.llava_instruct), 'utf8')) as { id: string; image: string; conversations: { from: string; value: string }[] }[];
  const world = JSON.parse(await readFile(path.join(tmp, F.world), 'utf8')) as { counts: { llava_instruct: { detail: number; detail_hallucinated: number } } };
  let faithful = 0;
  let hallucinated = 0;
  for (const r of records) {
    const prompt = r.conversations[0]!.value.replace('<image>\n', '');
    if (!(DETAIL_PROMPTS as readonly string[]).includes(prompt)) continue;
    const gt = truth.get(`coco/train2017/${r.image}`)!;
    const text = r.conversations[1]!.value;
    // the generator's own account of which descriptions name an absent object
    const invented = judgeMentions(text, gt.objects).hallucinated > 0;
    const v = ruleVerdict({ question: prompt, gt_answer: '', response: text }, gt);
    t.is(v.hallucinated, invented, `${text} => ${explainVerdict(v)}`);
    if (invented) hallucinated++;
    else {
      faithful++;
      t.true(v.score >= 5, `${text} => ${explainVerdict(v)}`);
    }
  }
  t.is(faithful + hallucinated, world.counts.llava_instruct.detail);
  t.is(hallucinated, world.counts.llava_instruct.detail_hallucinated);
  t.log(`${faithful} faithful, ${hallucinated} hallucinated descriptions`);
  t.true(hallucinated > 0 && faithful > 0);
});

test('llavaDetail on 300 more scenes, half of them with invented objects: the judge agrees every time', (t) => {
  let invented = 0;
  for (let i = 0; i < 300; i++) {
    const rng = new Rng(deriveSeed(SEED, `rule-judge/${i}`));
    const s = sampleScene(rng.fork('scene'), cooc, 6);
    const gt = { width: 64, height: 64, background: s.background, objects: s.objects };
    const d = llavaDetail({ ...gt, image: 'x.jpg', image_id: i, dataset: 'coco', split: 'train' }, cooc, rng, 0.5);
    const text = d.turns[1]!.value;
    const v = ruleVerdict({ question: 'Describe the image in detail.', gt_answer: '', response: text }, gt);
    t.is(v.hallucinated, d.invented.length > 0, `${text} => ${explainVerdict(v)}`);
    if (d.invented.length > 0) {
      invented++;
      // every invented kind is named as absent
      for (const o of d.invented) t.true(v.claims.some((c) => c.verdict === 'hallucinated' && c.claim.kind === 'object' && c.claim.spec.color === o.color && c.claim.spec.shape === o.shape));
    }
  }
  t.true(invented > 100 && invented < 200);
});
