import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Rng } from '../../src/stream/random.ts';
import { TINY_MODEL_CONFIG, imageTokenCount, resolveModelConfig } from '../../src/model/config.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { generate, sampleToken, type GenerationRequest } from '../../src/model/generate.ts';

tf.env().set('PROD', true);
await tf.setBackend('wasm');

// spread-out logits (large init) so greedy choices are not near-ties
const cfg = resolveModelConfig({ initStd: 0.4, language: { contextLength: 64 } }, TINY_MODEL_CONFIG);
const model = createModel(cfg, { seed: 5 });
const n = imageTokenCount(cfg);
const px = cfg.vision.imageSize ** 2 * 3;
const rng = new Rng(9);

function request(len: number, withImage: boolean): GenerationRequest {
  const ids = [1, ...Array.from({ length: len - 1 }, () => 5 + rng.int(cfg.language.vocabSize - 5))];
  if (!withImage) return { ids };
  const imagePositions = Array.from({ length: n }, (_, k) => 2 + k);
  for (const p of imagePositions) ids[p] = 4;
  return { ids, image: Float32Array.from({ length: px }, () => rng.normal()), imagePositions };
}

const requests = [request(12, true), request(7, false), request(15, true), request(9, false)];

test.serial('KV cache: greedy tokens identical to full recomputation, log-probs close', async (t) => {
  const opts = { maxNewTokens: 12, greedy: true, eosId: 2, padId: 3 };
  const cached = await generate(model, requests, opts);
  const full = await generate(model, requests, { ...opts, useCache: false });
  t.deepEqual(cached.map((r) => r.tokens), full.map((r) => r.tokens));
  t.true(cached.some((r) => r.tokens.length >= 6));
  cached.forEach((r, b) => r.logprobs.forEach((lp, i) => t.true(Math.abs(lp - full[b]!.logprobs[i]!) < 1e-4, `${lp} vs ${full[b]!.logprobs[i]}`)));
  cached.forEach((r) => r.logprobs.forEach((lp) => t.true(lp <= 0)));
});

test.serial('padding: a prompt generates the same tokens alone as in a batch of longer and shorter prompts', async (t) => {
  const opts = { maxNewTokens: 8, greedy: true, eosId: 2, padId: 3 };
  const batch = await generate(model, requests, opts);
  for (let i = 0; i < requests.length; i++) {
    const alone = await generate(model, [requests[i]!], opts);
    t.deepEqual(alone[0]!.tokens, batch[i]!.tokens);
  }
});

test.serial('EOS stops a row (EOS kept as its last token, endedWithEos); other rows run on', async (t) => {
  const free = await generate(model, requests, { maxNewTokens: 8, greedy: true, eosId: 999, padId: 3 });
  t.true(free.every((r) => r.tokens.length === 8 && !r.endedWithEos));
  const eos = free[0]!.tokens[2]!; // pretend row 0's third token is the end marker
  const r = await generate(model, requests, { maxNewTokens: 8, greedy: true, eosId: eos, padId: 3 });
  r.forEach((x, b) => {
    const cut = free[b]!.tokens.indexOf(eos);
    if (cut < 0) {
      t.deepEqual(x.tokens, free[b]!.tokens);
      t.false(x.endedWithEos);
    } else {
      t.deepEqual(x.tokens, free[b]!.tokens.slice(0, cut + 1));
      t.true(x.endedWithEos);
    }
  });
  t.true(r[0]!.endedWithEos);
  t.true(r[0]!.tokens.length <= 3);
});

test.serial('sampling: the seed decides; cache and no-cache agree; top-k 1 is greedy', async (t) => {
  const opts = { maxNewTokens: 8, temperature: 1.3, topP: 0.9, eosId: 2, padId: 3 };
  const a = await generate(model, requests, { ...opts, seed: 1 });
  const b = await generate(model, requests, { ...opts, seed: 1 });
  const c = await generate(model, requests, { ...opts, seed: 1, useCache: false });
  t.deepEqual(a.map((r) => r.tokens), b.map((r) => r.tokens));
  t.deepEqual(a.map((r) => r.tokens), c.map((r) => r.tokens));
  const k1 = await generate(model, requests, { maxNewTokens: 6, topK: 1, eosId: 2, padId: 3, seed: 4 });
  const g = await generate(model, requests, { maxNewTokens: 6, greedy: true, eosId: 2, padId: 3 });
  t.deepEqual(k1.map((r) => r.tokens), g.map((r) => r.tokens));
});

test.serial('sampleToken: top-p keeps the smallest set reaching p; frequencies follow the distribution', (t) => {
  const logits = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
  const r = new Rng(3);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[sampleToken(logits, r, 1, 0, 0.75)]!++;
  t.is(counts[2]! + counts[3]!, 0);
  t.true(Math.abs(counts[0]! / 4000 - 0.625) < 0.03);
  const all = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) all[sampleToken(logits, r, 1, 0, 1)]!++;
  t.true(Math.abs(all[3]! / 4000 - 0.05) < 0.015);
});

test.serial('generate: bad options give FF_ERR_INVALID_OPTION naming the option', async (t) => {
  const e = await t.throwsAsync(generate(model, requests, { maxNewTokens: 0, eosId: 2 }));
  t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e!.message, /generate\.maxNewTokens/);
  const e2 = await t.throwsAsync(generate(model, [{ ids: Array(70).fill(5) }], { maxNewTokens: 3, eosId: 2 }));
  t.regex(e2!.message, /context/);
});

test.serial('rotary positions: KV-cache greedy tokens equal full recomputation; a padded prompt generates as alone; no tensors leak', async (t) => {
  const rcfg = resolveModelConfig({ initStd: 0.4, language: { contextLength: 64, positions: 'rotary' } }, TINY_MODEL_CONFIG);
  const rot = createModel(rcfg, { seed: 5 });
  const opts = { maxNewTokens: 10, greedy: true, eosId: 2, padId: 3 };
  const cached = await generate(rot, requests, opts);
  const full = await generate(rot, requests, { ...opts, useCache: false });
  t.deepEqual(cached.map((r) => r.tokens), full.map((r) => r.tokens));
  t.true(cached.some((r) => r.tokens.length >= 6));
  cached.forEach((r, b) => r.logprobs.forEach((lp, i) => t.true(Math.abs(lp - full[b]!.logprobs[i]!) < 1e-4, `${lp} vs ${full[b]!.logprobs[i]}`)));
  const alone = await generate(rot, [requests[1]!], opts);
  t.deepEqual(alone[0]!.tokens, cached[1]!.tokens, 'left padding in a batch does not move positions');
  const before = tf.memory().numTensors;
  await generate(rot, requests, { ...opts, maxNewTokens: 4 });
  t.is(tf.memory().numTensors, before);
  rot.dispose();
});

test.serial('generate leaks no tensors', async (t) => {
  await generate(model, requests, { maxNewTokens: 3, greedy: true, eosId: 2 });
  const before = tf.memory().numTensors;
  await generate(model, requests, { maxNewTokens: 6, greedy: true, eosId: 2 });
  await generate(model, requests, { maxNewTokens: 6, greedy: true, eosId: 2, useCache: false });
  t.is(tf.memory().numTensors, before);
});
