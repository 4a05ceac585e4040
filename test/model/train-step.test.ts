import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Rng } from '../../src/stream/random.ts';
import { TINY_MODEL_CONFIG, imageTokenCount } from '../../src/model/config.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { createAdamW } from '../../src/model/adamw.ts';
import { cosineSchedule } from '../../src/model/schedule.ts';
import { applyGradients, computeGradients, lossTargets, supervisedLoss, trainStep, type TrainBatch } from '../../src/model/train-step.ts';
import { turnWeights } from '../../src/model/collate.ts';
import { createParameterStore } from '../../src/model/parameters.ts';

tf.env().set('PROD', true);
await tf.setBackend('wasm');

const cfg = TINY_MODEL_CONFIG;
function batch(seed: number): TrainBatch {
  const rng = new Rng(seed);
  const B = 4, T = 16, n = imageTokenCount(cfg);
  const imagePositions = new Int32Array(B * n).fill(-1);
  for (let b = 0; b < 3; b++) for (let k = 0; k < n; k++) imagePositions[b * n + k] = 1 + k;
  const attentionMask = new Uint8Array(B * T).fill(1);
  attentionMask.fill(0, T - 3, T); // row 0 right-padded
  const lossMask = new Uint8Array(B * T);
  for (let b = 0; b < B; b++) lossMask.fill(1, b * T + 9, b * T + (b === 0 ? T - 3 : T));
  return {
    batch: B, length: T, attentionMask, imagePositions, lossMask,
    ids: Int32Array.from({ length: B * T }, () => 5 + rng.int(cfg.language.vocabSize - 5)),
    images: Float32Array.from({ length: B * cfg.vision.imageSize ** 2 * 3 }, () => rng.normal()),
  };
}

test.serial('overfits one batch: loss falls far; memory stays flat across steps', async (t) => {
  const m = createModel(cfg, { seed: 2 });
  const opt = createAdamW(m.parameters(), { weightDecay: 0.01 });
  const b = batch(1);
  const first = await trainStep(m, opt, b, { lr: 1e-2, clipNorm: 1 });
  const tensors = tf.memory().numTensors;
  let last = first;
  for (let s = 0; s < 60; s++) {
    last = await trainStep(m, opt, b, { lr: 1e-2, clipNorm: 1 });
    t.is(tf.memory().numTensors, tensors);
  }
  t.is(first.tokens, 4 + 3 * 7); // row 0: answer tokens 9..12 (then padding); rows 1-3: 9..15
  t.true(last.loss < first.loss * 0.2, `loss ${first.loss} -> ${last.loss}`);
  t.is(opt.step, 61);
  m.dispose(); opt.dispose();
});

test('lossTargets: row t predicts token t+1 where the mask marks t+1', (t) => {
  const r = lossTargets({ batch: 2, length: 4, ids: Int32Array.from([1, 7, 8, 2, 1, 9, 3, 3]), lossMask: Uint8Array.from([0, 0, 1, 1, 0, 1, 0, 0]) });
  t.deepEqual([...r.rows], [1, 2, 4]);
  t.deepEqual([...r.targets], [8, 2, 9]);
});

test('lossTargets: mask values weight the targets, normalised to sum 1', (t) => {
  const r = lossTargets({ batch: 1, length: 5, ids: Int32Array.from([1, 7, 8, 2, 9]), lossMask: Float32Array.from([0, 0.5, 0.5, 0, 1]) });
  t.deepEqual([...r.rows], [0, 1, 3]);
  t.deepEqual([...r.weights], [0.25, 0.25, 0.5]);
});

test.serial('weighted loss: a 0/1 mask gives the plain token mean; turn weights give the mean of per-turn means', (t) => {
  const m = createModel(cfg, { seed: 3 });
  const b = batch(2);
  const { rows, targets } = lossTargets(b);
  // per-token cross-entropy by hand from the logits
  const ce = tf.tidy(() => {
    const logits = m.lmLogits(tf.gather(m.forward(b).hidden, tf.tensor1d(rows, 'int32')) as tf.Tensor2D);
    const logp = tf.logSoftmax(logits).arraySync() as number[][];
    return [...targets].map((y, i) => -logp[i]![y]!);
  });
  const plain = tf.tidy(() => supervisedLoss(m, b).loss.dataSync()[0]!);
  t.true(Math.abs(plain - ce.reduce((a, x) => a + x, 0) / ce.length) < 1e-4, `${plain}`);
  // rows 0..3 of batch(): row 0 has 4 loss tokens (one turn), rows 1-3 have 7 each (one turn each)
  const weighted = { ...b, lossMask: turnWeights(b.lossMask) };
  const perTurn: number[] = [];
  let k = 0;
  for (const n of [4, 7, 7, 7]) { perTurn.push(ce.slice(k, k + n).reduce((a, x) => a + x, 0) / n); k += n; }
  const byTurn = tf.tidy(() => supervisedLoss(m, weighted).loss.dataSync()[0]!);
  t.true(Math.abs(byTurn - perTurn.reduce((a, x) => a + x, 0) / 4) < 1e-4, `${byTurn}`);
  t.true(Math.abs(byTurn - plain) > 1e-6, 'the weighting changes the loss');
  m.dispose();
});

test.serial('clipping: the reported norm is before clipping; the applied update equals lr * clipped Adam step', async (t) => {
  const store = createParameterStore(new Rng(1), 'clip');
  const w = store.add('w', 'w', [2], { kind: 'zeros' });
  const opt = createAdamW(store.list(), { beta1: 0.9, beta2: 0.999, eps: 1e-8 });
  const grads = new Map([['w', tf.tensor1d([3, 4])]]);
  const r = await applyGradients(opt, grads, { lr: 0.1, clipNorm: 1 });
  t.true(Math.abs(r.gradNorm - 5) < 1e-6);
  // first Adam step: mhat/sqrt(vhat) = sign(g) (for any scaling), so w = -lr * sign(g)
  const v = w.dataSync();
  t.true(Math.abs(v[0]! + 0.1) < 1e-5 && Math.abs(v[1]! + 0.1) < 1e-5);
  t.is(grads.size, 0, 'gradients disposed');
  store.dispose(); opt.dispose();
});

test.serial('AdamW: decoupled weight decay only on matrices; two steps match a hand computation', (t) => {
  const store = createParameterStore(new Rng(1), 'adamw');
  const m = store.add('m', 'g', [1, 1], { kind: 'ones' });
  const b = store.add('b', 'g', [1], { kind: 'ones' });
  const opt = createAdamW(store.list(), { beta1: 0.5, beta2: 0.75, eps: 1e-12, weightDecay: 0.1 });
  const lr = 0.01;
  let pm = 1, pb = 1, mm = 0, vm = 0;
  for (const g of [2, -1]) {
    opt.apply(new Map<string, tf.Tensor>([['m', tf.tensor2d([[g]])], ['b', tf.tensor1d([g])]]), lr);
    const s = opt.step;
    mm = 0.5 * mm + 0.5 * g; vm = 0.75 * vm + 0.25 * g * g;
    const upd = (mm / (1 - 0.5 ** s)) / Math.sqrt(vm / (1 - 0.75 ** s));
    pm = pm - lr * (upd + 0.1 * pm);
    pb = pb - lr * upd;
  }
  t.true(Math.abs(m.dataSync()[0]! - pm) < 1e-6, `${m.dataSync()[0]} vs ${pm}`);
  t.true(Math.abs(b.dataSync()[0]! - pb) < 1e-6);
  store.dispose(); opt.dispose();
});

test.serial('a non-finite gradient skips the update', async (t) => {
  const store = createParameterStore(new Rng(1), 'nan');
  const w = store.add('w', 'w', [2], { kind: 'ones' });
  const opt = createAdamW(store.list());
  const r = await applyGradients(opt, new Map([['w', tf.tensor1d([NaN, 1])]]), { lr: 0.1 });
  t.true(r.skipped);
  t.deepEqual([...w.dataSync()], [1, 1]);
  t.is(opt.step, 0);
  store.dispose(); opt.dispose();
});

test.serial('computeGradients serves any loss (reward-style) and covers every parameter', async (t) => {
  const m = createModel(cfg, { seed: 3 });
  const b = batch(2);
  const { loss, grads } = await computeGradients(m, () => {
    const { hidden } = m.forward(b);
    return tf.mean(m.rewardScores(hidden, b)) as tf.Scalar;
  }, m.parameters().filter((p) => !p.name.startsWith('head.lm') && !p.name.startsWith('head.value')));
  t.true(Number.isFinite(loss));
  t.true(grads.has('vision.patch_embed.weight') && grads.has('head.reward.weight') && grads.has('lm.embed.weight'));
  for (const g of grads.values()) g.dispose();
  m.dispose();
});

test('cosine schedule: warmup, peak, half-way, floor', (t) => {
  const lr = cosineSchedule({ peakLr: 1e-3, warmupSteps: 10, totalSteps: 110, minLr: 1e-4 });
  t.true(Math.abs(lr(0) - 1e-4) < 1e-12);
  t.true(Math.abs(lr(9) - 1e-3) < 1e-12);
  t.true(Math.abs(lr(10) - 1e-3) < 1e-12);
  t.true(Math.abs(lr(60) - 5.5e-4) < 1e-12);
  t.is(lr(110), 1e-4);
  t.is(lr(500), 1e-4);
  const e = t.throws(() => cosineSchedule({ peakLr: 1e-3, warmupSteps: -1, totalSteps: 10 }));
  t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e!.message, /schedule\.warmupSteps/);
});

test.serial('AdamW: the JS (CPU backends), per-tensor and flat (GPU backends) implementations agree; state round-trips', async (t) => {
  const run = async (impl: 'js' | 'tensor' | 'flat', skipB = -1) => {
    const store = createParameterStore(new Rng(4), `impl-${impl}`);
    store.add('w', 'w', [3, 2], { kind: 'normal', std: 1 });
    store.add('b', 'w', [2], { kind: 'normal', std: 1 });
    store.add('big', 'w', [257, 256], { kind: 'normal', std: 1 }); // over FLAT_MAX_ELEMENTS: updated on its own under 'flat'
    const opt = createAdamW(store.list(), { weightDecay: 0.05, impl });
    const g = new Rng(8);
    for (let s = 0; s < 3; s++) {
      const grads = new Map<string, tf.Tensor>([['w', tf.randomNormal([3, 2], 0, 1, 'float32', g.int(1000))], ['b', tf.randomNormal([2], 0, 1, 'float32', g.int(1000))], ['big', tf.randomNormal([257, 256], 0, 1, 'float32', g.int(1000))]]);
      if (s === skipB) grads.get('b')!.dispose(), grads.delete('b'); // a parameter without a gradient this step
      await applyGradients(opt, grads, { lr: 0.05, clipNorm: 0.5 });
    }
    const state = await opt.state();
    const out = [...store.get('w').dataSync(), ...store.get('b').dataSync(), ...state.moments.get('v.w')!.data, ...state.moments.get('m.b')!.data, ...state.moments.get('v.b')!.data,
      ...store.get('big').dataSync().slice(0, 300), ...state.moments.get('v.big')!.data.slice(-300)];
    // load(state()) into a fresh optimizer gives back the same moments
    const again = createAdamW(store.list(), { weightDecay: 0.05, impl });
    again.load(state);
    const back = await again.state();
    t.deepEqual([...back.moments.get('m.w')!.data], [...state.moments.get('m.w')!.data]);
    t.deepEqual([...back.moments.get('v.b')!.data], [...state.moments.get('v.b')!.data]);
    t.deepEqual([...back.moments.get('m.big')!.data], [...state.moments.get('m.big')!.data]);
    store.dispose(); opt.dispose(); again.dispose();
    return out;
  };
  const close = (a: number[], b: number[]) => a.forEach((x, i) => t.true(Math.abs(x - b[i]!) < 1e-5 * (1 + Math.abs(x)), `${i}: ${x} vs ${b[i]}`));
  const js = await run('js');
  close(js, await run('tensor'));
  close(js, await run('flat'));
  const jsSkip = await run('js', 1);
  t.notDeepEqual(jsSkip, js);
  close(jsSkip, await run('tensor', 1));
  close(jsSkip, await run('flat', 1));
});
