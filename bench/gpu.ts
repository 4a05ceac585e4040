/**
 * GPU bench, a standalone script for the GPU machine (see ../shared/gpu/README.md):
 *
 *   bash ../shared/gpu/prepare.sh bench/gpu.ts        # here: packs .device/
 *   bash .device/boot.sh                              # there, with carry [".device"]
 *
 * Registers tfjs's webgpu backend by hand through selectBackend('webgpu') (Dawn from the npm
 * package `webgpu`), then prints: 4096-square fp32 matmul TFLOP/s, the relative error of a small
 * matmul against a float64 CPU reference, and training tokens/s of a 4-layer width-512 decoder
 * (batch 64 x 256 tokens, AdamW) built from src/model; a table last. Without an adapter it prints
 * "no GPU adapter: ..." and exits 2. H200 reference: 11.7 TFLOP/s; ~160k tokens/s.
 */
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/model/backend.ts';
import { resolveModelConfig } from '../src/model/config.ts';
import { createModel } from '../src/model/multimodal-model.ts';
import { createAdamW } from '../src/model/adamw.ts';
import { trainStep, type TrainBatch } from '../src/model/train-step.ts';
import { trainingFlops } from '../src/model/flops.ts';
import { generate } from '../src/model/generate.ts';
import { Rng } from '../src/stream/random.ts';

const rows: [string, string][] = [];
const say = (line: string) => process.stdout.write(line + '\n');

try {
  const sel = await selectBackend('webgpu');
  say(`backend: ${sel.name} (${sel.detail})`);
} catch (e) {
  say(`no GPU adapter: ${(e as Error).message}`);
  process.exit(2);
}

// 1. 4096-square matmul
{
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
{
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
{
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
  for (let i = 0; i < 2; i++) trainStep(model, opt, batch, { lr: 1e-4, clipNorm: 1 });
  const steps = 5;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) trainStep(model, opt, batch, { lr: 1e-4, clipNorm: 1 }); // reads loss: synchronises
  const ms = (performance.now() - t0) / steps;
  const tps = (B * T) / (ms / 1000);
  const tflops = trainingFlops(cfg, { batch: B, length: T, imageRows: 0, headRows: B * (T - 1) }) / ms / 1e9;
  say(`train step 4x512, ${B}x${T}: ${ms.toFixed(1)} ms, ${Math.round(tps)} tokens/s, ${tflops.toFixed(2)} TFLOP/s`);
  rows.push([`train step 4 layers x 512, ${B}x${T} tokens (AdamW)`, `${Math.round(tps)} tokens/s (${ms.toFixed(1)} ms/step, ${tflops.toFixed(2)} TFLOP/s)`]);

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
}

say('');
say('| case | result |');
say('|---|---|');
for (const [k, v] of rows) say(`| ${k} | ${v} |`);
process.exit(0);
