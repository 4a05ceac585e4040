import test from 'ava';
import { mkdtemp } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { buildTokenizer, tokenizerConfigFor } from '../../src/model/build-tokenizer.ts';
import { saveCheckpoint } from '../../src/model/checkpoint.ts';
import { TINY_MODEL_CONFIG, resolveModelConfig } from '../../src/model/config.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { encodeRewardPair, loadRewardModel } from '../../src/model/reward-model.ts';
import { extendPositions, loadRewardTrunk } from '../../src/model/reward-trunk.ts';
import { tokenizerFromJson } from '../../src/model/tokenizer.ts';
import { VICUNA_SYSTEM_PROMPT } from '../../src/model/chat-template.ts';
import { encodeRewardPrompt, REWARD_PROMPT_CORPUS } from '../../src/model/reward-prompt.ts';
import { removeAfterAll } from '../helpers/temp-dir.ts';

tf.env().set('PROD', true);
await tf.setBackend('wasm');

const tok = tokenizerFromJson(buildTokenizer([VICUNA_SYSTEM_PROMPT, ...REWARD_PROMPT_CORPUS, ...REWARD_PROMPT_CORPUS, 'USER: ASSISTANT: a red circle and a blue star. A red circle.'], { vocabSize: 400 }), tokenizerConfigFor());
const config = resolveModelConfig({ language: { vocabSize: tok.vocabSize, contextLength: 40 }, heads: ['lm'] }, TINY_MODEL_CONFIG);
const root = await mkdtemp(path.join(os.tmpdir(), 'ff-trunk-'));
const sft = path.join(root, 'sft');
const policy = createModel(config, { seed: 2 });
await saveCheckpoint(sft, { model: policy, tokenizer: tok });

removeAfterAll(root); // after the setup above: no top-level await may follow a hook

test('extendPositions repeats the last row; a long enough table is unchanged', (t) => {
  const table = { dtype: 'F32' as const, shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) };
  t.deepEqual([...extendPositions(table, 4).data as Float32Array], [1, 2, 3, 4, 5, 6, 4, 5, 6, 4, 5, 6]);
  t.deepEqual(extendPositions(table, 4).shape, [4, 3]);
  t.is(extendPositions(table, 2), table);
});

test('loadRewardTrunk: the SFT trunk with a fresh reward head, no LM head, context extended', async (t) => {
  const { model, checkpoint } = await loadRewardTrunk(sft, { contextLength: 64 });
  t.deepEqual(model.config.heads, ['reward']);
  t.is(model.config.language.contextLength, 64);
  t.is(checkpoint.config.language.contextLength, 64);
  t.false(model.params.has('head.lm.weight'));
  t.true(model.params.has('head.reward.weight'));
  const pos = model.params.get('lm.pos_embed.weight').arraySync() as number[][];
  const orig = policy.params.get('lm.pos_embed.weight').arraySync() as number[][];
  t.deepEqual(pos.slice(0, 40), orig);
  t.deepEqual(pos[63], orig[39]);
  const block = policy.parameters().find((p) => p.name.startsWith('lm.') && p.name.includes('attn') && p.name.endsWith('.weight'))!.name;
  t.deepEqual(model.params.get(block).arraySync(), policy.params.get(block).arraySync());
  model.dispose();
  // never shorter than the checkpoint
  const same = await loadRewardTrunk(sft, { contextLength: 8 });
  t.is(same.model.config.language.contextLength, 40);
  same.model.dispose();
});

test('loadRewardTrunk: a rotary trunk has no position table to extend; it scores the longer context with the SFT weights', async (t) => {
  const rcfg = resolveModelConfig({ language: { vocabSize: tok.vocabSize, contextLength: 40, positions: 'rotary' }, heads: ['lm'] }, TINY_MODEL_CONFIG);
  const rot = createModel(rcfg, { seed: 4 });
  const dir = path.join(root, 'sft-rotary');
  await saveCheckpoint(dir, { model: rot, tokenizer: tok });
  const { model } = await loadRewardTrunk(dir, { contextLength: 64 });
  t.is(model.config.language.contextLength, 64);
  t.is(model.config.language.positions, 'rotary');
  t.false(model.params.has('lm.pos_embed.weight'));
  const block = rot.parameters().find((p) => p.name.startsWith('lm.') && p.name.includes('attn') && p.name.endsWith('.weight'))!.name;
  t.deepEqual(model.params.get(block).arraySync(), rot.params.get(block).arraySync());
  const ids = Int32Array.from({ length: 60 }, (_, i) => 5 + (i % 7));
  const score = tf.tidy(() => model.rewardScores(model.forward({ batch: 1, length: 60, ids }).hidden, { batch: 1, length: 60, ids }).dataSync()[0]!);
  t.true(Number.isFinite(score));
  model.dispose();
  rot.dispose();
});

test('loadRewardModel refuses a checkpoint without a trained reward head; a missing folder names it', async (t) => {
  const e1 = await t.throwsAsync(loadRewardModel(sft));
  t.is((e1 as { code?: string }).code, 'FF_ERR_CHECKPOINT');
  t.regex(e1!.message, /not a reward model/);
  const missing = path.join(root, 'nope');
  const e2 = await t.throwsAsync(loadRewardTrunk(missing));
  t.is((e2 as { code?: string }).code, 'FF_ERR_CHECKPOINT');
  t.true(e2!.message.includes(missing));
});

test('encodeRewardPair: both prompts keep the same captions when the context cuts them', async (t) => {
  const { model } = await loadRewardTrunk(sft, { contextLength: 256 });
  const facts = ['A red circle.', 'A blue star.', 'A red circle and a blue star.', 'A red circle.'];
  const turns = [{ from: 'human' as const, value: 'a red circle' }];
  const short = { id: 'p', pixels: null, turns, response: 'A red circle.', facts };
  const long = { id: 'p', pixels: null, turns, response: 'A red circle and a blue star and a red circle and a blue star.', facts };
  // room for the long response with two captions: the short one alone would fit more
  const longTwo = encodeRewardPrompt(tok, { ...long, turns }, { facts: true, seed: 1, imageTokens: 0, maxFacts: 2 }).ids.length;
  const settings = { facts: true, seed: 1, maxLength: longTwo + 1 };
  const alone = encodeRewardPrompt(tok, { ...short, turns }, { facts: true, seed: 1, imageTokens: 0, maxLength: longTwo + 1 });
  t.true(alone.factsKept > 2);
  const [a, b] = encodeRewardPair(model, tok, short, long, settings);
  const tail = (ids: Int32Array) => tok.decode([...ids]).split('captions:')[1] ?? '';
  t.is(tail(a.ids), tail(b.ids));
  t.is(tail(a.ids).split('\n').length - 1, 2);
  t.true(a.ids.length <= longTwo + 1 && b.ids.length <= longTwo + 1);
  model.dispose();
});
