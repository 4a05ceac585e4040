import test from 'ava';
import { mkdtemp, readFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { generateShapesWorld, SHAPES_WORLD_FILES } from '../../sources/shapes-world.ts';
import { cocoCaptionsSource } from '../../sources/coco-captions.ts';
import { readSource } from '../sources/harness.ts';
import { COLORS, type GroundTruth } from '../../schemas/shapes-world.ts';
import { runFlow } from '../../src/stream/flow.ts';
import { batch } from '../../src/stream/batch.ts';
import type { Source, Stage } from '../../src/stream/stage.ts';
import { TINY_MODEL_CONFIG, resolveModelConfig } from '../../src/model/config.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { createImageLoader } from '../../src/model/image-input.ts';
import { captionTagger, shapesWorldTagGroups, shapesWorldTags } from '../../src/model/vision-tags.ts';
import { createTagHead, scoreTagGroups, scoreTags, tagLogits } from '../../src/model/vision-pretrain.ts';
import { encodeImages, patchify } from '../../src/model/vision-encoder.ts';
import { imageTokenCount } from '../../src/model/config.ts';
import { visionPretrainer, VISION_METRICS_FILE, type TaggedImage } from '../../sinks/vision-pretrainer.ts';
import { removeAfterAll } from '../helpers/temp-dir.ts';

tf.env().set('PROD', true);
await tf.setBackend('wasm');

const root = await mkdtemp(path.join(os.tmpdir(), 'ff-vision-'));
const world = path.join(root, 'world');
await generateShapesWorld({ out: world, seed: 4, images: 60, flickrImages: 0, evalImages: 16, mmhalPerType: 0, preferencePerImage: 0 });
const truths: GroundTruth[] = (await readFile(path.join(world, SHAPES_WORLD_FILES.ground_truth), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as GroundTruth);

removeAfterAll(root); // after the setup above: no top-level await may follow a hook

test('caption tags: on the world\'s COCO captions they are exactly the colours, shapes and kinds of the image\'s objects', async (t) => {
  const tagsOf = captionTagger(shapesWorldTags());
  const byId = new Map(truths.filter((g) => g.dataset === 'coco').map((g) => [g.image_id, g]));
  let n = 0;
  for (const item of (await readSource(cocoCaptionsSource({ file: path.join(world, SHAPES_WORLD_FILES.coco_captions) }))).items) {
    const gt = byId.get(item.image_id)!;
    t.deepEqual(Array.from(tagsOf(item.captions)), Array.from(tagsOf(gt.objects.map((o) => `${o.color} ${o.shape}`))), `image ${item.image_id}`);
    n++;
  }
  t.true(n >= 40, `${n} images`);
});

test('caption tags: whole words, plurals, case; bad vocabularies are refused', (t) => {
  const tagsOf = captionTagger(['red', 'circle', 'red circle', 'box']);
  t.deepEqual(Array.from(tagsOf(['Two RED circles and boxes.'])), [1, 1, 1, 1]);
  t.deepEqual(Array.from(tagsOf(['A reddish circular blob.'])), [0, 0, 0, 0]);
  t.deepEqual(Array.from(tagsOf(['A red square', 'a blue circle'])), [1, 1, 0, 0], 'a kind needs both words together');
  t.throws(() => captionTagger([]), { message: /vocabulary/ });
  t.throws(() => captionTagger(['red', ' ']), { message: /vocabulary\[1\]/ });
});

test('scoreTags: recall of present tags, accuracy on absent ones (hand-computed)', (t) => {
  // two images of three tags: [0.9 0.2 | 0.7] with [1 1 0]; [0.4 0.6 0.1] with [0 1 0]
  const s = scoreTags([0.9, 0.2, 0.7, 0.4, 0.6, 0.1], [1, 1, 0, 0, 1, 0], 3);
  t.is(s.present_recall, 2 / 3);
  t.is(s.absent_accuracy, 2 / 3);
  t.is(s.balanced_accuracy, 2 / 3);
  // image 1: pairs (0.9 > 0.7) right, (0.2 > 0.7) wrong -> 1/2; image 2: 0.6 beats 0.4 and 0.1 -> 1
  t.is(s.ranking_accuracy, 0.75);
});

test('scoreTagGroups: scores per group of tag columns (hand-computed), and checks the columns', (t) => {
  // the same two images as above; group a = columns 0 and 2, group b = column 1
  const probs = [0.9, 0.2, 0.7, 0.4, 0.6, 0.1];
  const labels = [1, 1, 0, 0, 1, 0];
  const g = scoreTagGroups(probs, labels, 3, { a: [0, 2], b: [1] });
  // a: present (0.9 yes) -> 1/1; absent 0.7 (wrong), 0.4 and 0.1 (right) -> 2/3
  t.is(g.a!.present_recall, 1);
  t.is(g.a!.absent_accuracy, 2 / 3);
  // b: present 0.2 (missed), 0.6 (found) -> 1/2; no absent tags -> 0
  t.is(g.b!.present_recall, 1 / 2);
  t.is(g.b!.absent_accuracy, 0);
  t.throws(() => scoreTagGroups(probs, labels, 3, { c: [3] }), { message: /groups\.c/ });
  t.throws(() => scoreTagGroups(probs, labels, 3, { d: [] }), { message: /groups\.d/ });
});

test('shapesWorldTagGroups: every tag in exactly one group, colours and shapes single words', (t) => {
  const tags = shapesWorldTags();
  const groups = shapesWorldTagGroups();
  const all = [...groups.color, ...groups.shape, ...groups.kind].sort((a, b) => a - b);
  t.deepEqual(all, tags.map((_, i) => i));
  t.true(groups.color.map((i) => tags[i]!).includes('red'));
  t.true(groups.shape.map((i) => tags[i]!).includes('circle'));
  t.is(groups.kind.length, groups.color.length * groups.shape.length);
});

test.serial('pretrains the vision encoder only: loss falls, held-out colours are told apart, the language model is untouched', async (t) => {
  const config = resolveModelConfig({ initStd: 'fan-in', vision: { imageSize: 32, patchSize: 8, width: 48 }, language: { vocabSize: 40 } }, TINY_MODEL_CONFIG);
  const model = createModel(config, { seed: 2 });
  const lmBefore = model.parameters().filter((p) => !p.name.startsWith('vision.')).map((p) => Array.from(p.variable.dataSync()));
  const visionBefore = model.parameters().filter((p) => p.name.startsWith('vision.')).map((p) => Array.from(p.variable.dataSync()));
  const images = createImageLoader({ size: 32, root: path.join(world, 'images') });
  const tagsOf = captionTagger([...COLORS]);
  const tagged = async (g: GroundTruth): Promise<TaggedImage> => ({ image: g.image, pixels: await images.load(g.image), tags: tagsOf(g.objects.map((o) => o.color)) });
  const train = await Promise.all(truths.filter((g) => g.dataset === 'coco' && g.split === 'train').map(tagged));
  const heldout = await Promise.all(truths.filter((g) => g.split === 'eval').map(tagged));
  const source: Source<TaggedImage> = { name: 'images', async *read() { for (let e = 0; e < 24; e++) yield* train; } };
  const out = path.join(root, 'run');
  const flow = await runFlow({
    source,
    stages: [batch<TaggedImage>(16)] as Stage<never, unknown>[],
    sink: visionPretrainer({ model, tags: COLORS.length, steps: 80, lr: 3e-3, warmup: 4, out, heldout, groups: { all: COLORS.map((_, i) => i), first: [0] }, evalEvery: 40, logEvery: 5 }),
  }, { seed: 1, deadLetterPath: path.join(root, 'rejected.jsonl') });
  const r = flow.result;
  t.is(r.steps, 80);
  t.is(r.images, 80 * 16);
  t.true(r.unused_batches > 0, 'batches after the last step are drained');
  const lines = (await readFile(path.join(out, VISION_METRICS_FILE), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number; heldout?: { balanced_accuracy: number } });
  t.deepEqual(lines.map((l) => l.step), Array.from({ length: 16 }, (_, i) => 5 * (i + 1)));
  t.true(lines.at(-1)!.loss < lines[0]!.loss * 0.9, `loss ${lines[0]!.loss} -> ${lines.at(-1)!.loss}`);
  t.is(lines.filter((l) => l.heldout).length, 2);
  t.log(JSON.stringify(r.heldout));
  t.true(r.heldout!.ranking_accuracy > 0.75, JSON.stringify(r.heldout));
  // the final scores also come per group: a group of every column scores as the whole
  t.deepEqual(Object.keys(r.heldout!.by_group!), ['all', 'first']);
  t.is(r.heldout!.by_group!.all!.present_recall, r.heldout!.present_recall);
  t.is(r.heldout!.by_group!.all!.absent_accuracy, r.heldout!.absent_accuracy);
  const lmAfter = model.parameters().filter((p) => !p.name.startsWith('vision.')).map((p) => Array.from(p.variable.dataSync()));
  t.deepEqual(lmAfter, lmBefore);
  const visionAfter = model.parameters().filter((p) => p.name.startsWith('vision.')).map((p) => Array.from(p.variable.dataSync()));
  t.notDeepEqual(visionAfter, visionBefore);
  model.dispose();
});

test('tag head pooling: max takes each tag\'s best patch, mean scores the mean patch (checked against the features by hand)', (t) => {
  const config = resolveModelConfig({ vision: { imageSize: 16, patchSize: 8, width: 16 }, language: { vocabSize: 40 } }, TINY_MODEL_CONFIG);
  const model = createModel(config, { seed: 3 });
  const pixels = Float32Array.from({ length: 2 * 16 * 16 * 3 }, (_, i) => Math.sin(i * 0.37));
  const n = imageTokenCount(config);
  const feats = tf.tidy(() => encodeImages(model.params, config, tf.tensor2d(patchify(pixels, 2, 16, 8), [2 * n, 8 * 8 * 3]), 2).arraySync() as number[][]);
  for (const pooling of ['max', 'mean'] as const) {
    const head = createTagHead(model, 3, 1, pooling);
    const w = head.store.get('tags.weight').arraySync() as number[][];
    const b = head.store.get('tags.bias').arraySync() as number[];
    const score = (f: number[], k: number) => f.reduce((s, x, i) => s + x * w[i]![k]!, b[k]!);
    const got = tf.tidy(() => tagLogits(model, head, pixels, 2).arraySync());
    for (let img = 0; img < 2; img++) {
      const rows = feats.slice(img * n, (img + 1) * n);
      for (let k = 0; k < 3; k++) {
        const want = pooling === 'max'
          ? Math.max(...rows.map((f) => score(f, k)))
          : score(rows[0]!.map((_, i) => rows.reduce((s, f) => s + f[i]!, 0) / n), k);
        t.true(Math.abs(got[img]![k]! - want) < 1e-4, `${pooling} image ${img} tag ${k}: ${got[img]![k]} vs ${want}`);
      }
    }
    head.dispose();
  }
  model.dispose();
});

test('options are checked', (t) => {
  const model = createModel(resolveModelConfig({ language: { vocabSize: 40 } }, TINY_MODEL_CONFIG));
  t.throws(() => visionPretrainer({ model, tags: 0, steps: 1, lr: 1, out: root }), { message: /tags/ });
  t.throws(() => visionPretrainer({ model, tags: 3, steps: 0, lr: 1, out: root }), { message: /steps/ });
  t.throws(() => visionPretrainer({ model, tags: 3, steps: 1, lr: 0, out: root }), { message: /lr/ });
  model.dispose();
});
