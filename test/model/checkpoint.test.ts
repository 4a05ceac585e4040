import test from 'ava';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Rng } from '../../src/stream/random.ts';
import { TINY_MODEL_CONFIG, imageTokenCount } from '../../src/model/config.ts';
import { createModel, type MultimodalModel } from '../../src/model/multimodal-model.ts';
import { createAdamW } from '../../src/model/adamw.ts';
import { trainStep, type TrainBatch } from '../../src/model/train-step.ts';
import { buildTokenizer, tokenizerConfigFor } from '../../src/model/build-tokenizer.ts';
import { tokenizerFromJson } from '../../src/model/tokenizer.ts';
import { loadCheckpoint, loadModel, restoreOptimizer, saveCheckpoint } from '../../src/model/checkpoint.ts';
import { tempDir } from '../helpers/temp-dir.ts';

tf.env().set('PROD', true);
await tf.setBackend('wasm');

const tok = tokenizerFromJson(buildTokenizer(['is there a red circle', 'yes no'], { vocabSize: 128 }), tokenizerConfigFor());
const cfg = { ...TINY_MODEL_CONFIG, language: { ...TINY_MODEL_CONFIG.language, vocabSize: tok.vocabSize } };

function batch(seed: number): TrainBatch {
  const rng = new Rng(seed);
  const B = 2, T = 12, n = imageTokenCount(cfg);
  const imagePositions = new Int32Array(B * n);
  for (let b = 0; b < B; b++) for (let k = 0; k < n; k++) imagePositions[b * n + k] = 1 + k;
  return {
    batch: B, length: T,
    ids: Int32Array.from({ length: B * T }, () => 5 + rng.int(cfg.language.vocabSize - 5)),
    images: Float32Array.from({ length: B * cfg.vision.imageSize ** 2 * 3 }, () => rng.normal()),
    imagePositions,
    lossMask: Uint8Array.from({ length: B * T }, (_, i) => (i % T >= 7 ? 1 : 0)),
  };
}

function weightBytes(m: MultimodalModel): Map<string, Buffer> {
  return new Map(m.parameters().map((p) => [p.name, Buffer.from((p.variable.dataSync() as Float32Array).buffer.slice(0))]));
}

test.serial('save -> load gives bit-identical weights, config and tokenizer', async (t) => {
  const dir = path.join(await tempDir(t, 'ff-ck-'), 'checkpoint');
  const m = createModel(cfg, { seed: 3 });
  await saveCheckpoint(dir, { model: m, tokenizer: tok, state: { step: 0, note: 'x' } });
  t.deepEqual((await readdir(dir)).sort(), ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'trainer_state.json']);
  const { model: m2, checkpoint } = await loadModel(dir);
  t.deepEqual(m2.config, m.config);
  t.deepEqual(weightBytes(m2), weightBytes(m));
  t.deepEqual(checkpoint.tokenizer.encode('is there a red circle'), tok.encode('is there a red circle'));
  t.is(checkpoint.state.note, 'x');
  m.dispose(); m2.dispose();
});

test.serial('resume: optimizer state restored, the next steps equal an uninterrupted run', async (t) => {
  const dir = path.join(await tempDir(t, 'ff-ck-'), 'checkpoint');
  const a = createModel(cfg, { seed: 4 });
  const optA = createAdamW(a.parameters(), { weightDecay: 0.1 });
  for (let s = 0; s < 3; s++) trainStep(a, optA, batch(s), { lr: 1e-2, clipNorm: 1 });
  await saveCheckpoint(dir, { model: a, tokenizer: tok, optimizer: optA, state: { step: 3 } });
  const lossesA: number[] = [];
  for (const s of [3, 4]) lossesA.push((await trainStep(a, optA, batch(s), { lr: 1e-2, clipNorm: 1 })).loss);

  const { model: b, checkpoint } = await loadModel(dir);
  const optB = createAdamW(b.parameters(), checkpoint.optimizer!.options);
  restoreOptimizer(optB, checkpoint);
  t.is(optB.step, 3);
  t.is(checkpoint.state.step, 3);
  const lossesB: number[] = [];
  for (const s of [3, 4]) lossesB.push((await trainStep(b, optB, batch(s), { lr: 1e-2, clipNorm: 1 })).loss);
  t.deepEqual(lossesB, lossesA);
  t.deepEqual(weightBytes(b), weightBytes(a));
  a.dispose(); b.dispose(); optA.dispose(); optB.dispose();
});

test.serial('saving over a checkpoint replaces it whole; a swap interrupted after the first rename still loads', async (t) => {
  const parent = await tempDir(t, 'ff-ck-');
  const dir = path.join(parent, 'checkpoint');
  const m = createModel(cfg, { seed: 5 });
  await saveCheckpoint(dir, { model: m, tokenizer: tok, state: { step: 1 } });
  await saveCheckpoint(dir, { model: m, tokenizer: tok, state: { step: 2 } });
  t.deepEqual(await readdir(parent), ['checkpoint']);
  t.is((await loadCheckpoint(dir)).state.step, 2);
  // simulate kill -9 between "dir -> dir.old-*" and "tmp -> dir"
  await rename(dir, `${dir}.old-123-abcd`);
  t.is((await loadCheckpoint(dir)).state.step, 2);
  m.dispose();
});

test.serial('a reward model from an SFT checkpoint: trunk loaded, fresh reward head; value head starts at zero', async (t) => {
  const dir = path.join(await tempDir(t, 'ff-ck-'), 'sft');
  const sft = createModel({ ...cfg, heads: ['lm'] }, { seed: 6 });
  await saveCheckpoint(dir, { model: sft, tokenizer: tok });
  const { model: rm } = await loadModel(dir, { heads: ['reward'] });
  t.false(rm.params.has('head.lm.weight'));
  t.deepEqual(rm.params.get('lm.layers.0.attn.q.weight').dataSync(), sft.params.get('lm.layers.0.attn.q.weight').dataSync());
  rm.addHead('value');
  t.true((rm.params.get('head.value.weight').dataSync() as Float32Array).every((x) => x === 0));
  sft.dispose(); rm.dispose();
});

test.serial('missing checkpoint, wrong shapes, broken config: FF_ERR_CHECKPOINT naming the file', async (t) => {
  const parent = await tempDir(t, 'ff-ck-');
  const e = await t.throwsAsync(loadModel(path.join(parent, 'nope')));
  t.is((e as { code?: string }).code, 'FF_ERR_CHECKPOINT');
  t.true(e!.message.includes(path.join(parent, 'nope')));
  const dir = path.join(parent, 'ck');
  const m = createModel(cfg, { seed: 1 });
  await saveCheckpoint(dir, { model: m, tokenizer: tok });
  const other = { ...cfg, language: { ...cfg.language, width: 32 } };
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(other));
  const e2 = await t.throwsAsync(loadModel(dir));
  t.is((e2 as { code?: string }).code, 'FF_ERR_CHECKPOINT');
  t.true(e2!.message.includes(path.join(dir, 'model.safetensors')));
  t.regex(e2!.message, /shape/);
  await writeFile(path.join(dir, 'config.json'), '{ nope');
  const e3 = await t.throwsAsync(loadModel(dir));
  t.true(e3!.message.includes(path.join(dir, 'config.json')));
  m.dispose();
});

test.serial('a config.json from before rotary positions (no language.positions) loads as learned positions', async (t) => {
  const dir = path.join(await tempDir(t, 'ff-ck-'), 'checkpoint');
  const m = createModel(cfg, { seed: 4 });
  await saveCheckpoint(dir, { model: m, tokenizer: tok });
  const file = path.join(dir, 'config.json');
  const raw = JSON.parse(await readFile(file, 'utf8')) as { language: Record<string, unknown> };
  t.is(raw.language.positions, 'learned');
  delete raw.language.positions;
  await writeFile(file, JSON.stringify(raw));
  const { model: m2 } = await loadModel(dir);
  t.is(m2.config.language.positions, 'learned');
  t.deepEqual(weightBytes(m2), weightBytes(m));
  m.dispose(); m2.dispose();
});
