import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Rng } from '../../src/stream/random.ts';
import { TINY_MODEL_CONFIG, imageTokenCount } from '../../src/model/config.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { createTagHead } from '../../src/model/vision-pretrain.ts';
import { alignProjector, solveSymmetric } from '../../src/model/projector-alignment.ts';
import { encodeImages, patchify } from '../../src/model/vision-encoder.ts';
import { linear } from '../../src/model/ops.ts';

await tf.setBackend('wasm');

test('solveSymmetric solves a hand-made 2 x 2 system for two right-hand sides', (t) => {
  // [[4, 2], [2, 3]] w = b; columns b1 = [10, 8] -> w1 = [1.75, 1.5], b2 = [2, 3] -> w2 = [0, 1]
  const w = solveSymmetric(Float64Array.of(4, 2, 2, 3), Float64Array.of(10, 2, 8, 3), 2, 2);
  const expected = [1.75, 0, 1.5, 1];
  expected.forEach((v, i) => t.true(Math.abs(w[i]! - v) < 1e-12, `w[${i}] = ${w[i]}, expected ${v}`));
  t.throws(() => solveSymmetric(Float64Array.of(1, 2, 2, 1), Float64Array.of(1, 1), 2, 1), { message: /positive definite/ });
});

test('alignProjector fits the least-squares projector to the tag words\' embeddings and reports its R^2 truthfully', async (t) => {
  const model = createModel(TINY_MODEL_CONFIG, { seed: 5 });
  const cfg = model.config;
  const head = createTagHead(model, 3, 2);
  const count = 24;
  const rng = new Rng(9);
  const pixels = Float32Array.from({ length: count * cfg.vision.imageSize ** 2 * 3 }, () => rng.normal());
  const tagTokens = [[3], [], [5, 6]];
  const before = model.params.get('projector.weight').dataSync().slice();
  const fit = await alignProjector(model, head, { pixels, count, tagTokens, ridge: 1e-9 });
  t.is(fit.patches, count * imageTokenCount(cfg));
  t.is(fit.tags_used, 2);
  t.notDeepEqual(Array.from(model.params.get('projector.weight').dataSync()), Array.from(before));

  // recompute targets and fitted tokens independently
  const n = imageTokenCount(cfg);
  const p = cfg.vision.patchSize;
  const { x, y, v } = tf.tidy(() => {
    const patches = tf.tensor2d(patchify(pixels, count, cfg.vision.imageSize, p), [count * n, p * p * 3]);
    const feats = encodeImages(model.params, cfg, patches, count);
    const probs = tf.sigmoid(linear(feats, head.store.get('tags.weight') as tf.Tensor2D, head.store.get('tags.bias') as tf.Tensor1D)).arraySync() as number[][];
    const emb = model.params.get('lm.embed.weight').arraySync() as number[][];
    const targets = probs.map((pr) => emb[0]!.map((_, j) => pr[0]! * emb[3]![j]! + pr[2]! * (emb[5]![j]! + emb[6]![j]!)));
    const fitted = linear(feats, model.params.get('projector.weight') as tf.Tensor2D, model.params.get('projector.bias') as tf.Tensor1D);
    return { x: feats.arraySync() as number[][], y: targets, v: fitted.arraySync() as number[][] };
  });
  // least squares: the residual is orthogonal to every feature and to the constant
  const width = y[0]!.length;
  for (let f = 0; f <= x[0]!.length; f++) {
    for (let j = 0; j < width; j++) {
      let s = 0, scale = 0;
      for (let r = 0; r < y.length; r++) {
        const xf = f < x[0]!.length ? x[r]![f]! : 1;
        s += xf * (v[r]![j]! - y[r]![j]!);
        scale += Math.abs(xf * y[r]![j]!);
      }
      t.true(Math.abs(s) <= 1e-3 * scale + 1e-4, `feature ${f}, output ${j}: residual correlation ${s}`);
    }
  }
  let sse = 0, sst = 0;
  for (let j = 0; j < width; j++) {
    const mean = y.reduce((a, row) => a + row[j]!, 0) / y.length;
    for (let r = 0; r < y.length; r++) { sse += (v[r]![j]! - y[r]![j]!) ** 2; sst += (y[r]![j]! - mean) ** 2; }
  }
  t.true(Math.abs(fit.r2 - (1 - sse / sst)) < 1e-3, `reported R^2 ${fit.r2}, recomputed ${1 - sse / sst}`);
  const norm = v.reduce((a, row) => a + Math.hypot(...row), 0) / v.length;
  t.true(Math.abs(fit.visual_norm - norm) < 1e-3 * norm);
  head.dispose();
  model.dispose();
});

test('alignProjector refuses tags that name no tokens or ids outside the vocabulary', async (t) => {
  const model = createModel(TINY_MODEL_CONFIG, { seed: 5 });
  const head = createTagHead(model, 2, 2);
  const pixels = new Float32Array(TINY_MODEL_CONFIG.vision.imageSize ** 2 * 3);
  await t.throwsAsync(() => alignProjector(model, head, { pixels, count: 1, tagTokens: [[], []] }), { message: /no tag/ });
  await t.throwsAsync(() => alignProjector(model, head, { pixels, count: 1, tagTokens: [[1], [999]] }), { message: /outside the vocabulary/ });
  await t.throwsAsync(() => alignProjector(model, head, { pixels, count: 1, tagTokens: [[1]] }), { message: /2/ });
  head.dispose();
  model.dispose();
});
