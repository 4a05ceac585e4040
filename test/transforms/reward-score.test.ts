import test from 'ava';
import { mkdtemp, readFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { generateShapesWorld } from '../../sources/shapes-world.ts';
import type { GroundTruth } from '../../schemas/shapes-world.ts';
import { buildTokenizer, tokenizerConfigFor } from '../../src/model/build-tokenizer.ts';
import { VICUNA_SYSTEM_PROMPT } from '../../src/model/chat-template.ts';
import { TINY_MODEL_CONFIG, resolveModelConfig } from '../../src/model/config.ts';
import { createImageLoader } from '../../src/model/image-input.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { encodeRewardPair, rewardBatch, scoreResponses } from '../../src/model/reward-model.ts';
import { REWARD_PROMPT_CORPUS } from '../../src/model/reward-prompt.ts';
import { tokenizerFromJson } from '../../src/model/tokenizer.ts';
import { shapeReward } from '../../src/rl/reward-shaping.ts';
import { rewardScore, type RewardScoreInput } from '../../transforms/reward-score.ts';
import { fromArray, testContext } from '../stream/helpers.ts';
import { removeAfterAll } from '../helpers/temp-dir.ts';

tf.env().set('PROD', true);
await tf.setBackend('wasm');

const root = await mkdtemp(path.join(os.tmpdir(), 'ff-rscore-'));
const world = path.join(root, 'world');
await generateShapesWorld({ out: world, seed: 4, images: 4, flickrImages: 0, evalImages: 1, mmhalPerType: 0, preferencePerImage: 0 });
const image = (JSON.parse((await readFile(path.join(world, 'ground_truth.jsonl'), 'utf8')).split('\n')[0]!) as GroundTruth).image;
const imageRoot = path.join(world, 'images');

const tok = tokenizerFromJson(buildTokenizer([
  VICUNA_SYSTEM_PROMPT, 'USER: ASSISTANT:', ...REWARD_PROMPT_CORPUS, ...REWARD_PROMPT_CORPUS,
  'Describe the image. There is a red circle. B. No Yes So the correct option is B.', 'A red circle on a white background.',
], { vocabSize: 400 }), tokenizerConfigFor());
const config = resolveModelConfig({ language: { vocabSize: tok.vocabSize, contextLength: 192 }, heads: ['reward'] }, TINY_MODEL_CONFIG);
// a larger head init so that scores differ visibly between prompts
const model = createModel({ ...config, initStd: 0.2 }, { seed: 3 });

type Rec = RewardScoreInput & { extra: string };
function rec(over: Partial<Rec>): Rec {
  return {
    id: 'r0', image, conversations: [{ from: 'human', value: '<image>\nDescribe the image.' }],
    response: 'There is a red circle.', response_tokens: 7, ended_with_eos: true, caption_type: 1, length_bonus: 1,
    facts: ['A red circle on a white background.'], extra: 'kept', ...over,
  };
}

async function run(records: Rec[][], facts: boolean, extra: Partial<Parameters<typeof rewardScore>[0]> = {}) {
  const ctx = testContext(5);
  const stage = rewardScore<Rec>({ model, tokenizer: tok, facts, maxResponseTokens: 20, imageRoot, ...extra });
  const out = [];
  for await (const b of stage.run(fromArray(records), ctx)) out.push(b);
  return { out, ctx };
}

removeAfterAll(root); // after the setup above: no top-level await may follow a hook

test.serial('every shaping term is in the record and the terms sum to reward_total', async (t) => {
  const records = [
    rec({ id: 'general' }),
    rec({ id: 'mc-right', caption_type: 3, response: 'So the correct option is B.', response_tokens: 8 }),
    rec({ id: 'no-right', caption_type: 6, response: 'No', response_tokens: 2, length_bonus: 2 }),
    rec({ id: 'no-wrong', caption_type: 6, response: 'Yes', response_tokens: 2 }),
    rec({ id: 'cut', ended_with_eos: false, response_tokens: 20, image: null, conversations: [{ from: 'human', value: 'Describe the shapes.' }] }),
  ];
  const { out, ctx } = await run([records.slice(0, 3), records.slice(3)], true);
  t.is(ctx.rejected.length, 0);
  t.deepEqual(out.map((b) => b.length), [3, 2]);
  const flat = out.flat();
  const images = createImageLoader({ size: config.vision.imageSize, root: imageRoot });
  const expected = await scoreResponses(model, tok, await Promise.all(records.map(async (r) => ({
    id: r.id, pixels: r.image ? await images.load(r.image) : null, turns: r.conversations, response: r.response, facts: r.facts, endedWithEos: r.ended_with_eos,
  }))), { facts: true, seed: 5 });
  flat.forEach((r, i) => {
    t.is(r.extra, 'kept');
    t.true(Math.abs(r.reward_model - expected[i]!) < 1e-5, `${r.id}: ${r.reward_model} vs ${expected[i]}`);
    const shaped = shapeReward({ rewardModel: r.reward_model, responseTokens: r.response_tokens, maxResponseTokens: 20, lengthBonus: r.length_bonus, captionType: r.caption_type, responseText: r.response, endedWithEos: r.ended_with_eos });
    t.is(r.reward_length, shaped.terms.length);
    t.is(r.reward_correctness, shaped.terms.correctness);
    t.is(r.reward_no_eos, shaped.terms.no_eos);
    t.true(Math.abs(r.reward_model + r.reward_length + r.reward_correctness + r.reward_no_eos - r.reward_total) < 1e-9);
  });
  const by = Object.fromEntries(flat.map((r) => [r.id, r]));
  t.is(by['general']!.reward_length, -10 * 7 / 20);
  t.is(by['general']!.reward_correctness, 0);
  t.is(by['mc-right']!.reward_correctness, 1);
  t.is(by['no-right']!.reward_correctness, 0.5);
  t.is(by['no-right']!.reward_length, -10 * 2 / 20 * 2);
  t.is(by['no-wrong']!.reward_correctness, -0.5);
  t.is(by['cut']!.reward_no_eos, -8);
  t.is(by['general']!.reward_no_eos, 0);
});

test.serial('normalize: the reward-model term is (score - mean) / std, the other terms unchanged; bad statistics are refused', async (t) => {
  const records = [rec({ id: 'a' }), rec({ id: 'b', response: 'No', response_tokens: 2, caption_type: 6 })];
  const raw = (await run([records], true)).out.flat();
  const stats = { mean: 0.3, std: 0.25 };
  const norm = (await run([records], true, { normalize: stats })).out.flat();
  raw.forEach((r, i) => {
    const n = norm[i]!;
    t.true(Math.abs(n.reward_model - (r.reward_model - 0.3) / 0.25) < 1e-9, `${n.reward_model} vs ${r.reward_model}`);
    t.is(n.reward_length, r.reward_length);
    t.is(n.reward_correctness, r.reward_correctness);
    t.true(Math.abs(n.reward_model + n.reward_length + n.reward_correctness + n.reward_no_eos - n.reward_total) < 1e-9);
  });
  for (const bad of [{ mean: 0, std: 0 }, { mean: Number.NaN, std: 1 }]) {
    t.throws(() => rewardScore({ model, tokenizer: tok, facts: true, maxResponseTokens: 20, imageRoot, normalize: bad }), { message: /normalize/ });
  }
});

test.serial('facts on/off changes the prompt the reward model reads, and so its score', async (t) => {
  const withFacts = rec({ id: 'f' });
  const noFacts = rec({ id: 'n', facts: [] });
  const on = (await run([[withFacts, noFacts]], true)).out.flat();
  const off = (await run([[withFacts, noFacts]], false)).out.flat();
  t.not(on[0]!.reward_model, off[0]!.reward_model);
  // without facts in the record both modes read the same prompt (equal up to float rounding: the
  // batches are padded to different lengths)
  t.true(Math.abs(on[1]!.reward_model - off[1]!.reward_model) < 1e-5, `${on[1]!.reward_model} vs ${off[1]!.reward_model}`);
});

test.serial('bad rollouts are rejected with a reason and left out of their batch', async (t) => {
  const long = Array.from({ length: 120 }, () => 'red circle').join(' ');
  const { out, ctx } = await run([[
    rec({ id: 'ok' }),
    rec({ id: 'nan', response_tokens: Number.NaN }),
    rec({ id: 'long', response: long }),
    rec({ id: 'type', caption_type: 9 }),
  ], [rec({ id: 'empty', response: ' ', ended_with_eos: false }), rec({ id: 'eos-only', response: '', response_tokens: 1 })]], true);
  t.deepEqual(out.map((b) => b.map((r) => r.id)), [['ok'], ['eos-only']]);
  const reasons = Object.fromEntries(ctx.rejected.map((r) => [(r.record as Rec).id, r.reason]));
  t.deepEqual(Object.keys(reasons).sort(), ['empty', 'long', 'nan', 'type']);
  t.regex(reasons['nan']!, /response_tokens/);
  t.regex(reasons['long']!, /over the limit 192/);
  t.regex(reasons['type']!, /caption_type 9/);
  t.regex(reasons['empty']!, /response is empty and did not end with <\/s>/);
});

test('options are checked when the stage is made', (t) => {
  const base = { model, tokenizer: tok, facts: true, maxResponseTokens: 20, imageRoot };
  const noHead = createModel(resolveModelConfig({ language: { vocabSize: tok.vocabSize, contextLength: 192 }, heads: ['lm'] }, TINY_MODEL_CONFIG), { seed: 1 });
  const e1 = t.throws(() => rewardScore({ ...base, model: noHead }));
  t.is((e1 as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e1!.message, /no "reward" head/);
  noHead.dispose();
  t.regex(t.throws(() => rewardScore({ ...base, maxResponseTokens: 0 }))!.message, /maxResponseTokens/);
  t.regex(t.throws(() => rewardScore({ ...base, shaping: { lengthCoef: Number.NaN } }))!.message, /shaping\.lengthCoef/);
  t.regex(t.throws(() => rewardScore({ ...base, imageRoot: undefined }))!.message, /imageRoot/);
});

test.serial('rewardBatch marks each response, and only it, for response pooling', (t) => {
  const turns = [{ from: 'human' as const, value: 'Describe the image.' }];
  const item = (id: string, response: string) => ({ id, turns, response, facts: ['A red circle on a white background.'], pixels: null });
  for (const factsAt of ['start', 'end'] as const) {
    const pair = encodeRewardPair(model, tok, item('a', 'There is a red circle.'), item('b', 'No'), { facts: true, seed: 1, factsAt });
    const b = rewardBatch(model, tok, pair);
    const rows = ['There is a red circle.', 'No'].map((want, r) => {
      const ids = [...b.ids.slice(r * b.length, (r + 1) * b.length)].filter((_, i) => b.responseMask![r * b.length + i] === 1);
      return [tok.decode(ids, { skipSpecial: true }).trim(), ids[ids.length - 1] === tok.eosId, want];
    });
    for (const [got, endsWithEos, want] of rows) {
      t.is(got, want, factsAt);
      t.true(endsWithEos, 'the response span ends with </s>');
    }
  }
});
