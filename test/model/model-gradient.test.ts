import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Rng } from '../../src/stream/random.ts';
import { TINY_MODEL_CONFIG, imageTokenCount, resolveModelConfig } from '../../src/model/config.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { supervisedLoss, type TrainBatch } from '../../src/model/train-step.ts';

tf.env().set('PROD', true);

/** Two rows with an image, one without, one left-padded: every code path of the trunk. */
function batchFor(cfg: ReturnType<typeof resolveModelConfig>): TrainBatch {
  const rng = new Rng(3);
  const B = 3, T = 14, n = imageTokenCount(cfg), px = cfg.vision.imageSize ** 2 * 3;
  const ids = Int32Array.from({ length: B * T }, () => 5 + rng.int(cfg.language.vocabSize - 5));
  const attentionMask = new Uint8Array(B * T).fill(1);
  attentionMask.fill(0, 2 * T, 2 * T + 3); // row 2: three pads on the left
  const imagePositions = new Int32Array(B * n).fill(-1);
  for (let k = 0; k < n; k++) { imagePositions[k] = 1 + k; imagePositions[n + k] = 2 + k; }
  const images = Float32Array.from({ length: B * px }, () => rng.normal());
  const lossMask = new Uint8Array(B * T);
  for (let b = 0; b < B; b++) lossMask.fill(1, b * T + 8, b * T + T);
  return { batch: B, length: T, ids, attentionMask, images, imagePositions, lossMask };
}

const CASES = [['cpu', 'learned', false], ['wasm', 'learned', false], ['wasm', 'rotary', false], ['wasm', 'rotary', true]] as const;
for (const [backend, positions, likelihood] of CASES) test.serial(`finite differences match autodiff on every parameter group (tiny config, all heads, ${backend}, ${positions} positions${likelihood ? ', reward head reading token likelihoods and caption matches' : ''})`, async (t) => {
  // wasm runs its own kernels (depthwise-convolution attention, fused projections): checked end to end too
  await tf.setBackend(backend);
  // larger init so gradients are well above float32 noise; gelu keeps the loss smooth
  const cfg = resolveModelConfig({ initStd: 0.3, language: { positions }, ...(likelihood ? { rewardLikelihood: true, rewardFactMatch: true, rewardPooling: 'response-sum' as const } : {}) }, TINY_MODEL_CONFIG);
  const model = createModel(cfg, { seed: 11 });
  t.is(model.params.has('lm.pos_embed.weight'), positions === 'learned');
  // zero value head would hide its upstream gradient: give it weights
  model.params.get('head.value.weight').assign(tf.randomNormal([cfg.language.width, 1], 0, 0.3, 'float32', 5));
  if (likelihood) model.params.get('head.reward.likelihood.weight').assign(tf.randomNormal([cfg.language.width, 1], 0, 0.3, 'float32', 6));
  if (likelihood) model.params.get('head.reward.fact.weight').assign(tf.randomNormal([cfg.language.width, 1], 0, 0.3, 'float32', 7));
  const batch = { ...batchFor(cfg), responseMask: null as Uint8Array | null, factMatch: null as Uint8Array | null };
  batch.responseMask = Uint8Array.from(batch.lossMask);
  batch.factMatch = Uint8Array.from(batch.lossMask, (x, i) => (x && i % 3 !== 0 ? 1 : 0));
  const r = tf.tensor2d(Float32Array.from({ length: batch.batch * batch.length }, (_, i) => Math.sin(i)), [batch.batch, batch.length]);
  const lossFn = () => {
    const lm = supervisedLoss(model, batch).loss;
    const { hidden } = model.forward(batch);
    const reward = tf.sum(tf.square(model.rewardScores(hidden, batch)));
    const values = tf.mean(tf.mul(model.values(hidden, batch), r));
    return tf.add(tf.add(lm, reward), values) as tf.Scalar;
  };
  const params = model.parameters();
  const { grads } = tf.variableGrads(lossFn, params.map((p) => p.variable));
  const groups = new Map<string, typeof params[number][]>();
  for (const p of params) groups.set(p.group, [...(groups.get(p.group) ?? []), p]);
  t.true(groups.size >= 10, `groups: ${[...groups.keys()]}`);
  const eps = 1e-2;
  const failures: string[] = [];
  let checked = 0;
  for (const [group, ps] of groups) {
    // per group: the 3 coordinates with the largest analytic gradient (away from float noise)
    const cands: { p: typeof ps[number]; i: number; g: number }[] = [];
    for (const p of ps) {
      const g = grads[p.variable.name]!.dataSync();
      for (let i = 0; i < g.length; i++) cands.push({ p, i, g: g[i]! });
    }
    cands.sort((a, b) => Math.abs(b.g) - Math.abs(a.g));
    t.true(Math.abs(cands[0]!.g) > 1e-4, `group ${group} has no gradient`);
    for (const { p, i, g } of cands.slice(0, 2)) {
      const base = p.variable.dataSync().slice() as Float32Array;
      const at = (delta: number) => {
        const v = base.slice(); v[i] = v[i]! + delta;
        p.variable.assign(tf.tensor(v, p.shape as number[]));
        return tf.tidy(() => lossFn().dataSync()[0]!);
      };
      const num = (at(eps) - at(-eps)) / (2 * eps);
      p.variable.assign(tf.tensor(base, p.shape as number[]));
      checked++;
      if (Math.abs(num - g) > 2e-3 + 0.03 * Math.abs(g)) failures.push(`${p.name}[${i}]: autodiff ${g}, finite difference ${num}`);
    }
  }
  t.deepEqual(failures, []);
  t.true(checked >= 2 * groups.size);
  model.dispose();
});
