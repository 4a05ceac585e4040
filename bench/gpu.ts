/**
 * GPU bench, a standalone script for the GPU machine (see ../shared/gpu/README.md):
 *
 *   bash ../shared/gpu/prepare.sh bench/gpu.ts        # here: packs .device/
 *   bash .device/boot.sh                              # there, with carry [".device"]
 *
 * Registers tfjs's webgpu backend by hand through selectBackend('webgpu') (Dawn from the npm
 * package `webgpu`), then prints: 4096-square fp32 matmul TFLOP/s, the relative error of a small
 * matmul against a float64 CPU reference, and training tokens/s of a 4-layer width-512 decoder
 * (batch 64 x 256 tokens, AdamW) built from src/model, generation tokens/s; then the project's own
 * checks on the GPU: loss and gradients of a small multimodal model (image, rotary positions, LM,
 * likelihood reward and value heads) against tfjs's plain-JS cpu backend, KV-cache greedy decoding
 * against full recomputation, and the default config's training and generation throughput (the
 * figures bench/model.ts takes on wasm), each training case also with AdamW per tensor as the
 * baseline; a table last. Without an adapter it prints "no GPU adapter: ..." and exits 2;
 * `--dry-run wasm` runs the model checks on a CPU backend here first. Lab reference for an H200:
 * 11.7 TFLOP/s, ~160k tokens/s for the 4 x 512 step; this code measured 10-11.9 TFLOP/s and 38.8k
 * tokens/s (README, "On a GPU").
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/model/backend.ts';
import { DEFAULT_MODEL_CONFIG, TINY_MODEL_CONFIG, imageTokenCount, resolveModelConfig, type ModelConfig } from '../src/model/config.ts';
import { createModel } from '../src/model/multimodal-model.ts';
import { createAdamW } from '../src/model/adamw.ts';
import { computeGradients, disposeGradients, globalNorm, supervisedLoss, trainStep, type TrainBatch } from '../src/model/train-step.ts';
import { trainingFlops } from '../src/model/flops.ts';
import { generate, type GenerationRequest } from '../src/model/generate.ts';
import { Rng } from '../src/stream/random.ts';
import { syntheticImageBatch } from './synthetic-batch.ts';

const rows: [string, string][] = [];
const say = (line: string) => process.stdout.write(line + '\n');

// `--dry-run cpu` runs sections 5-6 on another backend here, to try the script before device time is spent
const dry = process.argv.indexOf('--dry-run') > 0 ? (process.argv[process.argv.indexOf('--dry-run') + 1] as 'cpu' | 'wasm') : null;
const main = dry ?? 'webgpu';
try {
  const sel = await selectBackend(main);
  say(`backend: ${sel.name} (${sel.detail})`);
} catch (e) {
  say(`no GPU adapter: ${(e as Error).message}`);
  process.exit(2);
}

// 1. 4096-square matmul
if (!dry) {
  const n = 4096;
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  for (let i = 0; i < 3; i++) { const c = tf.matMul(a, b); await c.data(); c.dispose(); }
  const reps = 10;
  const t0 = performance.now();
  let last: tf.Tensor | null = null;
  for (let i = 0; i < reps; i++) { last?.dispose(); last = tf.matMul(a, b); }
  await last!.data();
  const ms = (performance.now() - t0) / reps;
  last!.dispose(); a.dispose(); b.dispose();
  const tflops = (2 * n ** 3) / ms / 1e9;
  say(`matmul 4096: ${ms.toFixed(2)} ms, ${tflops.toFixed(2)} TFLOP/s`);
  rows.push(['matmul 4096^3 fp32', `${tflops.toFixed(2)} TFLOP/s (${ms.toFixed(2)} ms)`]);
}

// 2. accuracy against float64
if (!dry) {
  const m = 256, k = 384, n = 192;
  const rng = new Rng(3);
  const av = Float32Array.from({ length: m * k }, () => rng.normal());
  const bv = Float32Array.from({ length: k * n }, () => rng.normal());
  const c = await tf.matMul(tf.tensor2d(av, [m, k]), tf.tensor2d(bv, [k, n])).data();
  let num = 0, den = 0;
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += av[i * k + p]! * bv[p * n + j]!;
    num += (c[i * n + j]! - s) ** 2;
    den += s * s;
  }
  const rel = Math.sqrt(num / den);
  say(`matmul rel. error vs float64: ${rel.toExponential(2)}`);
  rows.push(['matmul 256x384x192 rel. error (vs float64)', rel.toExponential(2)]);
}

// 3. training step: 4-layer width-512 decoder, 64 x 256 tokens (text only, loss on every token)
if (!dry) {
  const cfg = resolveModelConfig({
    language: { vocabSize: 1024, width: 512, layers: 4, heads: 8, mlpRatio: 4, contextLength: 256, tieEmbeddings: false },
    heads: ['lm'],
  });
  const model = createModel(cfg, { seed: 1 });
  const opt = createAdamW(model.parameters(), { weightDecay: 0.01 });
  const B = 64, T = 256;
  const rng = new Rng(1);
  const batch: TrainBatch = {
    batch: B, length: T,
    ids: Int32Array.from({ length: B * T }, () => 5 + rng.int(cfg.language.vocabSize - 5)),
    lossMask: new Uint8Array(B * T).fill(1),
  };
  for (let i = 0; i < 2; i++) await trainStep(model, opt, batch, { lr: 1e-4, clipNorm: 1 });
  const steps = 5;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await trainStep(model, opt, batch, { lr: 1e-4, clipNorm: 1 }); // reads loss: synchronises
  const ms = (performance.now() - t0) / steps;
  const tps = (B * T) / (ms / 1000);
  const tflops = trainingFlops(cfg, { batch: B, length: T, imageRows: 0, headRows: B * (T - 1) }) / ms / 1e9;
  say(`train step 4x512, ${B}x${T}: ${ms.toFixed(1)} ms, ${Math.round(tps)} tokens/s, ${tflops.toFixed(2)} TFLOP/s`);
  rows.push([`train step 4 layers x 512, ${B}x${T} tokens (AdamW flat)`, `${Math.round(tps)} tokens/s (${ms.toFixed(1)} ms/step, ${tflops.toFixed(2)} TFLOP/s)`]);
  {
    const perTensor = createAdamW(model.parameters(), { weightDecay: 0.01, impl: 'tensor' });
    await trainStep(model, perTensor, batch, { lr: 1e-4, clipNorm: 1 });
    const p0 = performance.now();
    for (let i = 0; i < steps; i++) await trainStep(model, perTensor, batch, { lr: 1e-4, clipNorm: 1 });
    const pms = (performance.now() - p0) / steps;
    say(`train step 4x512, AdamW per tensor: ${pms.toFixed(1)} ms`);
    rows.push([`train step 4 layers x 512, ${B}x${T} tokens (AdamW per tensor, baseline)`, `${Math.round((B * T) / (pms / 1000))} tokens/s (${pms.toFixed(1)} ms/step); flat is ${(pms / ms).toFixed(2)}x faster`]);
    perTensor.dispose();
  }

  // 4. generation, batch 32, KV cache
  const reqs = Array.from({ length: 32 }, () => ({ ids: [1, ...Array.from({ length: 63 }, () => 5 + rng.int(1000))] }));
  await generate(model, reqs, { maxNewTokens: 2, greedy: true, eosId: -1 });
  const g0 = performance.now();
  const out = await generate(model, reqs, { maxNewTokens: 64, greedy: true, eosId: -1 });
  const gs = (performance.now() - g0) / 1000;
  const made = out.reduce((a, r) => a + r.tokens.length, 0);
  say(`generate batch 32: ${Math.round(made / gs)} tokens/s`);
  rows.push(['generate batch 32, 64-token prompt + 64 new (KV cache)', `${Math.round(made / gs)} tokens/s`]);
  opt.dispose();
  model.dispose();

  // 4b. a larger decoder (8 layers x 1024, ~100M parameters) on the same batch: how the step scales
  const big = resolveModelConfig({
    language: { vocabSize: 1024, width: 1024, layers: 8, heads: 16, mlpRatio: 4, contextLength: 256, tieEmbeddings: false },
    heads: ['lm'],
  });
  const bigModel = createModel(big, { seed: 1 });
  const bigOpt = createAdamW(bigModel.parameters(), { weightDecay: 0.01 });
  for (let i = 0; i < 2; i++) await trainStep(bigModel, bigOpt, batch, { lr: 1e-4, clipNorm: 1 });
  const b0 = performance.now();
  for (let i = 0; i < 3; i++) await trainStep(bigModel, bigOpt, batch, { lr: 1e-4, clipNorm: 1 });
  const bms = (performance.now() - b0) / 3;
  const btf = trainingFlops(big, { batch: B, length: T, imageRows: 0, headRows: B * (T - 1) }) / bms / 1e9;
  say(`train step 8x1024, ${B}x${T}: ${bms.toFixed(1)} ms, ${Math.round((B * T) / (bms / 1000))} tokens/s, ${btf.toFixed(2)} TFLOP/s`);
  rows.push([`train step 8 layers x 1024 (${(bigModel.parameterCount() / 1e6).toFixed(0)}M params), ${B}x${T} tokens (AdamW)`, `${Math.round((B * T) / (bms / 1000))} tokens/s (${bms.toFixed(1)} ms/step, ${btf.toFixed(2)} TFLOP/s)`]);
  bigOpt.dispose();
  bigModel.dispose();
}

// 5. the model's numbers on the GPU against the plain-JS cpu backend (same code paths: only wasm
// takes other kernels), for every parameter group: a forward/backward that disagrees would train
// something else than the tests check.
{
  const cfg: ModelConfig = resolveModelConfig({
    vision: { imageSize: 16, patchSize: 4, width: 32, layers: 2, heads: 2, mlpRatio: 2 },
    language: { vocabSize: 64, width: 32, layers: 2, heads: 4, mlpRatio: 2, contextLength: 64, positions: 'rotary' },
    heads: ['lm', 'reward', 'value'], rewardLikelihood: true, rewardPooling: 'response-sum', initStd: 'fan-in',
  }, TINY_MODEL_CONFIG);
  const n = imageTokenCount(cfg);
  const px = cfg.vision.imageSize ** 2 * 3;
  const rng = new Rng(11);
  const B = 4, T = 40;
  const ids = Int32Array.from({ length: B * T }, () => 5 + rng.int(cfg.language.vocabSize - 5));
  const imagePositions = new Int32Array(B * n);
  for (let b = 0; b < B; b++) for (let k = 0; k < n; k++) imagePositions[b * n + k] = b === 3 ? -1 : 2 + k;
  const attentionMask = new Uint8Array(B * T).fill(1);
  attentionMask.fill(0, 2 * T, 2 * T + 5); // row 2 left-padded
  const lossMask = new Uint8Array(B * T);
  const responseMask = new Uint8Array(B * T);
  for (let b = 0; b < B; b++) { lossMask.fill(1, b * T + T - 8, b * T + T); responseMask.fill(1, b * T + T - 8, b * T + T); }
  const batch: TrainBatch = { batch: B, length: T, ids, attentionMask, imagePositions, lossMask, responseMask, images: Float32Array.from({ length: B * px }, () => rng.normal()) };
  type Run = { loss: number; reward: Float32Array; norm: number; grads: Map<string, Float32Array> };
  const run = async (): Promise<Run> => {
    const model = createModel(cfg, { seed: 7 });
    const lossFn = () => tf.tidy(() => {
      const { loss } = supervisedLoss(model, batch);
      const { hidden } = model.forward(batch);
      const r = model.rewardScores(hidden, batch);
      const v = model.values(hidden, batch);
      return tf.addN([loss, tf.mul(0.1, tf.mean(tf.square(r))), tf.mul(0.1, tf.mean(tf.square(v)))]) as tf.Scalar;
    });
    const { loss, grads } = await computeGradients(model, lossFn);
    const out = new Map<string, Float32Array>();
    for (const [k, g] of grads) out.set(k, await g.data() as Float32Array);
    const norm = await globalNorm(grads); // over 81 tensors: more than one shader may bind
    disposeGradients(grads);
    const rt = tf.tidy(() => model.rewardScores(model.forward(batch).hidden, batch));
    const reward = await rt.data() as Float32Array;
    rt.dispose();
    model.dispose();
    return { loss, reward, norm, grads: out };
  };
  const gpu = await run();
  await tf.setBackend('cpu');
  const cpu = await run();
  await tf.setBackend(main);
  const rel = (a: Float32Array, b: Float32Array) => {
    let num = 0, den = 0;
    for (let i = 0; i < a.length; i++) { num += (a[i]! - b[i]!) ** 2; den += b[i]! ** 2; }
    return Math.sqrt(num / Math.max(den, 1e-30));
  };
  // a gradient that is zero in exact arithmetic (a key bias: softmax ignores a shift shared by all
  // keys) has no relative error; measure each against at least 1e-3 of the whole gradient's norm
  let total = 0;
  for (const g of cpu.grads.values()) for (const x of g) total += x * x;
  const floor = 1e-3 * Math.sqrt(total);
  const relTo = (a: Float32Array, b: Float32Array) => {
    let num = 0, den = 0;
    for (let i = 0; i < a.length; i++) { num += (a[i]! - b[i]!) ** 2; den += b[i]! ** 2; }
    return Math.sqrt(num) / Math.max(Math.sqrt(den), floor);
  };
  let worst = 0, worstName = '';
  const groups = new Map<string, number>();
  for (const [k, g] of cpu.grads) {
    const e = relTo(gpu.grads.get(k)!, g);
    const group = k.split('.').slice(0, 2).join('.');
    groups.set(group, Math.max(groups.get(group) ?? 0, e));
    if (e > worst) { worst = e; worstName = k; }
  }
  for (const [g, e] of groups) say(`  grad rel. error ${g}: ${e.toExponential(2)}`);
  const lossErr = Math.abs(gpu.loss - cpu.loss) / Math.abs(cpu.loss);
  const rewardErr = rel(gpu.reward, cpu.reward);
  const normErr = Math.abs(gpu.norm - cpu.norm) / cpu.norm;
  say(`global gradient norm: ${gpu.norm} vs ${cpu.norm} on cpu (rel. ${normErr.toExponential(2)})`);
  const ok = lossErr < 1e-4 && worst < 1e-3 && rewardErr < 1e-4 && normErr < 1e-4 && gpu.grads.size === cpu.grads.size;
  say(`model vs cpu backend: loss ${lossErr.toExponential(2)}, reward ${rewardErr.toExponential(2)}, worst grad ${worst.toExponential(2)} (${worstName}), ${cpu.grads.size} parameters: ${ok ? 'ok' : 'MISMATCH'}`);
  rows.push(['small multimodal model, webgpu vs cpu backend (loss / reward / worst of ' + cpu.grads.size + ' gradients / global norm, rel.)', `${lossErr.toExponential(1)} / ${rewardErr.toExponential(1)} / ${worst.toExponential(1)} / ${normErr.toExponential(1)}: ${ok ? 'ok' : 'MISMATCH'}`]);

  // KV cache on the GPU: greedy tokens equal full recomputation
  const gm = createModel(resolveModelConfig({ initStd: 0.4 }, cfg), { seed: 5 });
  const reqs: GenerationRequest[] = [0, 1, 2, 3].map((i) => {
    const len = 10 + 3 * i;
    const rid = [1, ...Array.from({ length: len - 1 }, () => 5 + rng.int(cfg.language.vocabSize - 5))];
    if (i % 2 === 1) return { ids: rid };
    const pos = Array.from({ length: n }, (_, k) => 2 + k);
    while (rid.length < 2 + n + 3) rid.push(5 + rng.int(20));
    for (const p of pos) rid[p] = 4;
    return { ids: rid, image: Float32Array.from({ length: px }, () => rng.normal()), imagePositions: pos };
  });
  const opts = { maxNewTokens: 12, greedy: true, eosId: 2, padId: 3 };
  const cached = await generate(gm, reqs, opts);
  const full = await generate(gm, reqs, { ...opts, useCache: false });
  const same = JSON.stringify(cached.map((r) => r.tokens)) === JSON.stringify(full.map((r) => r.tokens));
  let lpErr = 0;
  cached.forEach((r, b) => r.logprobs.forEach((lp, i) => { lpErr = Math.max(lpErr, Math.abs(lp - full[b]!.logprobs[i]!)); }));
  gm.dispose();
  say(`KV cache vs recomputation on ${main}: tokens ${same ? 'identical' : 'DIFFER'}, max log-prob diff ${lpErr.toExponential(2)}`);
  rows.push([`greedy decoding, KV cache vs full recomputation (${main})`, `tokens ${same ? 'identical' : 'DIFFER'}, log-prob diff ${lpErr.toExponential(1)}`]);
}

// 6. the default config (bench/model.ts's batch on wasm) and a 4x larger batch; generation batch 1/32/256
{
  const cfg = resolveModelConfig({ language: { vocabSize: 512 } }, DEFAULT_MODEL_CONFIG);
  const model = createModel(cfg, { seed: 1 });
  const n = imageTokenCount(cfg);
  const px = cfg.vision.imageSize ** 2 * 3;
  const rng = new Rng(1);
  const flatOpt = createAdamW(model.parameters(), { weightDecay: 0.01 });
  const perTensorOpt = createAdamW(model.parameters(), { weightDecay: 0.01, impl: 'tensor' });
  for (const [B, opt, label] of [[32, perTensorOpt, 'AdamW per tensor (baseline)'], [32, flatOpt, 'AdamW flat'], [128, flatOpt, 'AdamW flat']] as const) {
    const T = 128, answer = 10;
    const batch = syntheticImageBatch(cfg, rng, B, T, answer);
    for (let i = 0; i < 2; i++) await trainStep(model, opt, batch, { lr: 1e-4, clipNorm: 1 });
    const steps = 5;
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await trainStep(model, opt, batch, { lr: 1e-4, clipNorm: 1 });
    const ms = (performance.now() - t0) / steps;
    const gf = trainingFlops(cfg, { batch: B, length: T, imageRows: B, headRows: B * (answer - 1) }) / ms / 1e6;
    say(`default config train ${B}x${T}, ${label}: ${ms.toFixed(1)} ms/step, ${Math.round((B * T) / (ms / 1000))} tokens/s, ${gf.toFixed(1)} GFLOP/s`);
    rows.push([`train step, default config (${(model.parameterCount() / 1e6).toFixed(2)}M params), ${B}x${T} tokens, ${label}`, `${Math.round((B * T) / (ms / 1000))} tokens/s (${ms.toFixed(1)} ms/step, ${gf.toFixed(1)} GFLOP/s)`]);
  }
  const request = (): GenerationRequest => {
    const rid = [1, ...Array.from({ length: 79 }, () => 5 + rng.int(cfg.language.vocabSize - 5))];
    return { ids: rid, image: Float32Array.from({ length: px }, () => rng.normal()), imagePositions: Array.from({ length: n }, (_, k) => 30 + k) };
  };
  for (const size of [1, 32, 256]) {
    const reqs = Array.from({ length: size }, request);
    await generate(model, reqs, { maxNewTokens: 2, greedy: true, eosId: -1 });
    const t0 = performance.now();
    const out = await generate(model, reqs, { maxNewTokens: 32, greedy: true, eosId: -1 });
    const sec = (performance.now() - t0) / 1000;
    const made = out.reduce((a, r) => a + r.tokens.length, 0);
    say(`default config generate batch ${size}: ${Math.round(made / sec)} tokens/s`);
    rows.push([`generate, default config, batch ${size}, 80-token prompt + 32 new (KV cache)`, `${Math.round(made / sec)} tokens/s (${(sec * 1000).toFixed(0)} ms)`]);
  }
  flatOpt.dispose();
  perTensorOpt.dispose();
  model.dispose();
}

say('');
say('| case | result |');
say('|---|---|');
for (const [k, v] of rows) say(`| ${k} | ${v} |`);
process.exit(0);
