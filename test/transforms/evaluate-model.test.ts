import test from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FactflowError } from '../../src/errors.ts';
import type { Answerer, AnswerItem } from '../../src/eval/answerer.ts';
import { generateShapesWorld, SHAPES_WORLD_FILES as F } from '../../sources/shapes-world.ts';
import { loadShapesTruth } from '../../sources/shapes-truth.ts';
import { COLORS, SHAPES } from '../../schemas/shapes-world.ts';
import { evaluateModel, POPE_PROMPT_SUFFIX } from '../../transforms/evaluate-model.ts';

let tmp: string;
let world: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-evaluate-model-'));
  world = path.join(tmp, 'world');
  await generateShapesWorld({ out: world, seed: 5, images: 30, mmhalPerType: 2 });
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const POPE_Q = /^Is there a (\w+ \w+) in the image\?/;

test('an oracle on POPE that says "I cannot tell." on MMHal: F1 1, no hallucination, score 3', async (t) => {
  const truth = await loadShapesTruth(path.join(world, F.ground_truth));
  const asked: AnswerItem[] = [];
  const oracle: Answerer = async (items) => {
    asked.push(...items);
    return items.map((it) => {
      const gt = truth.get(it.image);
      if (!gt) throw new Error(`no such image ${it.image}`);
      const m = POPE_Q.exec(it.question);
      if (!m) return 'I cannot tell.';
      return gt.objects.some((o) => `${o.color} ${o.shape}` === m[1]) ? 'Yes, there is.' : 'No, there is not.';
    });
  };
  const out = path.join(tmp, 'oracle');
  const r = await evaluateModel({ policyAnswerer: oracle, worldDir: world, out, batchSize: 16 });
  t.is(r.pope_f1, 1);
  t.is(r.pope_yes_ratio, 0.5, 'half the POPE objects are present');
  t.deepEqual(Object.keys(r.pope.splits), ['random', 'popular', 'adversarial']);
  t.like(r, { hallucination_rate: 0, mmhal_score: 3, response_length_mean: 3 });
  t.is(r.mmhal.n, 16);
  // every image the model was shown exists under <world>/images; POPE questions carry the short-answer suffix
  t.true(asked.every((a) => existsSync(path.join(world, 'images', a.image))));
  const pope = asked.filter((a) => POPE_Q.test(a.question));
  t.true(pope.length > 0 && pope.every((a) => a.question.endsWith(POPE_PROMPT_SUFFIX)));
  for (const part of ['pope', 'mmhal']) {
    t.deepEqual(JSON.parse(await readFile(path.join(out, part, 'report.json'), 'utf8')), r[part as 'pope' | 'mmhal']);
    t.is((JSON.parse(await readFile(path.join(out, part, 'manifest.json'), 'utf8')) as { schema: string }).schema, 'eval');
  }
});

test('a yes-man that invents an object in every description: F1 2/3, hallucination rate 1', async (t) => {
  const truth = await loadShapesTruth(path.join(world, F.ground_truth));
  const yesMan: Answerer = async (items) => items.map((it) => {
    if (POPE_Q.test(it.question)) return 'Yes';
    const gt = truth.get(it.image)!;
    const color = COLORS.find((c) => !gt.objects.some((o) => o.color === c));
    const shape = SHAPES.find((s) => !gt.objects.some((o) => o.shape === s));
    return `There is a ${color} ${shape}.`;
  });
  const r = await evaluateModel({ policyAnswerer: yesMan, worldDir: world, out: path.join(tmp, 'yes') });
  // the world asks as many absent as present objects: always "yes" gives precision 1/2, recall 1
  t.true(Math.abs(r.pope_f1 - 2 / 3) < 1e-12);
  t.is(r.pope_yes_ratio, 1);
  t.is(r.hallucination_rate, 1);
  t.true(r.mmhal_score < 3);
  t.is(r.response_length_mean, 5); // "There is a red circle."
});

test('a folder that is not a shapes world is a clear error', async (t) => {
  const err = await evaluateModel({ policyAnswerer: async () => [], worldDir: path.join(tmp, 'nowhere'), out: path.join(tmp, 'x') }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(err?.code, 'FF_ERR_BAD_INPUT');
  t.regex(err!.message, /nowhere: not a complete shapes world/);
});
