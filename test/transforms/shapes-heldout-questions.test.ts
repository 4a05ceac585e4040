import test from 'ava';
import { mkdtemp } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { generateShapesWorld } from '../../sources/shapes-world.ts';
import { objectKey, type GroundTruth } from '../../schemas/shapes-world.ts';
import { heldoutImages, isCorrect, letterOf, loadHeldoutQuestions, questionsForImage, yesNoOf } from '../../transforms/shapes-heldout-questions.ts';
import { evaluateShapesAccuracy, heldoutLossBatches } from '../../transforms/shapes-heldout-eval.ts';
import { DIRECT_INSTRUCTION, REASONING_INSTRUCTION, aokvqaMultichoice } from '../../transforms/aokvqa-multichoice.ts';
import { colorQuestionRationales } from '../../sources/shapes-world-text.ts';
import { runStage } from '../sources/harness.ts';
import { DEFAULT_VQA_SUFFIX } from '../../transforms/vqav2-multiround.ts';
import { buildTokenizer, tokenizerConfigFor } from '../../src/model/build-tokenizer.ts';
import { tokenizerFromJson } from '../../src/model/tokenizer.ts';
import { TINY_MODEL_CONFIG, resolveModelConfig } from '../../src/model/config.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { createImageLoader } from '../../src/model/image-input.ts';
import { removeAfterAll } from '../helpers/temp-dir.ts';

tf.env().set('PROD', true);
await tf.setBackend('wasm');

const world = path.join(await mkdtemp(path.join(os.tmpdir(), 'ff-heldout-')), 'world');
await generateShapesWorld({ out: world, seed: 2, images: 20, flickrImages: 0, evalImages: 6, mmhalPerType: 0, preferencePerImage: 0 });

const gt: GroundTruth = {
  image: 'coco/train2017/000000000001.jpg', image_id: 1, dataset: 'coco', split: 'train', width: 64, height: 64, background: 'grey',
  objects: [
    { shape: 'star', color: 'red', size: 'small', box: [2, 2, 14, 14] },
    { shape: 'circle', color: 'blue', size: 'large', box: [30, 30, 58, 58] },
  ],
};

removeAfterAll(path.dirname(world)); // after the setup above: no top-level await may follow a hook

test('questions: balanced yes/no in both SFT phrasings, multiple choice in the A-OKVQA direct format', (t) => {
  const qs = questionsForImage(gt, { seed: 1 });
  const yn = qs.filter((q) => q.kind === 'yesno');
  t.is(yn.length, 4);
  t.is(yn.filter((q) => q.answer === 'Yes').length, 2);
  for (const q of yn) {
    const kind = /^Is there an? (\w+ \w+)/.exec(q.question)![1]!;
    const present = gt.objects.some((o) => objectKey(o) === kind);
    t.is(q.answer, present ? 'Yes' : 'No', q.question);
    // contrast: a "no" whose colour is on another shape needs the shape to answer
    const colourThere = gt.objects.some((o) => o.color === kind.split(' ')[0]);
    t.is(q.contrast, present ? 'present' : colourThere ? 'colour-elsewhere' : 'colour-absent', q.question);
    if (q.form === 'vqa') t.true(q.question.endsWith(`?\n${DEFAULT_VQA_SUFFIX}`), q.question);
    else t.true(q.question.endsWith(' in the image?'), q.question);
    if (q.form === 'vqa') t.is(q.reference, q.answer);
    else {
      // evidence first: the shapes of the asked colour, then the verdict
      const color = kind.split(' ')[0]!;
      t.regex(q.reference, new RegExp(`^The ${color} shapes in the image: .*, so ${q.answer.toLowerCase()}, there is ${q.answer === 'Yes' ? 'an? ' : 'no '}`), q.reference);
      const evidence = q.reference.slice(0, q.reference.indexOf(', so '));
      for (const o of gt.objects) t.is(evidence.includes(` ${o.shape}`) || o.color !== color, true, `${o.color} ${o.shape} in ${q.reference}`);
      t.is(yesNoOf(q.reference) as string | null, q.answer);
    }
  }
  const mc = qs.filter((q) => q.kind === 'multichoice');
  t.deepEqual(mc.map((q) => q.form), ['color', 'shape']);
  for (const q of mc) {
    const lines = q.question.split('\n');
    t.is(lines.length, 6);
    t.is(lines[5], DIRECT_INSTRUCTION);
    t.deepEqual(lines.slice(1, 5).map((l) => l.slice(0, 3)), ['A. ', 'B. ', 'C. ', 'D. ']);
    const correct = lines.find((l) => l.startsWith(`${q.answer}. `))!.slice(3);
    // colour question: the colour of the named shape; shape question: the shape of the named colour
    const named = /^(?:What color is the (\w+)|Which shape in the picture is (\w+))/.exec(lines[0]!)!;
    const obj = gt.objects.find((o) => (named[1] ? o.shape === named[1] : o.color === named[2]))!;
    t.is(correct, q.form === 'color' ? obj.color : obj.shape, q.question);
    const inImage = lines.slice(1, 5).map((l) => l.slice(3)).filter((v) => gt.objects.some((o) => (q.form === 'color' ? o.color : o.shape) === v));
    t.is(q.contrast, inImage.length > 1 ? 'several-options-in-image' : 'one-option-in-image', q.question);
  }
  t.regex(mc[0]!.question, /^What color is the (star at the top left|circle at the bottom right)\?/);
  t.regex(mc[1]!.question, /^Which shape in the picture is (red|blue)\?/);
  t.deepEqual(questionsForImage(gt, { seed: 1 }), qs, 'deterministic');
});

test('questions: the reasoning form asks with the reasoning instruction; the reference states the evidence, then the letter', (t) => {
  const direct = questionsForImage(gt, { seed: 1 });
  const qs = questionsForImage(gt, { seed: 1, multichoice: 'reasoning' });
  t.deepEqual(qs.filter((q) => q.kind === 'yesno'), direct.filter((q) => q.kind === 'yesno'), 'yes/no questions do not change');
  const mc = qs.filter((q) => q.kind === 'multichoice');
  const dmc = direct.filter((q) => q.kind === 'multichoice');
  t.is(mc.length, 2);
  mc.forEach((q, i) => {
    const lines = q.question.split('\n');
    t.is(lines[5], REASONING_INSTRUCTION);
    t.deepEqual(lines.slice(0, 5), dmc[i]!.question.split('\n').slice(0, 5), 'same question and options');
    t.is(q.answer, dmc[i]!.answer);
    t.true(q.reference.endsWith(` So the correct option is ${q.answer}.`), q.reference);
    t.is(letterOf(q.reference), q.answer);
  });
  // the colour question's evidence is the world's first rationale, word for word
  const star = mc[0]!.question.startsWith('What color is the star') ? 'star' : 'circle';
  const o = star === 'star' ? { color: 'red', shape: 'star', size: 'small', position: 'top left' } : { color: 'blue', shape: 'circle', size: 'large', position: 'bottom right' };
  t.true(mc[0]!.reference.startsWith(colorQuestionRationales(o as Parameters<typeof colorQuestionRationales>[0])[0]!), mc[0]!.reference);
  t.regex(mc[0]!.reference, star === 'star' ? /^The star at the top left is red\. / : /^The circle at the bottom right is blue\. /);
  t.regex(mc[1]!.reference, /^The only (red object is a star|blue object is a circle)\. /);
  t.throws(() => questionsForImage(gt, { seed: 1, multichoice: 'letters' as 'direct' }), { message: /multichoice/ });
});

test('the reasoning reference is what the aokvqa-multichoice converter writes for the same question', async (t) => {
  const q = questionsForImage(gt, { seed: 1, multichoice: 'reasoning' }).find((x) => x.form === 'color')!;
  const lines = q.question.split('\n');
  const choices = lines.slice(1, 5).map((l) => l.slice(3));
  const o = choices.includes('red') && lines[0]!.includes('star') ? { color: 'red', shape: 'star', size: 'small', position: 'top left' } : { color: 'blue', shape: 'circle', size: 'large', position: 'bottom right' };
  const item = {
    split: 'val', image_id: 1, question_id: 'q1', question: lines[0]!, choices, correct_choice_idx: 'ABCD'.indexOf(q.answer),
    direct_answers: [], difficult_direct_answer: false, rationales: colorQuestionRationales(o as Parameters<typeof colorQuestionRationales>[0]),
  };
  const { items: out, rejected } = await runStage(aokvqaMultichoice({ mode: 'reasoning' }), [item]);
  t.is(rejected.length, 0);
  t.is(out.length, 1);
  t.is(out[0]!.conversations[0]!.value, `<image>\n${q.question}`);
  t.is(out[0]!.conversations[1]!.value, q.reference);
});

test('held-out images: the world\'s heldout and eval images, never SFT ones', async (t) => {
  const imgs = await heldoutImages(world);
  t.is(imgs.filter((g) => g.split === 'eval').length, 6);
  t.is(imgs.filter((g) => g.split === 'train').length, 5); // 25% of 20 held out
  const qs = await loadHeldoutQuestions(world, { seed: 1, maxImages: 3 });
  t.is(new Set(qs.map((q) => q.image)).size, 3);
  const err = await t.throwsAsync(loadHeldoutQuestions(path.join(world, 'nope'), { seed: 1 }));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.true(err!.message.includes(path.join(world, 'nope', 'world.json')));
});

test('scoring: yes/no by the first word or the verdict after "so", multiple choice by the stated option or the first letter', (t) => {
  t.is(yesNoOf('Yes, there is a red circle.'), 'Yes');
  t.is(yesNoOf('The image shows a blue square, so no, there is no red circle in the image.'), 'No');
  t.is(yesNoOf('The image shows two red circles, so yes, there is a small red circle at the top.'), 'Yes');
  t.is(yesNoOf('The image shows a blue square and'), null, 'cut off before the verdict');
  t.is(yesNoOf(' no'), 'No');
  t.is(yesNoOf('There is no red circle.'), null);
  t.is(letterOf('B'), 'B');
  t.is(letterOf('(C) blue'), 'C');
  t.is(letterOf('Blue'), null);
  t.is(letterOf('The star at the top left is red. So the correct option is D.'), 'D', 'a reasoning answer: the stated option');
  t.is(letterOf('A star is red. So the correct option is (B).'), 'B', 'the stated option wins over the first letter');
  t.is(letterOf('The star at the top left is red. So the correct'), null, 'cut off before the letter');
  t.true(isCorrect({ kind: 'multichoice', answer: 'C' }, 'The only red object is a star. So the correct option is C.'));
  t.true(isCorrect({ kind: 'yesno', answer: 'No' }, 'No.'));
  t.false(isCorrect({ kind: 'multichoice', answer: 'A' }, 'B'));
});

test('evaluator: one scored answer per question with an untrained tiny model; held-out loss batches', async (t) => {
  const qs = await loadHeldoutQuestions(world, { seed: 1, maxImages: 3 });
  const tok = tokenizerFromJson(buildTokenizer(['USER: ASSISTANT: Yes No A B C D', ...qs.map((q) => `${q.question} ${q.reference}`)], { vocabSize: 160 }), tokenizerConfigFor());
  const config = resolveModelConfig({ language: { vocabSize: tok.vocabSize, contextLength: 192 }, heads: ['lm'] }, TINY_MODEL_CONFIG);
  const model = createModel(config, { seed: 1 });
  const images = createImageLoader({ size: config.vision.imageSize, root: path.join(world, 'images') });
  try {
    const r = await evaluateShapesAccuracy({ model, tokenizer: tok, images, questions: qs, maxNewTokens: 2, systemPrompt: 'A chat.' });
    t.is(r.answers.length, qs.length);
    t.deepEqual(r.answers.map((a) => a.id), qs.map((q) => q.id));
    t.is(r.yesno.total + r.multichoice.total, qs.length);
    t.true(r.yesno_accuracy >= 0 && r.yesno_accuracy <= 1);
    for (const a of r.answers) t.is(a.correct, isCorrect(a, a.reply));
    // every answer is counted under its question's contrast, with the right tally
    t.deepEqual(r.answers.map((a) => a.contrast), qs.map((q) => q.contrast));
    for (const [c, acc] of Object.entries(r.by_contrast)) {
      const sel = r.answers.filter((a) => a.contrast === c);
      t.deepEqual([acc.total, acc.correct], [sel.length, sel.filter((a) => a.correct).length], c);
    }
    t.is(Object.values(r.by_contrast).reduce((n, a) => n + a.total, 0), qs.length);
    const batches = await heldoutLossBatches({ model, tokenizer: tok, images, questions: qs, batchSize: 8, systemPrompt: 'A chat.' });
    t.is(batches.reduce((n, b) => n + b.batch, 0), qs.length);
  } finally {
    model.dispose();
  }
});
