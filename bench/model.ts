/**
 * Model throughput on the wasm backend (the CPU default): a plain 512-square matmul roofline,
 * training tokens/s of the default config with the achieved FLOP/s as a share of that roofline
 * (goal >= 70%), and generation tokens/s at batch 1 and 32 (KV cache, greedy).
 * Every figure is measured in the same run, so ratios hold on a busy machine too.
 */
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/model/backend.ts';
import { DEFAULT_MODEL_CONFIG, imageTokenCount, resolveModelConfig } from '../src/model/config.ts';
import { createModel } from '../src/model/multimodal-model.ts';
import { createAdamW } from '../src/model/adamw.ts';
import { trainStep, type TrainBatch } from '../src/model/train-step.ts';
import { createDataParallel } from '../src/model/data-parallel.ts';
import { trainingFlops } from '../src/model/flops.ts';
import { generate, type GenerationRequest } from '../src/model/generate.ts';
import { setWasmAttention } from '../src/model/ops.ts';
import { Rng } from '../src/stream/random.ts';
import { syntheticImageBatch } from './synthetic-batch.ts';
import type { BenchFn, BenchRow } from './types.ts';

const SUITE = 'model';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** GFLOP/s of a 512-square float32 matmul (median of `reps`), by wall clock and by process CPU time. */
function roofline(reps: number): { wall: number; cpu: number } {
  const a = tf.randomNormal([512, 512]);
  const b = tf.randomNormal([512, 512]);
  const times: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps + 2; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync(); // (never return a typed array from tf.tidy: it walks every element)
    c.dispose();
    const u = process.cpuUsage(c0);
    if (i >= 2) { times.push(performance.now() - t0); cpu.push((u.user + u.system) / 1000); }
  }
  a.dispose(); b.dispose();
  const flops = 2 * 512 ** 3;
  return { wall: flops / median(times) / 1e6, cpu: flops / median(cpu) / 1e6 };
}

/**
 * V8 first runs wasm through its baseline compiler and swaps in optimised code from a background
 * thread seconds later: until then a matmul is ~50x slower. Wait for the timings to settle.
 */
function warmUp(): void {
  const a = tf.randomNormal([256, 256]);
  let prev = Infinity;
  const until = performance.now() + 20_000;
  while (performance.now() < until) {
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) {
      const c = tf.matMul(a, a);
      c.dataSync();
      c.dispose();
    }
    const dt = performance.now() - t0;
    if (dt > 0.8 * prev && dt < 1.25 * prev) break;
    prev = dt;
  }
  a.dispose();
}

export const bench: BenchFn = async ({ quick }) => {
  const backend = await selectBackend('wasm');
  warmUp();
  const rows: BenchRow[] = [];
  const cfg = resolveModelConfig({ language: { vocabSize: 512 } }, DEFAULT_MODEL_CONFIG);
  const model = createModel(cfg, { seed: 1 });
  const n = imageTokenCount(cfg);
  const px = cfg.vision.imageSize ** 2 * 3;
  const rng = new Rng(1);

  const roof1 = roofline(quick ? 5 : 15);
  rows.push({ suite: SUITE, case: 'wasm matmul 512x512x512 (roofline)', value: roof1.wall, unit: 'GFLOP/s', note: `${backend.detail}; by CPU time ${roof1.cpu.toFixed(1)} GFLOP/s` });

  // training: a shapes-world-like batch, 32 rows x 128 positions, image in every row, 10 answer tokens each
  const B = 32, T = 128, answer = 10;
  const batch = syntheticImageBatch(cfg, rng, B, T, answer);
  const opt = createAdamW(model.parameters(), { weightDecay: 0.01 });
  // the step with attention through depthwise convolutions (FACTFLOW_WASM_ATTENTION=conv; the
  // other kernels stay), interleaved with the default one so both see the same machine
  setWasmAttention('conv');
  await trainStep(model, opt, batch, { lr: 1e-4, clipNorm: 1 });
  setWasmAttention('fused');
  await trainStep(model, opt, batch, { lr: 1e-4, clipNorm: 1 });
  const steps = quick ? 2 : 5;
  const times: number[] = [];
  const convTimes: number[] = [];
  const cpuTimes: number[] = [];
  for (let s = 0; s < steps; s++) {
    setWasmAttention('conv');
    const t1 = performance.now();
    await trainStep(model, opt, batch, { lr: 1e-4, clipNorm: 1 });
    convTimes.push(performance.now() - t1);
    setWasmAttention('fused');
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await trainStep(model, opt, batch, { lr: 1e-4, clipNorm: 1 });
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuTimes.push((c.user + c.system) / 1000);
  }
  const roof2 = roofline(quick ? 5 : 15);
  const roof = (roof1.wall + roof2.wall) / 2;
  const roofCpu = (roof1.cpu + roof2.cpu) / 2;
  const ms = median(times);
  const cpuMs = median(cpuTimes);
  const flops = trainingFlops(cfg, { batch: B, length: T, imageRows: B, headRows: B * (answer - 1) });
  const achieved = flops / ms / 1e6;
  // on a shared machine wall clock mixes in other processes; CPU time gives the ratio of our own work
  const cpuRatio = flops / cpuMs / 1e6 / roofCpu;
  rows.push({
    suite: SUITE, case: `train step, default config (${(model.parameterCount() / 1e6).toFixed(2)}M params), ${B}x${T} tokens`,
    value: (B * T) / (ms / 1000), unit: 'tokens/s', ratio: achieved / roof, baseline: 'matmul roofline (FLOP/s)',
    note: `${ms.toFixed(0)} ms/step, ${achieved.toFixed(1)} GFLOP/s of ${roof.toFixed(1)}; by CPU time ${cpuMs.toFixed(0)} ms/step, ${(100 * cpuRatio).toFixed(0)}% of roofline; goal >= 70%: ${achieved / roof >= 0.7 ? 'met' : 'not met'}`,
  });

  const convMs = median(convTimes);
  rows.push({
    suite: SUITE, case: `train step, attention through depthwise convolutions (FACTFLOW_WASM_ATTENTION=conv), ${B}x${T} tokens`,
    value: (B * T) / (convMs / 1000), unit: 'tokens/s', ratio: convMs / ms, baseline: 'speed-up of the fused attention kernel\'s step over this one',
    note: `${convMs.toFixed(0)} ms/step, ${(flops / convMs / 1e6).toFixed(1)} GFLOP/s, ${(100 * flops / convMs / 1e6 / roof).toFixed(0)}% of roofline`,
  });

  // data parallel (sft-train's default threads=2): the same rows as two halves, one per thread
  const half = (k: number): TrainBatch => {
    const rowsOf = <T extends Int32Array | Uint8Array | Float32Array>(a: T, per: number): T => a.slice(k * (B / 2) * per, (k + 1) * (B / 2) * per) as T;
    return { ...batch, batch: B / 2, ids: rowsOf(batch.ids, T), lossMask: rowsOf(batch.lossMask as Uint8Array, T), imagePositions: rowsOf(batch.imagePositions!, n), images: rowsOf(batch.images!, px) };
  };
  const parallel = await createDataParallel(model, { threads: 2, backend: 'wasm' });
  try {
    const parts = [half(0), half(1)];
    await parallel.step(parts, opt, { lr: 1e-4, clipNorm: 1 });
    const dpTimes: number[] = [];
    for (let s = 0; s < steps; s++) {
      const t0 = performance.now();
      await parallel.step(parts, opt, { lr: 1e-4, clipNorm: 1 });
      dpTimes.push(performance.now() - t0);
    }
    const dpMs = median(dpTimes);
    rows.push({
      suite: SUITE, case: `train step, 2 threads (data parallel, sft-train's default), ${B}x${T} tokens`,
      value: (B * T) / (dpMs / 1000), unit: 'tokens/s', ratio: ms / dpMs, baseline: 'the one-thread step (speed-up)',
      note: `${dpMs.toFixed(0)} ms/step (measured on the 2-core dev machine: 1.65x)`,
    });
  } finally {
    await parallel.close();
  }

  // generation: prompts of ~80 tokens with an image, greedy, KV cache
  const request = (): GenerationRequest => {
    const ids = [1, ...Array.from({ length: 79 }, () => 5 + rng.int(cfg.language.vocabSize - 5))];
    const pos = Array.from({ length: n }, (_, k) => 30 + k);
    return { ids, image: Float32Array.from({ length: px }, () => rng.normal()), imagePositions: pos };
  };
  const newTokens = quick ? 16 : 32;
  for (const size of [1, 32]) {
    const reqs = Array.from({ length: size }, request);
    await generate(model, reqs, { maxNewTokens: 2, greedy: true, eosId: -1 });
    const t0 = performance.now();
    const out = await generate(model, reqs, { maxNewTokens: newTokens, greedy: true, eosId: -1 });
    const s = (performance.now() - t0) / 1000;
    const made = out.reduce((a, r) => a + r.tokens.length, 0);
    rows.push({ suite: SUITE, case: `generate batch ${size}, 80-token prompt + ${newTokens} new (KV cache)`, value: made / s, unit: 'tokens/s', note: `${(s * 1000).toFixed(0)} ms incl. prefill` });
  }
  opt.dispose();
  model.dispose();
  return rows;
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const row of await bench({ quick: process.argv.includes('--quick') })) console.log(JSON.stringify(row));
}
