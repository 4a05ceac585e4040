import * as tf from '@tensorflow/tfjs';
import { selectBackend } from './src/model/backend.ts';
import { DEFAULT_MODEL_CONFIG, resolveModelConfig } from './src/model/config.ts';
import { createModel } from './src/model/multimodal-model.ts';
import { createAdamW } from './src/model/adamw.ts';
import { trainStep } from './src/model/train-step.ts';
import { Rng } from './src/stream/random.ts';
import { syntheticImageBatch } from './bench/synthetic-batch.ts';
await selectBackend('wasm');
const cfg = resolveModelConfig({ language: { vocabSize: 512 } }, DEFAULT_MODEL_CONFIG);
const model = createModel(cfg, { seed: 1 });
const batch = syntheticImageBatch(cfg, new Rng(1), 32, 128, 10);
const opt = createAdamW(model.parameters(), { weightDecay: 0.01 });
for (let i = 0; i < 4; i++) await trainStep(model, opt, batch, { lr: 1e-4, clipNorm: 1 });
const t0 = performance.now();
const info = await tf.profile(async () => { await trainStep(model, opt, batch, { lr: 1e-4, clipNorm: 1 }); });
console.log('profiled step ms', (performance.now() - t0).toFixed(0));
const agg = new Map<string, { ms: number; n: number }>();
const NESTED = new Set(['forward', 'fusedMatMul__op', 'logSoftmax__op']);
let total = 0;
for (const k of info.kernels) {
  const t = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
  if (!NESTED.has(k.name)) total += t;
  const a = agg.get(k.name) ?? { ms: 0, n: 0 }; a.ms += t; a.n++; agg.set(k.name, a);
}
console.log('kernel total ms (nested wrappers excluded)', total.toFixed(0));
for (const [n, a] of [...agg].sort((x, y) => y[1].ms - x[1].ms).slice(0, 22)) console.log(n.padEnd(28), a.ms.toFixed(1).padStart(8), a.n, NESTED.has(n) ? '(nested)' : `${(100 * a.ms / total).toFixed(1)}%`);
if (process.argv.includes('--tr')) for (const k of info.kernels) if (['Transpose', 'Identity', 'Multiply', 'Concat', 'Add'].includes(k.name) && (k.kernelTimeMs as number) > 1) console.log(k.name, JSON.stringify(k.inputShapes), (k.kernelTimeMs as number).toFixed(2));
