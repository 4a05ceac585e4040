/**
 * The webgpu backend cannot read a tensor synchronously under Node (tfjs's WebGPU readSync draws
 * through a browser's OffscreenCanvas; measured on an H200: training died at the first loss read).
 * Here the GPU code paths run on a backend that has the cpu kernels but another name (so no
 * wasm/cpu shortcut is taken) while Tensor.dataSync/arraySync throw, and a scan of the sources
 * keeps synchronous reads in the CPU-only files.
 */
import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/stream/random.ts';
import { TINY_MODEL_CONFIG, imageTokenCount, resolveModelConfig } from '../../src/model/config.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { createAdamW } from '../../src/model/adamw.ts';
import { applyGradients, computeGradients, globalNorm, trainStep, type TrainBatch } from '../../src/model/train-step.ts';
import { generate } from '../../src/model/generate.ts';
import { responseBatch, responseLogprobs, responseValues } from '../../src/rl/response-batch.ts';
import { saveCheckpoint, loadModel } from '../../src/model/checkpoint.ts';
import { buildTokenizer, tokenizerConfigFor } from '../../src/model/build-tokenizer.ts';
import { tokenizerFromJson } from '../../src/model/tokenizer.ts';
import { heldoutLoss } from '../../sinks/sft-trainer.ts';
import { sumMany } from '../../src/model/ops.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const cpuFactory = tf.findBackendFactory('cpu')!;
tf.registerBackend('nosync', () => cpuFactory());
for (const k of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...k, backendName: 'nosync' });
await tf.setBackend('nosync');
const refuse = (): never => { throw new Error('synchronous tensor read on a GPU code path'); };
tf.Tensor.prototype.dataSync = refuse;
tf.Tensor.prototype.arraySync = refuse;

const cfg = resolveModelConfig({ heads: ['lm', 'reward', 'value'], rewardLikelihood: true, rewardPooling: 'response-sum' }, TINY_MODEL_CONFIG);
const n = imageTokenCount(cfg);
const px = cfg.vision.imageSize ** 2 * 3;

function batch(seed: number): TrainBatch {
  const rng = new Rng(seed);
  const B = 3, T = 24;
  const imagePositions = new Int32Array(B * n);
  for (let b = 0; b < B; b++) for (let k = 0; k < n; k++) imagePositions[b * n + k] = 2 + k;
  const lossMask = new Uint8Array(B * T);
  for (let b = 0; b < B; b++) lossMask.fill(1, b * T + 14, b * T + T);
  return {
    batch: B, length: T, imagePositions, lossMask, responseMask: lossMask,
    ids: Int32Array.from({ length: B * T }, () => 5 + rng.int(cfg.language.vocabSize - 5)),
    images: Float32Array.from({ length: B * px }, () => rng.normal()),
  };
}

test.serial('the guard works: dataSync throws, data() reads', async (t) => {
  const x = tf.tensor1d([1, 2]);
  t.throws(() => x.dataSync(), { message: /synchronous/ });
  t.deepEqual([...(await x.data())], [1, 2]);
  x.dispose();
});

test.serial('SFT step, held-out loss, reward and PPO gradients, checkpoint: no synchronous read', async (t) => {
  const model = createModel(cfg, { seed: 1 });
  const opt = createAdamW(model.parameters(), { weightDecay: 0.01 });
  t.is(opt.impl, 'flat', 'a GPU backend keeps the moments on the device, flat');
  const first = await trainStep(model, opt, batch(1), { lr: 1e-2, clipNorm: 1 });
  let last = first;
  for (let s = 0; s < 5; s++) last = await trainStep(model, opt, batch(1), { lr: 1e-2, clipNorm: 1 });
  t.true(last.loss < first.loss, `${first.loss} -> ${last.loss}`);
  t.true(Number.isFinite(await heldoutLoss(model, [batch(2)])));

  const b = batch(3);
  const { loss, grads } = await computeGradients(model, () => tf.mean(model.rewardScores(model.forward(b).hidden, b)) as tf.Scalar);
  t.true(Number.isFinite(loss));
  const { gradNorm, skipped } = await applyGradients(opt, grads, { lr: 1e-3, clipNorm: 1 });
  t.true(gradNorm > 0 && !skipped);

  const rb = responseBatch(model, [0, 1].map((i) => ({ promptIds: [1, 6 + i, 7, 8], imagePositions: [], pixels: null, responseIds: [9, 10, 2] })), 0);
  const lp = await responseLogprobs(model, rb);
  const v = await responseValues(model, rb);
  t.deepEqual(lp.map((r) => r.length), [3, 3]);
  t.deepEqual(v.map((r) => r.length), [3, 3]);
  t.true(lp.flat().every((x) => x <= 0));

  const gen = await generate(model, [{ ids: [1, 5, 6] }, { ids: [1, 7] }], { maxNewTokens: 4, greedy: true, eosId: 2, padId: 0 });
  t.is(gen.length, 2);

  const tok = tokenizerFromJson(buildTokenizer(['is there a red circle', 'yes no'], { vocabSize: 128 }), tokenizerConfigFor());
  const dir = path.join(await tempDir(t, 'ff-nosync-'), 'checkpoint');
  await saveCheckpoint(dir, { model, tokenizer: tok, optimizer: opt, state: { step: 7 } });
  const { checkpoint } = await loadModel(dir);
  t.is(checkpoint.state.step, 7);
  t.truthy(checkpoint.optimizer);
  model.dispose(); opt.dispose();
});

test.serial('sumMany adds more tensors than a GPU shader may bind (16), in groups', async (t) => {
  const xs = Array.from({ length: 69 }, (_, i) => tf.scalar(i + 1));
  const s = sumMany(xs);
  t.is((await s.data())[0], (69 * 70) / 2);
  const norms = new Map(Array.from({ length: 40 }, (_, i) => [`p${i}`, tf.tensor1d([3, 4])] as [string, tf.Tensor]));
  t.true(Math.abs((await globalNorm(norms)) - 5 * Math.sqrt(40)) < 1e-4);
  for (const x of [...xs, s, ...norms.values()]) x.dispose();
});

test('sources: synchronous reads only in the CPU-only files', async (t) => {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  // CPU-only: the wasm/cpu branch of globalNorm, AdamW's JS implementation, the CPU data-parallel
  // workers, and ops.ts's fused attention (taken on wasm only)
  const allowed = new Set(['src/model/train-step.ts', 'src/model/adamw.ts', 'src/model/data-parallel.ts', 'src/model/grad-worker.ts', 'src/model/ops.ts']);
  const offenders: string[] = [];
  for (const dir of ['src', 'sinks', 'transforms', 'pipelines', 'sources']) {
    for (const f of await readdir(path.join(root, dir), { recursive: true })) {
      if (!f.endsWith('.ts')) continue;
      const rel = `${dir}/${f}`;
      const text = await readFile(path.join(root, rel), 'utf8');
      const code = text.split('\n').filter((l) => !/^\s*(\*|\/\/)/.test(l)).join('\n');
      if (/\.(dataSync|arraySync)\(/.test(code) && !allowed.has(rel)) offenders.push(rel);
    }
  }
  t.deepEqual(offenders, []);
});
