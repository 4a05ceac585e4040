import test from 'ava';
import { createHash } from 'node:crypto';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { generateShapesWorld, SHAPES_WORLD_FILES as F, type ShapesWorldResult } from '../../sources/shapes-world.ts';
import { annotatorChoice, judgeMentions } from '../../sources/shapes-world-text.ts';
import { COLORS, SHAPES, objectKey, type GroundTruth } from '../../schemas/shapes-world.ts';
import { sharedTempDir, tempDir } from '../helpers/temp-dir.ts';

// real samples copied into test/fixtures (provenance there), so the format checks never skip
const FIX = path.resolve(import.meta.dirname, '../fixtures');
const realAvailable = true;

interface World {
  dir: string;
  result: ShapesWorldResult;
  gt: GroundTruth[];
  byId: Map<number, GroundTruth>;
  json(rel: string): Promise<any>;
  text(rel: string): Promise<string>;
}

async function makeWorld(dir: string, seed: number, extra: Record<string, unknown> = {}): Promise<World> {
  const result = await generateShapesWorld({ out: dir, seed, images: 40, annotatorNoise: 0, ...extra });
  const text = (rel: string) => readFile(path.join(dir, rel), 'utf8');
  const gt = (await text(F.ground_truth)).trim().split('\n').map((l) => JSON.parse(l) as GroundTruth);
  const byId = new Map<number, GroundTruth>();
  for (const g of gt) if (g.dataset === 'coco') byId.set(g.image_id, g);
  return { dir, result, gt, byId, text, json: async (rel: string) => JSON.parse(await text(rel)) };
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(path.relative(dir, path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name)));
  }
  return out.sort();
}

async function digest(dir: string): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const f of await filesUnder(dir)) m.set(f, createHash('sha256').update(await readFile(path.join(dir, f))).digest('hex'));
  return m;
}

const worldP = makeWorld(sharedTempDir('shapes-world-'), 7);
const twinP = makeWorld(sharedTempDir('shapes-world-'), 7);

const keysOf = (o: object) => Object.keys(o);
const objectsOf = (g: GroundTruth) => g.objects;
const hasKind = (g: GroundTruth, color: string, shape: string) => g.objects.some((o) => o.color === color && o.shape === shape);

test('same seed gives byte-identical files (sha256 of every file, images included); another seed differs', async (t) => {
  const [a, b] = await Promise.all([worldP, twinP]);
  const [da, db] = await Promise.all([digest(a.dir), digest(b.dir)]);
  t.is(da.size, 68 + 2 * 8 + 3 + 13);
  t.deepEqual([...da.keys()], [...db.keys()]);
  for (const [f, h] of da) t.is(db.get(f), h, f);
  const c = await makeWorld(await tempDir(t, 'shapes-world-'), 8, { images: 5, flickrImages: 0, evalImages: 2 });
  t.notDeepEqual(c.gt.map((g) => g.objects), a.gt.slice(0, 5).map((g) => g.objects));
});

test('layout: every image exists as a 64x64 JPEG, ground truth covers train, flickr and eval images', async (t) => {
  const w = await worldP;
  const { images } = w.result.counts;
  t.is(w.gt.length, images.total);
  t.is(images.total, 40 + 8 + 20);
  const imgs = (await filesUnder(path.join(w.dir, 'images'))).sort();
  t.deepEqual(imgs, w.gt.map((g) => g.image).sort());
  t.true(w.gt.filter((g) => g.split === 'eval').every((g) => /^coco\/val2014\/COCO_val2014_\d{12}\.jpg$/.test(g.image)));
  t.true(w.gt.filter((g) => g.dataset === 'coco' && g.split === 'train').every((g) => g.image === `coco/train2017/${String(g.image_id).padStart(12, '0')}.jpg`));
  t.true(w.gt.filter((g) => g.dataset === 'flickr30k').every((g) => g.image === `flickr30k/${g.image_id}.jpg`));
  for (const g of w.gt.slice(0, 5)) {
    const meta = await sharp(path.join(w.dir, 'images', g.image)).metadata();
    t.is(meta.format, 'jpeg');
    t.is(meta.width, 64);
    t.is(meta.height, 64);
  }
  // objects are inside the image, do not overlap, and (grid layout) each lies inside one 16-px
  // cell, a large one inside a 2x2 block of cells
  for (const g of w.gt) {
    t.true(g.objects.length >= 1 && g.objects.length <= 4);
    for (const [i, a] of g.objects.entries()) {
      t.true(a.box[0] >= 0 && a.box[1] >= 0 && a.box[2] <= 64 && a.box[3] <= 64);
      const side = a.box[2] - a.box[0];
      t.true(a.size === 'small' ? side >= 11 && side <= 13 : side >= 24 && side <= 28);
      const span = a.size === 'small' ? 16 : 32;
      const cellX = Math.floor(a.box[0] / 16) * 16;
      const cellY = Math.floor(a.box[1] / 16) * 16;
      t.true(a.box[0] > cellX && a.box[2] < cellX + span && a.box[1] > cellY && a.box[3] < cellY + span, `${g.image}: ${a.box} not inside its cell`);
      for (const b of g.objects.slice(i + 1)) t.false(a.box[0] < b.box[2] && b.box[0] < a.box[2] && a.box[1] < b.box[3] && b.box[1] < a.box[3]);
    }
  }
  // the rendered colour at an object's centre is near its colour (not the background)
  const g = w.gt.find((x) => x.objects.some((o) => o.size === 'large' && o.shape === 'square' || o.shape === 'circle' && o.size === 'large'));
  if (g) {
    const o = g.objects.find((x) => x.size === 'large' && (x.shape === 'square' || x.shape === 'circle'))!;
    const { data } = await sharp(path.join(w.dir, 'images', g.image)).raw().toBuffer({ resolveWithObject: true });
    const cx = Math.floor((o.box[0] + o.box[2]) / 2);
    const cy = Math.floor((o.box[1] + o.box[3]) / 2);
    const px = [...data.subarray((cy * 64 + cx) * 3, (cy * 64 + cx) * 3 + 3)];
    const rgb: Record<string, number[]> = { red: [214, 39, 40], green: [44, 160, 44], blue: [31, 95, 191], yellow: [242, 208, 36], purple: [142, 63, 176], orange: [245, 127, 14], white: [255, 255, 255], black: [22, 22, 22] };
    const dist = px.reduce((s, v, i) => s + Math.abs(v - rgb[o.color]![i]!), 0);
    t.true(dist < 60, `pixel ${px} vs ${o.color}`);
  }
});

test('world.json lists disjoint train/heldout/eval ids matching the ground truth, and counts', async (t) => {
  const w = await worldP;
  const world = await w.json(F.world);
  t.is(world.seed, 7);
  t.is(world.image_root, 'images');
  t.deepEqual(world.vocabulary.shapes, [...SHAPES]);
  const { train, heldout, eval: ev, flickr30k } = world.splits;
  t.is(train.length, 30);
  t.is(heldout.length, 10);
  t.is(ev.length, 20);
  const all = new Set([...train, ...heldout, ...ev]);
  t.is(all.size, 60);
  t.deepEqual(new Set(w.gt.filter((g) => g.split === 'eval').map((g) => g.image_id)), new Set(ev));
  t.is(flickr30k.train.length + flickr30k.val.length + flickr30k.test.length, 8);
  t.true(flickr30k.val.length >= 1 && flickr30k.test.length >= 1);
  t.deepEqual(world.counts, w.result.counts);
});

test('VQA-v2 files match the real structure and key order, one compact line', async (t) => {
  const w = await worldP;
  const qText = await w.text(F.vqav2_questions);
  const aText = await w.text(F.vqav2_annotations);
  t.false(qText.includes('\n'));
  t.false(aText.includes('\n'));
  const q = JSON.parse(qText);
  const a = JSON.parse(aText);
  t.is(q.data_subtype, 'train2014');
  t.is(a.data_subtype, 'train2014');
  if (realAvailable) {
    const rq = JSON.parse(await readFile(`${FIX}/vqav2/emma-datasets/v2_OpenEnded_mscoco_train2014_questions.json`, 'utf8'));
    const ra = JSON.parse(await readFile(`${FIX}/vqav2/emma-datasets/v2_mscoco_train2014_annotations.json`, 'utf8'));
    t.deepEqual(keysOf(q), keysOf(rq));
    t.deepEqual(keysOf(a), keysOf(ra));
    t.deepEqual(keysOf(q.info), keysOf(rq.info));
    t.deepEqual(keysOf(q.license), keysOf(rq.license));
    t.deepEqual(keysOf(q.questions[0]), keysOf(rq.questions[0]));
    t.deepEqual(keysOf(a.annotations[0]), keysOf(ra.annotations[0]));
    t.deepEqual(keysOf(a.annotations[0].answers[0]), keysOf(ra.annotations[0].answers[0]));
  }
  t.is(q.questions.length, a.annotations.length);
  t.is(q.questions.length, w.result.counts.vqav2.questions);
  const world = await w.json(F.world);
  const sft = new Set<number>(world.splits.train);
  for (const [i, qq] of q.questions.entries()) {
    const ann = a.annotations[i];
    t.is(ann.question_id, qq.question_id);
    t.true(sft.has(qq.image_id), 'VQA only on SFT images');
    t.is(Math.floor(qq.question_id / 1000), qq.image_id);
    t.is(ann.answers.length, 10);
    t.deepEqual(ann.answers.map((x: any) => x.answer_id), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    t.true(ann.answers.every((x: any) => ['yes', 'maybe', 'no'].includes(x.answer_confidence)));
    t.true(['yes/no', 'number', 'other'].includes(ann.answer_type));
    t.is(typeof ann.multiple_choice_answer, 'string');
    // the official answer is the most common of the ten
    const agree = ann.answers.filter((x: any) => x.answer === ann.multiple_choice_answer).length;
    t.true(agree >= 7);
  }
  t.is(w.result.counts.vqav2.yes, w.result.counts.vqav2.no, 'yes/no balanced');
  t.true(a.annotations.some((x: any) => x.answers.some((y: any) => y.answer !== x.multiple_choice_answer)), 'some annotator noise');
});

/** An independent answerer for every VQA question form the generator uses. */
function answer(q: string, g: GroundTruth): string {
  const objs = objectsOf(g);
  let m: RegExpMatchArray | null;
  if ((m = q.match(/^Is there an? (\w+) (\w+)\?$/))) return hasKind(g, m[1]!, m[2]!) ? 'yes' : 'no';
  if ((m = q.match(/^Is there an? (\w+) (\w+) in the image\?$/))) return hasKind(g, m[1]!, m[2]!) ? 'yes' : 'no';
  if ((m = q.match(/^Is there an? (\w+) in the image\?$/))) return objs.some((o) => o.shape === m![1]) ? 'yes' : 'no';
  if ((m = q.match(/^Is there anything (\w+)\?$/))) return objs.some((o) => o.color === m![1]) ? 'yes' : 'no';
  if ((m = q.match(/^Are there any (\w+)s\?$/))) return objs.some((o) => o.shape === m![1]) ? 'yes' : 'no';
  if (q === 'How many shapes are in the image?') return String(objs.length);
  if ((m = q.match(/^How many (\w+) objects are there\?$/))) return String(objs.filter((o) => o.color === m![1]).length);
  if ((m = q.match(/^How many (\w+)s are there\?$/))) return String(objs.filter((o) => o.shape === m![1]).length);
  if ((m = q.match(/^What color is the (\w+)\?$/))) {
    if (m[1] === 'background') return g.background;
    const hits = objs.filter((o) => o.shape === m![1]);
    return hits.length === 1 ? hits[0]!.color : `ambiguous:${hits.length}`;
  }
  if ((m = q.match(/^What shape is the (\w+) object\?$/))) {
    const hits = objs.filter((o) => o.color === m![1]);
    return hits.length === 1 ? hits[0]!.shape : `ambiguous:${hits.length}`;
  }
  return `unknown question form: ${q}`;
}

test('every VQA-v2 answer is true of the ground truth', async (t) => {
  const w = await worldP;
  const q = await w.json(F.vqav2_questions);
  const a = await w.json(F.vqav2_annotations);
  for (const [i, qq] of q.questions.entries()) {
    const g = w.byId.get(qq.image_id)!;
    t.is(a.annotations[i].multiple_choice_answer, answer(qq.question, g), qq.question);
  }
});

test('A-OKVQA files: real record shape, 4 choices, 10 direct answers, 3 rationales, true answers', async (t) => {
  const w = await worldP;
  const world = await w.json(F.world);
  const keys = ['split', 'image_id', 'question_id', 'question', 'choices', 'correct_choice_idx', 'direct_answers', 'difficult_direct_answer', 'rationales'];
  const ids = new Set<string>();
  for (const [file, split, pool] of [[F.aokvqa_train, 'train', world.splits.train], [F.aokvqa_val, 'val', world.splits.heldout]] as const) {
    const text = await w.text(file);
    t.false(text.includes('\n'));
    const records = JSON.parse(text);
    t.true(records.length > 0);
    for (const r of records) {
      t.deepEqual(keysOf(r), keys);
      t.is(r.split, split);
      t.true(pool.includes(r.image_id));
      t.regex(r.question_id, /^[2-9A-HJ-NP-Za-km-z]{22}$/);
      t.false(ids.has(r.question_id));
      ids.add(r.question_id);
      t.is(r.choices.length, 4);
      t.is(new Set(r.choices).size, 4);
      t.true(r.correct_choice_idx >= 0 && r.correct_choice_idx < 4);
      t.is(r.direct_answers.length, 10);
      t.is(r.rationales.length, 3);
      t.is(typeof r.difficult_direct_answer, 'boolean');
      const g = w.byId.get(r.image_id)!;
      const correct = r.choices[r.correct_choice_idx];
      let m: RegExpMatchArray | null;
      if ((m = r.question.match(/^How many (\w+)s can be seen/))) t.is(correct, String(g.objects.filter((o) => o.shape === m![1]).length));
      else if ((m = r.question.match(/^Which shape in the picture is (\w+)\?$/))) t.is(correct, g.objects.find((o) => o.color === m![1])!.shape);
      else if ((m = r.question.match(/^What color is the (\w+) /))) t.true(hasKind(g, correct, m[1]!));
      else if ((m = r.question.match(/^Where is the (\w+) (\w+) located\?$/))) t.true(hasKind(g, m[1]!, m[2]!));
      else t.fail(`unknown question ${r.question}`);
      // rationales only name objects that are there
      for (const s of r.rationales) t.is(judgeMentions(s, g.objects).hallucinated, 0, s);
    }
  }
});

test('COCO captions: real key order, 5 accurate captions per train image that together name every object', async (t) => {
  const w = await worldP;
  const d = await w.json(F.coco_captions);
  if (realAvailable) {
    const real = JSON.parse(await readFile(`${FIX}/coco/captions_val2014.json`, 'utf8'));
    t.deepEqual(keysOf(d), keysOf(real));
    t.deepEqual(keysOf(d.info), keysOf(real.info));
    t.deepEqual(keysOf(d.images[0]), keysOf(real.images[0]));
    t.deepEqual(keysOf(d.annotations[0]), keysOf(real.annotations[0]));
    t.deepEqual(keysOf(d.licenses[0]), keysOf(real.licenses[0]));
    t.is(d.licenses.length, real.licenses.length);
  }
  const world = await w.json(F.world);
  t.deepEqual(new Set(d.images.map((i: any) => i.id)), new Set([...world.splits.train, ...world.splits.heldout]));
  t.is(new Set(d.annotations.map((a: any) => a.id)).size, d.annotations.length);
  const byImage = new Map<number, string[]>();
  for (const a of d.annotations) byImage.set(a.image_id, [...(byImage.get(a.image_id) ?? []), a.caption]);
  for (const img of d.images) {
    t.is(img.file_name, `COCO_train2014_${String(img.id).padStart(12, '0')}.jpg`);
    t.true(Number.isInteger(img.license) && img.license >= 1 && img.license <= 8);
    const caps = byImage.get(img.id)!;
    t.is(caps.length, 5);
    const g = w.byId.get(img.id)!;
    for (const c of caps) t.is(judgeMentions(c, g.objects).hallucinated, 0, c);
    t.is(judgeMentions(caps.join('. '), g.objects).matched, g.objects.length, caps.join(' | '));
  }
  // some real-data untidiness, but not everywhere
  const all = d.annotations.map((a: any) => a.caption as string);
  t.true(all.some((c: string) => !/[.]\s*$/.test(c)));
  t.true(all.filter((c: string) => /\.$/.test(c)).length > all.length / 2);
});

function checkXml(t: any, xml: string): { name: string; box?: number[]; nobndbox?: number; scene?: number }[] {
  // tiny well-formedness check: every tag closes in order
  const stack: string[] = [];
  for (const m of xml.matchAll(/<(\/?)(\w+)>/g)) {
    if (m[1]) t.is(stack.pop(), m[2]);
    else stack.push(m[2]!);
  }
  t.is(stack.length, 0);
  t.regex(xml, /^<annotation>\n\t<filename>\d+\.jpg<\/filename>\n\t<size>\n\t\t<width>64<\/width>\n\t\t<height>64<\/height>\n\t\t<depth>3<\/depth>\n\t<\/size>\n/);
  const objs = [];
  for (const m of xml.matchAll(/<object>([\s\S]*?)<\/object>/g)) {
    const body = m[1]!;
    const num = (tag: string) => {
      const x = body.match(new RegExp(`<${tag}>(\\d+)</${tag}>`));
      return x ? Number(x[1]) : undefined;
    };
    const name = body.match(/<name>(\d+)<\/name>/)![1]!;
    const xmin = num('xmin');
    objs.push(xmin === undefined ? { name, nobndbox: num('nobndbox'), scene: num('scene') } : { name, box: [xmin, num('ymin')!, num('xmax')!, num('ymax')!] });
  }
  return objs;
}

test('Flickr30k Entities: sentences with [/EN#id/type words] phrases, XML with size, multi-box entity, nobndbox and scene', async (t) => {
  const w = await worldP;
  const flickr = w.gt.filter((g) => g.dataset === 'flickr30k');
  t.is(flickr.length, 8);
  let multiBox = 0;
  let nobox = 0;
  let scene = 0;
  let notvisual = 0;
  for (const g of flickr) {
    const sentences = await w.text(`${F.flickr30k_sentences}/${g.image_id}.txt`);
    t.true(sentences.endsWith('\n'));
    const lines = sentences.trimEnd().split('\n');
    t.is(lines.length, 5);
    const objs = checkXml(t, await w.text(`${F.flickr30k_annotations}/${g.image_id}.xml`));
    const names = new Set(objs.map((o) => o.name));
    for (const line of lines) {
      t.is(line.replace(/\[\/EN#\d+\/[\w/]+ [^\]]+\]/g, '').includes('['), false, line);
      for (const m of line.matchAll(/\[\/EN#(\d+)\/([\w/]+) ([^\]]+)\]/g)) {
        if (m[1] === '0') {
          t.is(m[2], 'notvisual');
          notvisual++;
        } else t.true(names.has(m[1]!), `chain ${m[1]} has an XML object`);
        if (m[2] === 'other' && m[1] !== '0' && objs.some((o) => o.name === m[1] && o.box)) {
          t.is(judgeMentions(m[3]!, g.objects).hallucinated, 0, m[3]);
        }
      }
    }
    // boxes are the ground-truth boxes in 1-based inclusive corners
    const boxes = objs.filter((o) => o.box).map((o) => o.box!.join(',')).sort();
    t.deepEqual(boxes, g.objects.map((o) => [o.box[0] + 1, o.box[1] + 1, o.box[2], o.box[3]].join(',')).sort());
    const perName = new Map<string, number>();
    for (const o of objs) if (o.box) perName.set(o.name, (perName.get(o.name) ?? 0) + 1);
    multiBox += [...perName.values()].filter((n) => n > 1).length;
    nobox += objs.filter((o) => o.nobndbox === 1).length;
    scene += objs.filter((o) => o.scene === 1).length;
  }
  t.is(scene, 8);
  t.true(multiBox >= 1, 'a multi-box entity ("two red circles")');
  t.true(nobox >= 1, 'a nobndbox entity');
  t.true(notvisual >= 1);
  const lists = await Promise.all([F.flickr30k_train, F.flickr30k_val, F.flickr30k_test].map((f) => w.text(f)));
  const listed = lists.flatMap((l) => l.trimEnd().split('\n'));
  t.deepEqual(listed.map(Number).sort(), flickr.map((g) => g.image_id).sort());
  t.true(lists.every((l) => l.endsWith('\n')));
});

test('POPE: JSONL in the real key order, question ids from 1, true labels, 3 yes + 3 no per image where possible', async (t) => {
  const w = await worldP;
  const evalImages = new Map(w.gt.filter((g) => g.split === 'eval').map((g) => [`COCO_val2014_${String(g.image_id).padStart(12, '0')}.jpg`, g]));
  const realKeys = realAvailable ? keysOf(JSON.parse((await readFile(`${FIX}/pope/coco_pope_random.json`, 'utf8')).split('\n')[0]!)) : ['question_id', 'image', 'text', 'label'];
  // train-image frequency, for the popular setting
  const freq = new Map<string, number>();
  for (const g of w.gt.filter((x) => x.dataset === 'coco' && x.split === 'train')) for (const k of new Set(g.objects.map(objectKey))) freq.set(k, (freq.get(k) ?? 0) + 1);
  const negatives: Record<string, string[]> = {};
  for (const setting of ['random', 'popular', 'adversarial'] as const) {
    const text = await w.text(`pope/coco_pope_${setting}.json`);
    t.true(text.endsWith('\n'));
    const rows = text.trimEnd().split('\n').map((l) => JSON.parse(l));
    negatives[setting] = [];
    t.deepEqual(rows.map((r) => r.question_id), rows.map((_, i) => i + 1));
    const perImage = new Map<string, { yes: number; no: number; noKeys: string[] }>();
    for (const r of rows) {
      t.deepEqual(keysOf(r), realKeys);
      const g = evalImages.get(r.image);
      t.truthy(g, 'POPE uses eval images only');
      const m = r.text.match(/^Is there a (\w+) (\w+) in the image\?$/);
      t.truthy(m, r.text);
      t.is(r.label, hasKind(g!, m[1], m[2]) ? 'yes' : 'no');
      const s = perImage.get(r.image) ?? { yes: 0, no: 0, noKeys: [] };
      if (r.label === 'yes') s.yes++;
      else {
        s.no++;
        s.noKeys.push(`${m[1]} ${m[2]}`);
        negatives[setting]!.push(`${m[1]} ${m[2]}`);
      }
      perImage.set(r.image, s);
    }
    t.is(perImage.size, evalImages.size);
    for (const [image, s] of perImage) {
      const distinct = new Set(evalImages.get(image)!.objects.map(objectKey)).size;
      t.is(s.yes, Math.min(3, distinct));
      t.is(s.no, s.yes);
      if (setting === 'popular') {
        // the negatives are the most frequent absent kinds
        const g = evalImages.get(image)!;
        const absent = [...freq.keys()].filter((k) => !g.objects.some((o) => objectKey(o) === k));
        const best = Math.max(...absent.map((k) => freq.get(k)!));
        t.is(freq.get(s.noKeys[0]!) ?? 0, best);
      }
    }
  }
  t.notDeepEqual(negatives.random, negatives.popular);
});

test('MMHal template: 8 types x 12, real key order, 2-space indent without trailing newline, eval images', async (t) => {
  const w = await worldP;
  const text = await w.text(F.mmhal);
  t.false(text.endsWith('\n'));
  t.true(text.startsWith('[\n  {\n    "question_type"'));
  const items = JSON.parse(text);
  t.is(items.length, 96);
  const types = ['attribute', 'adversarial', 'comparison', 'counting', 'relation', 'environment', 'holistic', 'other'];
  for (const type of types) t.is(items.filter((x: any) => x.question_type === type).length, 12);
  const evalSet = new Set(w.gt.filter((g) => g.split === 'eval').map((g) => g.image));
  for (const x of items) {
    t.deepEqual(keysOf(x), ['question_type', 'question_topic', 'image_id', 'image_src', 'image_content', 'question', 'gt_answer', 'model_answer']);
    t.regex(x.image_id, /^[0-9a-f]{16}$/);
    t.true(evalSet.has(x.image_src));
    t.is(x.model_answer, '');
    const g = w.gt.find((y) => y.image === x.image_src)!;
    t.is(x.image_content.length, g.objects.length);
    t.is(judgeMentions(x.gt_answer, g.objects).hallucinated, 0, x.gt_answer);
  }
});

test('LLaVA instruct: SFT images only, <image> first, faithful conversations, hallucinated descriptions only here', async (t) => {
  const w = await worldP;
  const text = await w.text(F.llava_instruct);
  t.true(text.startsWith('[\n  {\n    "id": "'));
  const records = JSON.parse(text);
  const world = await w.json(F.world);
  const sft = new Set<number>(world.splits.train);
  t.is(records.length, 60);
  let detail = 0;
  let hallucinated = 0;
  for (const r of records) {
    t.deepEqual(keysOf(r), ['id', 'image', 'conversations']);
    t.regex(r.id, /^\d{12}$/);
    t.is(r.image, `${r.id}.jpg`);
    const g = w.byId.get(Number(r.id))!;
    t.true(sft.has(g.image_id));
    t.true(r.conversations[0].value.startsWith('<image>\n'));
    r.conversations.forEach((turn: any, i: number) => {
      t.is(turn.from, i % 2 === 0 ? 'human' : 'gpt');
      if (i > 0) t.false(turn.value.includes('<image>'));
    });
    const isDetail = r.conversations.length === 2 && /detail|describe/i.test(r.conversations[0].value);
    const gptText = r.conversations.filter((x: any) => x.from === 'gpt').map((x: any) => x.value).join(' ');
    const j = judgeMentions(gptText, g.objects);
    if (isDetail) {
      detail++;
      if (j.hallucinated > 0) hallucinated++;
      else t.is(j.matched, g.objects.length, 'a faithful description names every object');
    } else t.is(j.hallucinated, 0, gptText);
  }
  t.is(detail, 30);
  t.is(hallucinated, world.counts.llava_instruct.detail_hallucinated);
  t.true(hallucinated > 0);
});

test('preference file: LLaVA-RLHF record shape on held-out images; with no noise the annotator rules hold exactly', async (t) => {
  const w = await worldP;
  const records = await w.json(F.preference);
  const world = await w.json(F.world);
  const heldout = new Set<number>(world.splits.heldout);
  t.is(records.length, 20);
  let traps = 0;
  let flags = 0;
  for (const r of records) {
    t.deepEqual(keysOf(r), ['id', 'image', 'conversations', 'output_1', 'output_2', 'preference', 'hallucination']);
    const g = w.byId.get(Number(r.image.slice(0, 12)))!;
    t.true(heldout.has(g.image_id));
    t.is(r.conversations.at(-1).from, 'gpt', 'LLaVA-RLHF replaces the last gpt turn with each output');
    t.true(r.conversations[0].value.startsWith('<image>\n'));
    t.deepEqual(keysOf(r.output_1), ['from', 'value']);
    t.true(r.preference === 1 || r.preference === 2);
    const a = judgeMentions(r.output_1.value, g.objects);
    const b = judgeMentions(r.output_2.value, g.objects);
    t.is(r.hallucination, a.hallucinated > 0 !== b.hallucinated > 0);
    if (r.hallucination) flags++;
    const tie = a.matched === b.matched && a.hallucinated === b.hallucinated && (a.hallucinated > 0) === (b.hallucinated > 0);
    if (!tie) t.is(r.preference, annotatorChoice(a, b, 0), `${r.output_1.value} || ${r.output_2.value}`);
    if (r.hallucination) {
      const [hal, fai] = a.hallucinated > 0 ? [r.output_1.value, r.output_2.value] : [r.output_2.value, r.output_1.value];
      if (hal.length > fai.length) traps++;
    }
  }
  t.true(flags > 0);
  t.true(traps > 0, 'some hallucinated responses are longer than the faithful one they lose to');
});

test('annotator noise flips about the set share of labels', async (t) => {
  const w = await makeWorld(await tempDir(t, 'shapes-world-'), 11, { images: 200, flickrImages: 0, evalImages: 1, annotatorNoise: 0.3, preferencePerImage: 4, heldoutFraction: 0.5, mmhalPerType: 0 });
  const records = await w.json(F.preference);
  let disagree = 0;
  let decided = 0;
  for (const r of records) {
    const g = w.byId.get(Number(r.image.slice(0, 12)))!;
    const a = judgeMentions(r.output_1.value, g.objects);
    const b = judgeMentions(r.output_2.value, g.objects);
    if (a.matched === b.matched && a.hallucinated === b.hallucinated) continue;
    decided++;
    if (r.preference !== annotatorChoice(a, b, 0)) disagree++;
  }
  t.true(decided > 300);
  const rate = disagree / decided;
  t.true(rate > 0.22 && rate < 0.38, `flip rate ${rate}`);
  t.is(w.result.counts.preference.noise_flips > 0, true);
});

test('bad options throw FF_ERR_INVALID_OPTION naming the option; an aborted signal throws FF_ERR_ABORTED', async (t) => {
  const dir = await tempDir(t, 'shapes-world-bad-');
  for (const [opts, name] of [
    [{ images: 0 }, 'images'],
    [{ images: 1.5 }, 'images'],
    [{ hallucinationRate: 2 }, 'hallucinationRate'],
    [{ maxObjects: 9 }, 'maxObjects'],
    [{ out: '' }, 'out'],
  ] as const) {
    const err = await t.throwsAsync(generateShapesWorld({ out: dir, ...opts }));
    t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
    t.regex(err!.message, new RegExp(`option "${name}"`));
  }
  const ac = new AbortController();
  ac.abort();
  const err = await t.throwsAsync(generateShapesWorld({ out: dir, images: 3, signal: ac.signal }));
  t.is((err as { code?: string }).code, 'FF_ERR_ABORTED');
  // nothing half-written is left under a final name
  t.false((await filesUnder(dir)).some((f) => f.endsWith('.json') || f.endsWith('.jsonl')));
});

test('colour vocabulary sanity: all generated kinds come from the shared vocabulary', async (t) => {
  const w = await worldP;
  for (const g of w.gt) for (const o of g.objects) t.true((COLORS as readonly string[]).includes(o.color) && (SHAPES as readonly string[]).includes(o.shape));
});

test('colorElsewhere: the absent kinds yes/no questions ask about have their colour in the image on another shape, as often as asked; 0 changes nothing', async (t) => {
  // share of colour-and-shape "no"s (VQA-v2 and LLaVA) whose colour is in the image
  const shares = async (w: World) => {
    const qs = (await w.json(F.vqav2_questions)).questions as { image_id: number; question: string; question_id: number }[];
    const answer = new Map(((await w.json(F.vqav2_annotations)).annotations as { question_id: number; multiple_choice_answer: string }[]).map((a) => [a.question_id, a.multiple_choice_answer]));
    const kindRe = new RegExp(`^Is there an? (${COLORS.join('|')}) (${SHAPES.join('|')})( in the image)?\\?$`);
    let vqaNo = 0, vqaElsewhere = 0;
    for (const q of qs) {
      const m = kindRe.exec(q.question);
      if (!m || answer.get(q.question_id) !== 'no') continue;
      const objs = w.byId.get(q.image_id)!.objects;
      t.false(objs.some((o) => o.color === m[1] && o.shape === m[2]), `asked kind is absent: ${q.question}`);
      vqaNo++;
      if (objs.some((o) => o.color === m[1])) vqaElsewhere++;
    }
    const llava = await w.json(F.llava_instruct) as { image: string; conversations: { value: string }[] }[];
    const gtByFile = new Map(w.gt.map((g) => [path.basename(g.image), g]));
    let llavaNo = 0, llavaElsewhere = 0;
    for (const r of llava) {
      for (const turn of r.conversations) {
        const m = /^The (\w+) shapes in the image: .*, so no, there is no \w+ (\w+) in the image\.$/.exec(turn.value);
        if (!m) continue;
        llavaNo++;
        if (gtByFile.get(r.image)!.objects.some((o) => o.color === m[1])) llavaElsewhere++;
      }
    }
    return { vqa: vqaElsewhere / vqaNo, llava: llavaElsewhere / llavaNo, vqaNo, llavaNo };
  };
  const base = await worldP;
  const zero = await makeWorld(await tempDir(t, 'shapes-world-'), 7, { colorElsewhere: 0 });
  const all = await makeWorld(await tempDir(t, 'shapes-world-'), 7, { colorElsewhere: 1 });
  // 0 is the default: the same files (world.json records the value either way)
  const [a, b] = [await digest(base.dir), await digest(zero.dir)];
  t.deepEqual([...a.keys()], [...b.keys()]);
  for (const [f, h] of a) t.is(b.get(f), h, f);
  const s0 = await shares(base);
  const s1 = await shares(all);
  t.true(s0.vqaNo > 10 && s0.llavaNo > 5 && s1.vqaNo > 10 && s1.llavaNo > 5, JSON.stringify({ s0, s1 }));
  t.true(s0.vqa < 0.6 && s0.llava < 0.6, `as drawn: ${JSON.stringify(s0)}`);
  t.true(s1.vqa > 0.9 && s1.llava > 0.9, `colorElsewhere 1: ${JSON.stringify(s1)}`);
  t.is(JSON.parse(await all.text(F.world)).params.color_elsewhere, 1);
});
