import test from 'ava';
import { Rng } from '../../src/stream/random.ts';
import { COLORS, SHAPES, mentionedObjects, objectPhrase, positionOf, positionPhrase, objectKey, type GroundTruth } from '../../schemas/shapes-world.ts';
import { createCooccurrence, sampleScene, COMPANION_RATE } from '../../sources/shapes-world-scene.ts';
import { annotatorChoice, describeObjects, evidenceYesNo, llavaConversation, relationOf, topmostIndex, inventObjects, judgeMentions, llavaDetail, preferencePair, textObjects, vqaItems } from '../../sources/shapes-world-text.ts';
import { pyJson, flickrXml } from '../../sources/shapes-world-formats.ts';
import { sceneSvg } from '../../sources/shapes-world-render.ts';

const cooc = createCooccurrence(123);

function scene(i: number): GroundTruth {
  const s = sampleScene(new Rng(1000 + i), cooc, 4);
  return { image: `x/${i}.jpg`, image_id: i, dataset: 'coco', split: 'train', width: 64, height: 64, background: s.background, objects: s.objects };
}

test('phrase helpers: articles, sizes, positions', (t) => {
  t.is(objectPhrase({ color: 'orange', shape: 'star' }), 'an orange star');
  t.is(objectPhrase({ color: 'red', shape: 'circle', size: 'small' }), 'a small red circle');
  t.is(objectPhrase({ color: 'red', shape: 'circle', size: 'small' }, { size: false, article: 'the' }), 'the red circle');
  t.is(positionOf([0, 0, 10, 10], 64, 64), 'top left');
  t.is(positionOf([27, 27, 37, 37], 64, 64), 'center');
  t.is(positionOf([50, 27, 60, 37], 64, 64), 'right');
  t.is(positionOf([27, 50, 37, 60], 64, 64), 'bottom');
  t.is(positionPhrase('top left'), 'at the top left');
  t.is(positionPhrase('left'), 'on the left');
  t.is(positionPhrase('center'), 'in the center');
});

test('mentionedObjects finds colour+shape phrases with size, count and negation', (t) => {
  const m = mentionedObjects('There is a small red circle at the top. No, there is no green triangle, but two blue squares and Three yellow stars are here.');
  t.deepEqual(
    m.map((x) => [x.size ?? '-', x.color, x.shape, x.count, x.negated]),
    [
      ['small', 'red', 'circle', 1, false],
      ['-', 'green', 'triangle', 1, true],
      ['-', 'blue', 'square', 2, false],
      ['-', 'yellow', 'star', 3, false],
    ],
  );
  t.deepEqual(mentionedObjects('A picture of shapes.'), []);
});

test('judgeMentions: matched objects, hallucinated kinds, wrong sizes and re-references', (t) => {
  const objects = [
    { color: 'red', shape: 'circle', size: 'small' },
    { color: 'red', shape: 'circle', size: 'large' },
    { color: 'blue', shape: 'star', size: 'small' },
  ];
  t.deepEqual(pick(judgeMentions('A small red circle and a large red circle. The red circle is nice.', objects)), [2, 0]);
  t.deepEqual(pick(judgeMentions('A large blue star.', objects)), [0, 1]);
  t.deepEqual(pick(judgeMentions('Three red circles and a green hexagon.', objects)), [0, 2]);
  t.deepEqual(pick(judgeMentions('There is no green hexagon; there is a blue star.', objects)), [1, 0]);
});

function pick(j: { matched: number; hallucinated: number }) {
  return [j.matched, j.hallucinated];
}

test('scenes follow the co-occurrence structure: companions appear together about 60% of the time', (t) => {
  let anchors = 0;
  let together = 0;
  for (let i = 0; i < 3000; i++) {
    const g = scene(i);
    if (g.objects.length < 2) continue;
    const first = objectKey(g.objects[0]!);
    const partner = cooc.companion.get(first);
    if (!partner) continue;
    anchors++;
    if (g.objects.some((o) => objectKey(o) === partner)) together++;
  }
  const rate = together / anchors;
  t.true(rate > COMPANION_RATE - 0.05, `companion rate ${rate}`);
  t.true(rate < 0.85, `companion rate ${rate}`);
  t.is(cooc.pairs.length, 12);
});

test('llavaDetail hallucinates at about the set rate, with absent, mostly co-occurring objects', (t) => {
  for (const rate of [0, 0.3, 0.7]) {
    const rng = new Rng(5);
    let hallucinated = 0;
    let companions = 0;
    const n = 2000;
    for (let i = 0; i < n; i++) {
      const g = scene(i);
      const d = llavaDetail(g, cooc, rng, rate);
      const j = judgeMentions(d.turns[1]!.value, g.objects);
      t.is(j.hallucinated > 0, d.invented.length > 0);
      if (d.invented.length > 0) {
        hallucinated++;
        const present = new Set(g.objects.map(objectKey));
        if (d.invented.some((o) => [...present].some((p) => cooc.companion.get(p) === objectKey(o)))) companions++;
        for (const o of d.invented) t.false(present.has(objectKey(o)));
      } else t.is(j.matched, g.objects.length);
    }
    t.true(Math.abs(hallucinated / n - rate) < 0.04, `rate ${rate}: got ${hallucinated / n}`);
    if (rate > 0) t.true(companions / hallucinated > 0.3, `co-occurring share ${companions / hallucinated}`);
  }
});

test('inventObjects never invents a present kind', (t) => {
  const rng = new Rng(9);
  for (let i = 0; i < 500; i++) {
    const g = scene(i);
    const present = new Set(g.objects.map(objectKey));
    for (const o of inventObjects(g.objects, cooc, rng, 2)) t.false(present.has(objectKey(o)));
  }
});

test('preference pairs: hallucination flag means exactly one hallucinates; trap pairs exist; noise 0 follows the rules', (t) => {
  const rng = new Rng(3);
  let traps = 0;
  let halluc = 0;
  let shorterWins = 0;
  for (let i = 0; i < 800; i++) {
    const g = scene(i);
    const p = preferencePair(g, cooc, rng, 0);
    const a = judgeMentions(p.output_1, g.objects);
    const b = judgeMentions(p.output_2, g.objects);
    t.is(p.hallucination, a.hallucinated > 0 !== b.hallucinated > 0);
    t.false(p.flipped);
    if (p.hallucination) {
      halluc++;
      t.is(p.preference, a.hallucinated > 0 ? 2 : 1, 'the faithful response wins');
      const [chosen, other] = p.preference === 1 ? [p.output_1, p.output_2] : [p.output_2, p.output_1];
      if (chosen.length < other.length) shorterWins++;
    }
    if (p.trap) {
      traps++;
      const [hal, fai] = a.hallucinated > 0 ? [p.output_1, p.output_2] : [p.output_2, p.output_1];
      t.true(hal.length > fai.length);
    }
    if (!(a.matched === b.matched && a.hallucinated === b.hallucinated)) t.is(p.preference, annotatorChoice(a, b, 0));
  }
  t.true(halluc > 300, `hallucination pairs ${halluc}`);
  t.true(traps > 80, `trap pairs ${traps}`);
  // length must not give the choice away on hallucination pairs (a reward model would learn
  // "shorter wins" instead of checking objects); over 6,000 pairs the share is 0.62 in both layouts
  const share = shorterWins / halluc;
  t.true(share > 0.35 && share < 0.67, `the shorter response wins ${share.toFixed(3)} of hallucination pairs`);
});

test('VQA yes/no: answers truthful; no wording predicts the answer; POPE\'s colour-and-shape wording is asked both ways', (t) => {
  const byWording = new Map<string, { yes: number; no: number }>();
  let yes = 0, no = 0;
  for (let i = 0; i < 300; i++) {
    const gt = scene(i);
    const present = new Set(gt.objects.map(objectKey));
    for (const q of vqaItems(gt, cooc, new Rng(i)).filter((x) => x.answer_type === 'yes/no')) {
      const pair = /^Is there an? (\w+) (\w+)( in the image)?\?$/.exec(q.question);
      const isPair = pair !== null && (COLORS as readonly string[]).includes(pair[1]!) && (SHAPES as readonly string[]).includes(pair[2]!);
      if (isPair) t.is(q.answer, present.has(`${pair[1]} ${pair[2]}`) ? 'yes' : 'no', q.question);
      const wording = isPair ? (pair[3] ? 'pair in the image' : 'pair') : q.question.replace(/\b(red|green|blue|yellow|orange|purple|white|black|circles?|squares?|triangles?|stars?|diamonds?|hexagons?)\b/g, 'X');
      const c = byWording.get(wording) ?? { yes: 0, no: 0 };
      c[q.answer as 'yes' | 'no']++;
      byWording.set(wording, c);
      if (q.answer === 'yes') yes++; else no++;
    }
  }
  t.is(yes, no, 'two of each per image');
  for (const [wording, c] of byWording) {
    const share = c.yes / (c.yes + c.no);
    t.true(share > 0.3 && share < 0.7, `${wording}: ${c.yes} yes / ${c.no} no`);
  }
  t.true((byWording.get('pair in the image')?.yes ?? 0) > 50);
});

test('descriptions name each object once with one phrase per clause', (t) => {
  const g = scene(4);
  const text = describeObjects(textObjects(g), g.background, new Rng(1));
  t.is(mentionedObjects(text).length, g.objects.length);
  t.regex(text, new RegExp(`${g.background} background`));
});

test('pyJson writes like Python json.dumps', (t) => {
  t.is(pyJson({ a: 1, b: [true, null, 'x\u00e9'], c: { d: 'q"' } }), '{"a": 1, "b": [true, null, "x\\u00e9"], "c": {"d": "q\\""}}');
});

test('flickrXml writes 1-based inclusive corners and box-less objects with both flags', (t) => {
  const xml = flickrXml('5.jpg', 64, 64, [
    { chainId: 10, boxes: [[0, 0, 10, 10], [20, 20, 30, 30]], scene: false, nobndbox: false },
    { chainId: 11, boxes: [], scene: true, nobndbox: false },
  ]);
  t.regex(xml, /<name>10<\/name>\n\t\t<bndbox>\n\t\t\t<xmin>1<\/xmin>\n\t\t\t<ymin>1<\/ymin>\n\t\t\t<xmax>10<\/xmax>\n\t\t\t<ymax>10<\/ymax>/);
  t.is(xml.match(/<name>10<\/name>/g)!.length, 2);
  t.regex(xml, /<name>11<\/name>\n\t\t<nobndbox>0<\/nobndbox>\n\t\t<scene>1<\/scene>/);
});

test('sceneSvg draws one element per object on the background', (t) => {
  const g = scene(2);
  const s = sampleScene(new Rng(1002), cooc, 4);
  const svg = sceneSvg(s);
  t.true(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"'));
  t.is((svg.match(/<(circle|rect|polygon) /g) ?? []).length, g.objects.length + 1);
});

test('sampleScene layouts: grid keeps every object inside one cell (large: a 2x2 block); free uses the free sizes and crosses cells', (t) => {
  let crossing = 0;
  for (let i = 0; i < 200; i++) {
    for (const o of sampleScene(new Rng(5000 + i), cooc, 6, 'grid').objects) {
      const span = o.size === 'small' ? 16 : 32;
      const x = Math.floor(o.box[0] / 16) * 16;
      const y = Math.floor(o.box[1] / 16) * 16;
      t.true(o.box[0] > x && o.box[2] < x + span && o.box[1] > y && o.box[3] < y + span, `${o.box}`);
    }
    for (const o of sampleScene(new Rng(5000 + i), cooc, 6, 'free').objects) {
      const side = o.box[2] - o.box[0];
      t.true(o.size === 'small' ? side >= 10 && side <= 14 : side >= 20 && side <= 28);
      if (Math.floor(o.box[0] / 16) !== Math.floor((o.box[2] - 1) / 16)) crossing++;
    }
  }
  t.true(crossing > 100, `free objects crossing a cell edge: ${crossing}`);
});

test('evidenceYesNo: the shapes of the asked colour, then the verdict', (t) => {
  const objs = [
    { color: 'red', shape: 'star', size: 'large', position: 'center' },
    { color: 'blue', shape: 'circle', size: 'small', position: 'bottom' },
    { color: 'red', shape: 'square', size: 'small', position: 'top left' },
    { color: 'red', shape: 'square', size: 'large', position: 'left' },
  ] as const;
  t.is(evidenceYesNo(objs, { color: 'red', shape: 'circle' }, undefined), 'The red shapes in the image: a square and a star, so no, there is no red circle in the image.');
  t.is(evidenceYesNo(objs, { color: 'red', shape: 'star' }, objs[0]), 'The red shapes in the image: a square and a star, so yes, there is a large red star in the center.');
  t.is(evidenceYesNo(objs, { color: 'orange', shape: 'star' }, undefined), 'The orange shapes in the image: none, so no, there is no orange star in the image.');
  // on generated scenes the listed shapes are exactly those of the asked colour, and the only
  // object mention is the asked one (negated when absent): the evidence names no other object
  for (let i = 0; i < 100; i++) {
    const g = scene(i);
    const to = textObjects(g);
    const rng = new Rng(i);
    const color = rng.pick(COLORS);
    const shape = rng.pick(SHAPES);
    const present = to.find((o) => o.color === color && o.shape === shape);
    const answer = evidenceYesNo(to, { color, shape }, present);
    const listed = /^The \w+ shapes in the image: (.*), so (yes|no), /.exec(answer);
    t.truthy(listed, answer);
    const expected = SHAPES.filter((s) => to.some((o) => o.color === color && o.shape === s));
    t.deepEqual(listed![1] === 'none' ? [] : listed![1]!.split(/, | and /).map((w) => w.replace(/^an? /, '')), expected);
    t.is(listed![2], present ? 'yes' : 'no');
    t.deepEqual(mentionedObjects(answer).map((m) => [m.color, m.shape, m.negated]), [[color, shape, !present]]);
  }
});

test('llavaConversation: 2-4 rounds, exactly one existence question, at varying rounds, answered truthfully', (t) => {
  const rounds = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const g = scene(i);
    const turns = llavaConversation(g, cooc, new Rng(i));
    const humans = turns.filter((x) => x.from === 'human');
    t.true(humans.length >= 2 && humans.length <= 4, `${humans.length} rounds`);
    const k = humans.findIndex((x) => / in the image\?$/.test(x.value) && /^(<image>\n)?Is there /.test(x.value));
    t.not(k, -1, JSON.stringify(humans));
    t.is(humans.filter((x) => /^(<image>\n)?Is there /.test(x.value)).length, 1);
    rounds.add(k);
    const [, color, shape] = /Is there an? (\w+) (\w+) in the image\?$/.exec(humans[k]!.value)!;
    const answer = turns[2 * k + 1]!.value;
    t.is(/, so (yes|no), /.exec(answer)![1], g.objects.some((o) => o.color === color && o.shape === shape) ? 'yes' : 'no', answer);
  }
  t.deepEqual([...rounds].sort(), [0, 1, 2, 3]);
});

test('llavaConversation (world v7): absent shapes, relations, sizes compared and the highest shape, each answered truthfully', (t) => {
  const seen = { absent: 0, relation: 0, bigger: 0, highest: 0 };
  for (let i = 0; i < 400; i++) {
    const g = scene(i);
    const objs = textObjects(g);
    const turns = llavaConversation(g, cooc, new Rng(i));
    for (let k = 0; k + 1 < turns.length; k += 2) {
      const q = turns[k]!.value.replace('<image>\n', '');
      const a = turns[k + 1]!.value;
      t.is(judgeMentions(a, objs).hallucinated, 0, `${q} -> ${a}`);
      let m: RegExpExecArray | null;
      if ((m = /^What color is the (\w+)\?$/.exec(q)) && (SHAPES as readonly string[]).includes(m[1]!) && !objs.some((o) => o.shape === m![1])) {
        seen.absent++;
        t.true(a.startsWith(`There is no ${m[1]} in the image. It shows `), a);
        t.is(mentionedObjects(a).filter((x) => !x.negated).length, objs.length, a);
      } else if ((m = /^Where is the (\w+) (\w+) compared to the (\w+) (\w+)\?$/.exec(q))) {
        seen.relation++;
        const rel = relationOf(g, { color: m[1] as never, shape: m[2] as never }, { color: m[3] as never, shape: m[4] as never });
        t.is(a, `The ${m[1]} ${m[2]} is ${rel} the ${m[3]} ${m[4]}.`);
        const ga = g.objects.find((o) => o.color === m![1] && o.shape === m![2])!;
        const gb = g.objects.find((o) => o.color === m![3] && o.shape === m![4])!;
        if (rel === 'to the left of') t.true(ga.box[0] + ga.box[2] < gb.box[0] + gb.box[2]);
        if (rel === 'below') t.true(ga.box[1] + ga.box[3] > gb.box[1] + gb.box[3]);
      } else if ((m = /^Which one is bigger, the (\w+) (\w+) or the (\w+) (\w+)\?$/.exec(q))) {
        seen.bigger++;
        const sa = objs.find((o) => o.color === m![1] && o.shape === m![2])!.size;
        const sb = objs.find((o) => o.color === m![3] && o.shape === m![4])!.size;
        if (sa === sb) t.true(a.startsWith('Neither: ') && a.endsWith(`both ${sa}.`), a);
        else t.is(a, `The ${sa === 'large' ? `${m[1]} ${m[2]}` : `${m[3]} ${m[4]}`} is bigger.`);
      } else if (q === 'Which shape is the highest in the image?') {
        seen.highest++;
        const top = g.objects[topmostIndex(g)]!;
        t.true(g.objects.every((o) => o.box[1] >= top.box[1]));
        t.is(a, `The highest shape is the ${top.color} ${top.shape}.`);
      }
    }
  }
  for (const [kind, n] of Object.entries(seen)) t.true(n >= 20, `${kind}: ${n}`);
});
