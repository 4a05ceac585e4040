import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { DEFAULT_MODEL_CONFIG, TINY_MODEL_CONFIG, configDifferences, imageTokenCount, resolveModelConfig } from '../../src/model/config.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { rewardPoolingWeights } from '../../src/model/heads.ts';
import { attentionBias, positionIds } from '../../src/model/language-model.ts';
import { patchify } from '../../src/model/vision-encoder.ts';

tf.env().set('PROD', true);
await tf.setBackend('wasm');

test('default config: 16 visual tokens, parameter count by part', (t) => {
  const cfg = resolveModelConfig({ language: { vocabSize: 512 } });
  t.is(imageTokenCount(cfg), 16);
  const m = createModel(cfg, { seed: 1 });
  const n = m.parameterCount();
  t.is(n, m.parameterCount('vision.') + m.parameterCount('projector.') + m.parameterCount('lm.') + m.parameterCount('head.'));
  // lm: 2 x (4*128*128 + 4*128 + 2*128*512 + 512 + 128 + 4*128) + token embeddings 512 x 128 + ln_f
  // (rotary positions by default: no position table; with learned ones 256 x 128 more)
  const block = (d: number, r: number) => 4 * d * d + 4 * d + 2 * d * d * r + d * r + d + 4 * d;
  t.is(m.parameterCount('lm.'), 2 * block(128, 4) + 512 * 128 + 2 * 128);
  const learned = createModel(resolveModelConfig({ language: { vocabSize: 512, positions: 'learned' } }), { seed: 1 });
  t.is(learned.parameterCount('lm.'), 2 * block(128, 4) + (512 + 256) * 128 + 2 * 128);
  learned.dispose();
  t.is(m.parameterCount('vision.'), 768 * 96 + 96 + 16 * 96 + 2 * block(96, 4) + 2 * 192);
  t.is(m.parameterCount('projector.'), 192 * 128 + 128);
  t.is(m.parameterCount('head.'), 128 * 512);
  t.true(n > 500_000 && n < 2_000_000, String(n));
  m.dispose();
});

test('fan-in init (the default): each matrix starts at std 1/sqrt(fan_in), embeddings 1/sqrt(width); a number keeps one std', (t) => {
  const cfg = resolveModelConfig({ language: { vocabSize: 512 } });
  t.is(cfg.initStd, 'fan-in');
  const m = createModel(cfg, { seed: 1 });
  const std = (name: string): number => {
    const v = m.parameters().find((p) => p.name === name)!.variable.dataSync();
    let s = 0;
    for (const x of v) s += x * x;
    return Math.sqrt(s / v.length);
  };
  const near = (name: string, want: number) => t.true(Math.abs(std(name) / want - 1) < 0.08, `${name}: ${std(name)} vs ${want}`);
  near('lm.embed.weight', 1 / Math.sqrt(128));
  near('lm.layers.0.attn.q.weight', 1 / Math.sqrt(128));
  near('lm.layers.1.attn.out.weight', 1 / Math.sqrt(128) / 2); // residual outputs / sqrt(2 x 2 layers)
  near('lm.layers.0.mlp.fc2.weight', 1 / Math.sqrt(512) / 2);
  near('vision.patch_embed.weight', 1 / Math.sqrt(16 * 16 * 3));
  near('projector.weight', 1 / Math.sqrt(192));
  near('head.lm.weight', 1 / Math.sqrt(128));
  m.dispose();
  const fixed = createModel(resolveModelConfig({ initStd: 0.02, language: { vocabSize: 512 } }), { seed: 1 });
  const q = fixed.parameters().find((p) => p.name === 'lm.layers.0.mlp.fc1.weight')!.variable.dataSync();
  t.true(Math.abs(Math.sqrt(Array.from(q as Float32Array).reduce((a, x) => a + x * x, 0) / q.length) - 0.02) < 0.001);
  fixed.dispose();
  t.throws(() => resolveModelConfig({ initStd: 'xavier' as never }), { message: /model\.initStd.*"fan-in" or a positive number/ });
});

test('config errors name the option path', (t) => {
  const cases: [Parameters<typeof resolveModelConfig>[0], RegExp][] = [
    [{ vision: { patchSize: 7 } }, /model\.vision\.imageSize.*multiple of patchSize/],
    [{ language: { heads: 3 } }, /model\.language\.heads/],
    [{ language: { width: 0 } }, /model\.language\.width/],
    [{ heads: ['policy' as 'lm'] }, /model\.heads/],
    [{ language: { contextLength: 16 } }, /model\.language\.contextLength/],
    [{ activation: 'tanh' as 'relu' }, /model\.activation/],
  ];
  for (const [input, re] of cases) {
    const e = t.throws(() => resolveModelConfig(input));
    t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
    t.regex(e!.message, re);
  }
  t.deepEqual(resolveModelConfig({}), { ...DEFAULT_MODEL_CONFIG });
});

test('configDifferences names every field that changes what the weights compute, and ignores initStd', (t) => {
  const base = resolveModelConfig({ language: { vocabSize: 512 } });
  t.deepEqual(configDifferences(base, resolveModelConfig({ language: { vocabSize: 512 } })), []);
  t.deepEqual(configDifferences(base, resolveModelConfig({ initStd: 0.02, language: { vocabSize: 512 } })), []);
  t.deepEqual(
    configDifferences(base, resolveModelConfig({ vision: { patchSize: 8 }, language: { vocabSize: 512, heads: 4, positions: 'learned' }, heads: ['lm', 'value'], activation: 'gelu' })),
    ['vision.patchSize 16 -> 8', 'language.heads 8 -> 4', 'language.positions rotary -> learned', 'heads ["lm"] -> ["lm","value"]', 'activation relu -> gelu'],
  );
  t.deepEqual(configDifferences(base, resolveModelConfig({ language: { vocabSize: 512 }, rewardPooling: 'mean' })), ['rewardPooling (absent) -> mean']);
});

test('forward: shapes of hidden states and every head; bad input is refused with the option named', (t) => {
  const m = createModel(TINY_MODEL_CONFIG, { seed: 2 });
  const B = 2, T = 10;
  const input = { batch: B, length: T, ids: new Int32Array(B * T).fill(7), attentionMask: Uint8Array.from({ length: B * T }, (_, i) => (i >= T && i < T + 2 ? 0 : 1)) };
  tf.tidy(() => {
    const { hidden } = m.forward(input);
    t.deepEqual(hidden.shape, [B * T, 16]);
    t.deepEqual(m.lmLogits(hidden).shape, [B * T, 40]);
    t.deepEqual(m.rewardScores(hidden, input).shape, [B]);
    t.deepEqual(m.values(hidden, input).shape, [B, T]);
  });
  const e = t.throws(() => m.forward({ ...input, ids: new Int32Array(B * T).fill(40) }));
  t.regex(e!.message, /option "input\.ids": id 40 at \[0, 0\] is outside the vocabulary/);
  const e2 = t.throws(() => m.forward({ batch: 1, length: 60, ids: new Int32Array(60).fill(5) }));
  t.regex(e2!.message, /beyond the context length 48/);
  const e3 = t.throws(() => m.forward({ ...input, images: new Float32Array(5) }));
  t.regex(e3!.message, /input\.images/);
  m.dispose();
});

test('rewardPoolingWeights: one-hot on the last real token, or 1/n on each real token (hand-computed)', (t) => {
  const mask = Uint8Array.from([1, 1, 1, 0, 0, 1, 1, 1]);
  t.deepEqual([...rewardPoolingWeights(mask, 2, 4, 'last')], [0, 0, 1, 0, 0, 0, 0, 1]);
  t.deepEqual([...rewardPoolingWeights(mask, 2, 4)], [0, 0, 1, 0, 0, 0, 0, 1]);
  t.deepEqual([...rewardPoolingWeights(mask, 2, 4, 'mean')].map((x) => Math.round(x * 1e6) / 1e6), [1 / 3, 1 / 3, 1 / 3, 0, 0, 1 / 3, 1 / 3, 1 / 3].map((x) => Math.round(x * 1e6) / 1e6));
  t.deepEqual([...rewardPoolingWeights(undefined, 1, 4, 'mean')], [0.25, 0.25, 0.25, 0.25]);
  const response = Uint8Array.from([0, 1, 1, 0, 0, 0, 0, 1]);
  t.deepEqual([...rewardPoolingWeights(mask, 2, 4, 'response', response)], [0, 0.5, 0.5, 0, 0, 0, 0, 1]);
  t.throws(() => rewardPoolingWeights(mask, 2, 4, 'response'), { message: /needs a response mask of 8 entries, got none/ });
  t.throws(() => rewardPoolingWeights(mask, 2, 4, 'response', Uint8Array.from([0, 1, 1, 0, 0, 0, 0, 0])), { message: /row 1 marks no response token/ });
  t.deepEqual([...rewardPoolingWeights(mask, 2, 4, 'response-sum', response)], [0, 1, 1, 0, 0, 0, 0, 1]);
});

test('likelihood-reading reward head: sum over the response of u.h + c + (v.h + d) * log p(token | before), by hand', (t) => {
  const cfg = resolveModelConfig({ heads: ['lm', 'reward'], rewardLikelihood: true, rewardPooling: 'response-sum', initStd: 0.3 }, TINY_MODEL_CONFIG);
  const m = createModel(cfg, { seed: 4 });
  // a fresh head starts as 0.1 x the response's log-likelihood plus a small linear term
  t.deepEqual([...m.params.get('head.reward.likelihood.weight').dataSync()].filter((x) => x !== 0), []);
  t.is(m.params.get('head.reward.likelihood.bias').dataSync()[0], Math.fround(0.1));
  m.params.get('head.reward.likelihood.weight').assign(tf.randomNormal([cfg.language.width, 1], 0, 0.3, 'float32', 2));
  const B = 2, T = 9, V = cfg.language.vocabSize;
  const ids = Int32Array.from({ length: B * T }, (_, i) => 3 + ((i * 7) % (V - 3)));
  const responseMask = Uint8Array.from([0, 0, 0, 0, 0, 1, 1, 1, 0, /**/ 0, 0, 0, 0, 0, 0, 1, 1, 1]);
  const attentionMask = Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1, 0, /**/ 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  const input = { batch: B, length: T, ids, attentionMask, responseMask };
  const { scores, hidden, logits } = tf.tidy(() => {
    const h = m.forward(input).hidden;
    return { scores: [...m.rewardScores(h, input).dataSync()], hidden: h.arraySync(), logits: m.lmLogits(h).arraySync() };
  });
  const col = (name: string) => [...m.params.get(name).dataSync()];
  const [u, c, v, d] = [col('head.reward.weight'), col('head.reward.bias')[0]!, col('head.reward.likelihood.weight'), col('head.reward.likelihood.bias')[0]!];
  const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
  for (let b = 0; b < B; b++) {
    let want = 0;
    for (let t2 = 1; t2 < T; t2++) {
      const r = b * T + t2;
      if (!responseMask[r]) continue;
      const prev = logits[r - 1]!;
      const max = Math.max(...prev);
      const lse = max + Math.log(prev.reduce((s, z) => s + Math.exp(z - max), 0));
      const lp = prev[ids[r]!]! - lse;
      want += dot(u, hidden[r]!) + c + (dot(v, hidden[r]!) + d) * lp;
    }
    t.true(Math.abs(scores[b]! - want) < 1e-4 * Math.max(1, Math.abs(want)), `row ${b}: ${scores[b]} vs ${want}`);
  }
  // 'mean' pooling reads every real token, position 0 included, whose log p counts as 0
  const meanCfg = { ...m.config, rewardPooling: 'mean' as const };
  const mm = createModel(meanCfg, { seed: 4 });
  for (const p of m.parameters()) mm.params.get(p.name).assign(p.variable);
  const meanScores = tf.tidy(() => [...mm.rewardScores(mm.forward(input).hidden, input).dataSync()]);
  for (let b = 0; b < B; b++) {
    let want = 0;
    let count = 0;
    for (let t2 = 0; t2 < T; t2++) {
      const r = b * T + t2;
      if (!attentionMask[r]) continue;
      count++;
      let lp = 0;
      if (t2 > 0) {
        const prev = logits[r - 1]!;
        const max = Math.max(...prev);
        lp = prev[ids[r]!]! - (max + Math.log(prev.reduce((s, z) => s + Math.exp(z - max), 0)));
      }
      want += dot(u, hidden[r]!) + c + (dot(v, hidden[r]!) + d) * lp;
    }
    want /= count;
    t.true(Math.abs(meanScores[b]! - want) < 1e-4 * Math.max(1, Math.abs(want)), `mean pooling, row ${b}: ${meanScores[b]} vs ${want}`);
  }
  mm.dispose();
  m.dispose();
  t.throws(() => resolveModelConfig({ heads: ['reward'], rewardLikelihood: true }, TINY_MODEL_CONFIG), { message: /needs the "lm" head/ });
});

test('caption-match term: each matched response token adds w.h + g to the likelihood head\'s score, by hand; a missing match mask is an error', (t) => {
  const cfg = resolveModelConfig({ heads: ['lm', 'reward'], rewardLikelihood: true, rewardFactMatch: true, rewardPooling: 'response-sum', initStd: 0.3 }, TINY_MODEL_CONFIG);
  const m = createModel(cfg, { seed: 4 });
  t.deepEqual([...m.params.get('head.reward.fact.weight').dataSync()].filter((x) => x !== 0), [], 'starts at zero: no effect until trained');
  m.params.get('head.reward.fact.weight').assign(tf.randomNormal([cfg.language.width, 1], 0, 0.3, 'float32', 3));
  m.params.get('head.reward.fact.bias').assign(tf.tensor1d([0.7]));
  const B = 2, T = 9, V = cfg.language.vocabSize;
  const ids = Int32Array.from({ length: B * T }, (_, i) => 3 + ((i * 5) % (V - 3)));
  const responseMask = Uint8Array.from([0, 0, 0, 0, 0, 1, 1, 1, 0, /**/ 0, 0, 0, 0, 0, 0, 1, 1, 1]);
  const factMatch = Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 1, 0, /**/ 0, 0, 0, 0, 0, 0, 0, 0, 1]); // position 1 is outside the response: not read
  const base = { batch: B, length: T, ids, responseMask };
  const { withMatch, without, hidden } = tf.tidy(() => {
    const h = m.forward(base).hidden;
    return {
      withMatch: [...m.rewardScores(h, { ...base, factMatch }).dataSync()],
      without: [...m.rewardScores(h, { ...base, factMatch: new Uint8Array(B * T) }).dataSync()],
      hidden: h.arraySync(),
    };
  });
  const w = [...m.params.get('head.reward.fact.weight').dataSync()];
  const g = m.params.get('head.reward.fact.bias').dataSync()[0]!;
  for (let b = 0; b < B; b++) {
    let want = 0;
    for (let t2 = 0; t2 < T; t2++) {
      const r = b * T + t2;
      if (responseMask[r] && factMatch[r]) want += w.reduce((s, x, i) => s + x * hidden[r]![i]!, 0) + g;
    }
    t.true(Math.abs(withMatch[b]! - without[b]! - want) < 1e-4 * Math.max(1, Math.abs(want)), `row ${b}: ${withMatch[b]! - without[b]!} vs ${want}`);
  }
  t.throws(() => tf.tidy(() => m.rewardScores(m.forward(base).hidden, base)), { message: /factMatch/ });
  m.dispose();
  t.throws(() => resolveModelConfig({ heads: ['lm', 'reward'], rewardFactMatch: true }, TINY_MODEL_CONFIG), { message: /likelihood-reading reward head/ });
});

/** A one-row input's reward score and the reward head's score at each of its positions. */
function pooledAndPerToken(m: ReturnType<typeof createModel>, input: Parameters<ReturnType<typeof createModel>['forward']>[0]): { score: number; perToken: number[] } {
  return tf.tidy(() => {
    const hidden = m.forward(input).hidden;
    const score = m.rewardScores(hidden, input).dataSync()[0]!;
    const perToken = tf.add(tf.matMul(hidden, m.params.get('head.reward.weight') as tf.Tensor2D), m.params.get('head.reward.bias') as tf.Tensor1D);
    return { score, perToken: [...perToken.dataSync()] };
  });
}

test('response reward pooling: the score is the mean per-token head score over the response tokens only', (t) => {
  const m = createModel({ ...resolveModelConfig({ rewardPooling: 'response' }, TINY_MODEL_CONFIG), heads: ['reward'] }, { seed: 5 });
  const input = { batch: 1, length: 6, ids: Int32Array.from([1, 9, 12, 15, 7, 3]), responseMask: Uint8Array.from([0, 0, 1, 1, 1, 0]) };
  const { score, perToken } = pooledAndPerToken(m, input);
  const want = (perToken[2]! + perToken[3]! + perToken[4]!) / 3;
  t.true(Math.abs(score - want) < 1e-5, `${score} vs ${want}`);
  t.throws(() => m.rewardScores(m.forward(input).hidden, { ...input, responseMask: null }), { message: /response mask/ });
  m.dispose();
});

test('mean reward pooling: the score is the mean of the per-token head scores over real tokens; padding changes nothing', (t) => {
  const cfg = resolveModelConfig({ rewardPooling: 'mean' }, TINY_MODEL_CONFIG);
  t.throws(() => resolveModelConfig({ rewardPooling: 'max' as never }, TINY_MODEL_CONFIG), { message: /rewardPooling/ });
  const m = createModel({ ...cfg, heads: ['reward'] }, { seed: 3 });
  const ids = Int32Array.from([1, 9, 12, 15, 3, 3]);
  const short = { batch: 1, length: 4, ids: ids.slice(0, 4) };
  const padded = { batch: 1, length: 6, ids, attentionMask: Uint8Array.from([1, 1, 1, 1, 0, 0]) };
  const { score, perToken } = pooledAndPerToken(m, short);
  const want = perToken.reduce((s, x) => s + x, 0) / 4;
  t.true(Math.abs(score - want) < 1e-5, `${score} vs ${want}`);
  const b = tf.tidy(() => m.rewardScores(m.forward(padded).hidden, padded).dataSync()[0]!);
  t.true(Math.abs(score - b) < 1e-5, `${score} vs ${b}`);
  m.dispose();
});

test('reward score reads the last real token: padding after it changes nothing', (t) => {
  const m = createModel(TINY_MODEL_CONFIG, { seed: 3 });
  const ids = Int32Array.from([1, 9, 12, 15, 3, 3]);
  const short = { batch: 1, length: 4, ids: ids.slice(0, 4) };
  const padded = { batch: 1, length: 6, ids, attentionMask: Uint8Array.from([1, 1, 1, 1, 0, 0]) };
  const a = tf.tidy(() => m.rewardScores(m.forward(short).hidden, short).dataSync()[0]!);
  const b = tf.tidy(() => m.rewardScores(m.forward(padded).hidden, padded).dataSync()[0]!);
  t.true(Math.abs(a - b) < 1e-5, `${a} vs ${b}`);
  m.dispose();
});

test('position ids skip left padding; attention bias masks future and padding', (t) => {
  const mask = Uint8Array.from([0, 0, 1, 1, 1, 1, 1, 0]);
  t.deepEqual([...positionIds(mask, 2, 4).ids], [0, 0, 0, 1, 0, 1, 2, 0]);
  const bias = attentionBias(mask, 2, 0, 4)!;
  t.deepEqual(bias.shape, [4, 2, 1, 4]); // left padding in row 0: per-row mask
  const v = bias.arraySync() as number[][][][];
  t.deepEqual(v[3]![0]![0]!.map((x) => x < -1e8), [true, true, false, false]); // row 0, last query: pads masked
  t.deepEqual(v[1]![1]![0]!.map((x) => x < -1e8), [false, false, true, true]); // row 1, query 1: future masked
  const right = attentionBias(Uint8Array.from([1, 1, 1, 0]), 1, 0, 4)!;
  t.deepEqual(right.shape, [4, 1, 1, 4]); // trailing padding only: one causal mask
  t.is(attentionBias(new Uint8Array(3).fill(1), 1, 2, 1), null);
});

test('patchify: row-major patches of HWC pixels', (t) => {
  const size = 4, patch = 2;
  const px = Float32Array.from({ length: size * size * 3 }, (_, i) => i);
  const out = patchify(px, 1, size, patch);
  // second patch (top-right): pixels (0,2) (0,3) (1,2) (1,3)
  const at = (y: number, x: number) => [0, 1, 2].map((c) => (y * size + x) * 3 + c);
  t.deepEqual([...out.subarray(12, 24)], [...at(0, 2), ...at(0, 3), ...at(1, 2), ...at(1, 3)]);
});
