import test from 'ava';
import path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { RlPrompt } from '../../schemas/rl-prompt.ts';
import { rolloutSchema } from '../../schemas/rollout.ts';
import { FactflowError } from '../../src/errors.ts';
import { createLivePolicy } from '../../src/model/live-policy.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { responseBatch, responseLogprobs } from '../../src/rl/response-batch.ts';
import type { StageContext } from '../../src/stream/stage.ts';
import { rollout, type RolloutOptions, type RolloutRecord } from '../../transforms/rollout.ts';
import { toyConfig, toyPrompts, toyTokenizer } from '../sinks/ppo-toy.ts';
import { tempDir } from '../helpers/temp-dir.ts';

tf.env().set('PROD', true);
await tf.setBackend('wasm');

const tok = toyTokenizer();
const cfg = toyConfig(tok);
const model = createModel(cfg, { seed: 4 });

function stageContext(seed = 1): StageContext & { rejected: { record: unknown; reason: string; code?: string }[] } {
  const rejected: { record: unknown; reason: string; code?: string }[] = [];
  return {
    name: 'rollout', signal: new AbortController().signal, seed, counts: { in: 0, out: 0, rejected: 0 },
    reject(record, reason) {
      rejected.push({ record, reason: typeof reason === 'string' ? reason : reason.message, code: (reason as FactflowError).code });
    },
    note() {},
    rejected,
  };
}

async function* inBatches<T>(items: readonly T[], size: number): AsyncIterable<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

async function run(options: Partial<RolloutOptions>, prompts: RlPrompt[], ctx = stageContext(), inputBatch = 3): Promise<RolloutRecord[][]> {
  const policy = options.policy ?? createLivePolicy({ model, tokenizer: tok, systemPrompt: 'Hi.' });
  const stage = rollout({ batchSize: 4, maxResponseTokens: 6, ...options, policy });
  const out: RolloutRecord[][] = [];
  for await (const b of stage.run(inBatches(prompts, inputBatch), ctx)) out.push(b);
  return out;
}

test('rollout records: regrouped to batchSize, one token id and log-prob per response token, deterministic in the seed', async (t) => {
  const prompts = toyPrompts(10);
  const out = await run({}, prompts);
  t.deepEqual(out.map((b) => b.length), [4, 4, 2]);
  const flat = out.flat();
  t.deepEqual(flat.map((r) => r.id), prompts.map((p) => p.id));
  for (const [j, b] of out.entries()) {
    for (const r of b) {
      t.is(r.policy_version, j, 'no trainer: the version is the batch index');
      t.is(r.response_tokens, r.response_ids.length);
      t.is(r.logprobs.length, r.response_tokens);
      t.true(r.response_tokens >= 1 && r.response_tokens <= 6);
      t.true(r.logprobs.every((lp) => lp <= 0 && Number.isFinite(lp)));
      t.is(r.ended_with_eos, r.response_ids.at(-1) === tok.eosId);
      t.is(r.response, tok.decode(r.response_ids));
      t.true(Number.isNaN(r.reward_total), 'unscored until a scoring stage');
      t.deepEqual(r.values, []);
      // every schema field is there (response_ids is the one extra)
      const { response_ids: _ids, ...rest } = r;
      t.is(rolloutSchema.validate({ ...rest, reward_model: 0, reward_total: 0, reward_length: 0, reward_correctness: 0, reward_no_eos: 0, kl_mean: 0 }), null);
    }
  }
  const again = await run({}, prompts);
  t.deepEqual(again.flat().map((r) => r.response_ids), flat.map((r) => r.response_ids));
  const other = await run({}, prompts, stageContext(2));
  t.notDeepEqual(other.flat().map((r) => r.response_ids), flat.map((r) => r.response_ids));
});

test('log-probs agree with a full forward pass; with the policy as reference, ref_logprobs match and kl_mean is 0', async (t) => {
  const reference = createModel(cfg, { seed: 4 });
  const out = (await run({ reference }, toyPrompts(4))).flat();
  const policy = createLivePolicy({ model, tokenizer: tok, systemPrompt: 'Hi.' });
  const rb = responseBatch(model, out.map((r) => {
    const enc = policy.encodeIds(r);
    return { promptIds: enc.ids, imagePositions: enc.imagePositions, pixels: null, responseIds: r.response_ids };
  }), tok.padId);
  const full = await responseLogprobs(model, rb);
  out.forEach((r, b) => {
    r.logprobs.forEach((lp, i) => t.true(Math.abs(lp - full[b]![i]!) < 1e-4, `${lp} vs ${full[b]![i]}`));
    r.ref_logprobs.forEach((lp, i) => t.true(Math.abs(lp - full[b]![i]!) < 1e-5));
    t.true(r.kl_mean >= 0 && r.kl_mean < 1e-4, `kl_mean ${r.kl_mean}`);
  });
  reference.dispose();
});

test('a prompt longer than the limit is rejected with its length and the limit; the rest go through', async (t) => {
  const prompts = toyPrompts(5);
  prompts[1] = { ...prompts[1]!, conversations: [{ from: 'human', value: 'a very long question about many red circles and blue squares' }] };
  const ctx = stageContext();
  const out = await run({ maxPromptTokens: 40 }, prompts, ctx);
  t.deepEqual(out.flat().map((r) => r.id), ['toy-0', 'toy-2', 'toy-3', 'toy-4']);
  t.is(ctx.rejected.length, 1);
  t.is(ctx.rejected[0]!.record, prompts[1]);
  t.is(ctx.rejected[0]!.code, 'FF_ERR_BAD_RECORD');
  t.regex(ctx.rejected[0]!.reason, /prompt has \d+ tokens \(0 of them image tokens\), over the limit of 40/);
});

test('every prompt rejected: the stage stops with a clear error instead of rejecting forever', async (t) => {
  const ctx = stageContext();
  const err = await t.throwsAsync(run({ maxPromptTokens: 5, maxConsecutiveRejects: 20 }, toyPrompts(50), ctx));
  t.is((err as FactflowError).code, 'FF_ERR_BAD_INPUT');
  t.regex(err!.message, /20 prompts in a row were rejected; the last because: prompt has \d+ tokens/);
});

test('with a trainer attached: batch j waits for step j, and a resumed run skips the steps already done', async (t) => {
  const policy = createLivePolicy({ model, tokenizer: tok, systemPrompt: 'Hi.' });
  policy.attachTrainer();
  const stage = rollout({ policy, batchSize: 2, maxResponseTokens: 4 });
  const it = stage.run(inBatches(toyPrompts(8), 3), stageContext())[Symbol.asyncIterator]();
  const first = it.next();
  policy.start(0);
  t.deepEqual((await first).value!.map((r: RolloutRecord) => r.policy_version), [0, 0]);
  let second = false;
  const next = it.next().then((r) => { second = true; return r; });
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.false(second, 'batch 1 waits until the trainer finished step 0');
  policy.advance();
  t.deepEqual((await next).value!.map((r: RolloutRecord) => r.id), ['toy-2', 'toy-3']);
  await it.return?.();

  const resumed = createLivePolicy({ model, tokenizer: tok, systemPrompt: 'Hi.' });
  resumed.attachTrainer();
  resumed.start(2);
  const prompts = toyPrompts(8);
  prompts[0] = { ...prompts[0]!, conversations: [{ from: 'human', value: 'far too long a question to fit in the prompt limit' }] };
  const ctx = stageContext();
  const it2 = rollout({ policy: resumed, batchSize: 2, maxResponseTokens: 4, maxPromptTokens: 40 }).run(inBatches(prompts, 3), ctx)[Symbol.asyncIterator]();
  const b = (await it2.next()).value as RolloutRecord[];
  t.deepEqual(b.map((r) => [r.id, r.policy_version]), [['toy-5', 2], ['toy-6', 2]], 'groups 0-1 (toy-1..4) skipped, toy-0 rejected back then');
  t.is(ctx.rejected.length, 0, 'rejections of skipped steps are not recorded again');
  resumed.finish();
  await t.throwsAsync(it2.next(), { message: /PPO trainer has finished/ });

  // the trainer's step count ends the stage: no rollouts past it
  const limited = createLivePolicy({ model, tokenizer: tok, systemPrompt: 'Hi.' });
  limited.attachTrainer();
  limited.start(0, 1);
  const it3 = rollout({ policy: limited, batchSize: 2, maxResponseTokens: 4 }).run(inBatches(toyPrompts(8), 3), stageContext())[Symbol.asyncIterator]();
  t.is(((await it3.next()).value as RolloutRecord[]).length, 2);
  limited.advance();
  t.true((await it3.next()).done);
});

test('image prompts: pixels are read from the image folder; without one the prompt is rejected', async (t) => {
  const dir = await tempDir(t, 'rollout-img-');
  await sharp({ create: { width: 20, height: 12, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toFile(path.join(dir, 'red.png'));
  const prompt: RlPrompt = { ...toyPrompts(1)[0]!, image: 'red.png', conversations: [{ from: 'human', value: '<image>\nred?' }] };
  const withImages = createLivePolicy({ model, tokenizer: tok, systemPrompt: 'Hi.', imageRoot: dir });
  const out = (await run({ policy: withImages, batchSize: 1 }, [prompt])).flat();
  t.is(out.length, 1);
  t.true(out[0]!.response_tokens >= 1);
  const enc = await withImages.encode(prompt);
  t.is(enc.imagePositions.length, (cfg.vision.imageSize / cfg.vision.patchSize) ** 2);
  t.is(enc.pixels!.length, cfg.vision.imageSize ** 2 * 3);

  const ctx = stageContext();
  const none = await run({ batchSize: 1 }, [prompt], ctx);
  t.is(none.length, 0);
  t.regex(ctx.rejected[0]!.reason, /has an image \(red\.png\) but no image folder was given/);
  const missing = stageContext();
  await run({ policy: withImages, batchSize: 1 }, [{ ...prompt, image: 'nope.png' }], missing);
  t.is(missing.rejected[0]!.code, 'FF_ERR_BAD_INPUT');
  t.true(missing.rejected[0]!.reason.includes(path.join(dir, 'nope.png')));
});

test('options are checked when the stage is built', (t) => {
  const policy = createLivePolicy({ model, tokenizer: tok });
  const cases: [Partial<RolloutOptions>, string][] = [
    [{ batchSize: 0 }, 'rollout.batchSize'],
    [{ maxResponseTokens: 64 }, 'rollout.maxResponseTokens'],
    [{ maxPromptTokens: 60 }, 'rollout.maxPromptTokens'],
    [{ temperature: 0 }, 'rollout.temperature'],
    [{ topP: 0 }, 'rollout.topP'],
    [{ klEstimator: 'kx' as never }, 'rollout.klEstimator'],
  ];
  for (const [patch, option] of cases) {
    const err = t.throws(() => rollout({ policy, batchSize: 2, maxResponseTokens: 8, ...patch }));
    t.is((err as FactflowError).code, 'FF_ERR_INVALID_OPTION');
    t.true(err!.message.includes(option), err!.message);
  }
});
