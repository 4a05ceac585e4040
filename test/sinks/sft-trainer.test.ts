import test from 'ava';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { generateShapesWorld } from '../../sources/shapes-world.ts';
import { repeatEpochs } from '../../sources/repeat-epochs.ts';
import { objectKey, objectPhrase, COLORS, SHAPES, type GroundTruth } from '../../schemas/shapes-world.ts';
import type { Conversation } from '../../schemas/conversation.ts';
import { runFlow } from '../../src/stream/flow.ts';
import { withOrigin } from '../../src/stream/origin.ts';
import type { Source, Stage } from '../../src/stream/stage.ts';
import { Rng } from '../../src/stream/random.ts';
import { buildTokenizer, tokenizerConfigFor } from '../../src/model/build-tokenizer.ts';
import { tokenizerFromJson } from '../../src/model/tokenizer.ts';
import { TINY_MODEL_CONFIG, imageTokenCount, resolveModelConfig, type ModelConfig } from '../../src/model/config.ts';
import { createModel } from '../../src/model/multimodal-model.ts';
import { createImageLoader } from '../../src/model/image-input.ts';
import { loadModel } from '../../src/model/checkpoint.ts';
import { collate, encodeExample } from '../../src/model/collate.ts';
import { tokenizeConversation } from '../../transforms/tokenize-conversation.ts';
import { bucketBatch } from '../../transforms/bucket-by-length.ts';
import { sftTrainer, type SftMetrics, type SftTrainerOptions } from '../../sinks/sft-trainer.ts';
import { removeAfterAll } from '../helpers/temp-dir.ts';

tf.env().set('PROD', true);
await tf.setBackend('wasm');

const SYSTEM = 'A chat.';
const root = await mkdtemp(path.join(os.tmpdir(), 'ff-sft-'));
const world = path.join(root, 'world');
await generateShapesWorld({ out: world, seed: 3, images: 24, flickrImages: 0, evalImages: 4, mmhalPerType: 0, preferencePerImage: 0 });
const truths: GroundTruth[] = (await readFile(path.join(world, 'ground_truth.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as GroundTruth);

/** Two yes/no rounds per image, phrased as the VQA-v2 conversion does. */
function records(): Conversation[] {
  const rng = new Rng(9);
  return truths.filter((g) => g.split === 'train').map((g) => {
    const present = g.objects[0]!;
    let absent = { color: rng.pick(COLORS), shape: rng.pick(SHAPES) };
    while (g.objects.some((o) => objectKey(o) === objectKey(absent))) absent = { color: rng.pick(COLORS), shape: rng.pick(SHAPES) };
    return {
      id: g.image, image: g.image, source: 'test', meta: '',
      conversations: [
        { from: 'human', value: `<image>\nIs there ${objectPhrase(present, { size: false })}?` }, { from: 'gpt', value: 'Yes' },
        { from: 'human', value: `Is there ${objectPhrase(absent, { size: false })}?` }, { from: 'gpt', value: 'No' },
      ],
    };
  });
}
const RECORDS = records();
const tok = tokenizerFromJson(buildTokenizer([`${SYSTEM} USER: ASSISTANT: Yes No`, ...RECORDS.flatMap((r) => r.conversations.map((c) => c.value.replace('<image>', '')))], { vocabSize: 160 }), tokenizerConfigFor());
const config = resolveModelConfig({ language: { vocabSize: tok.vocabSize, contextLength: 64 }, heads: ['lm'] }, TINY_MODEL_CONFIG);
const N_IMG = imageTokenCount(config);

function arraySource(items: readonly Conversation[]): Source<Conversation> {
  return { name: 'records', async *read() { let i = 0; for (const r of items) yield withOrigin({ ...r }, { file: 'memory.jsonl', line: i + 1, index: i++ }); } };
}

interface RunResult { summary: Awaited<ReturnType<ReturnType<typeof sftTrainer>['write']>>; metrics: SftMetrics[]; rejected: number; deadLetters: string }

async function train(out: string, extra: Partial<SftTrainerOptions> = {}, options: { records?: Conversation[]; signal?: AbortSignal; policy?: 'skip' | 'fail'; epochs?: number; config?: ModelConfig } = {}): Promise<RunResult> {
  const model = createModel(options.config ?? config, { seed: 5 });
  const images = createImageLoader({ size: config.vision.imageSize, root: path.join(world, 'images') });
  const heldoutExamples = await Promise.all(truths.filter((g) => g.split === 'eval').map(async (g) => encodeExample(tok, g.image, [
    { from: 'human', value: `<image>\nIs there ${objectPhrase(g.objects[0]!, { size: false })}?` }, { from: 'gpt', value: 'Yes' },
  ], await images.load(g.image), { imageTokens: N_IMG, maxLength: 64, systemPrompt: SYSTEM })));
  const heldout = [collate(heldoutExamples, { padId: tok.padId, imageTokens: N_IMG, pixelsPerImage: config.vision.imageSize ** 2 * 3 })];
  try {
    const flow = await runFlow({
      source: repeatEpochs({ source: arraySource(options.records ?? RECORDS), epochs: options.epochs ?? 20 }),
      stages: [
        tokenizeConversation({ tokenizer: tok, images, imageTokens: N_IMG, maxLength: 64, systemPrompt: SYSTEM }),
        bucketBatch({ batchSize: 4, windowBatches: 2 }),
      ] as Stage<never, unknown>[],
      sink: sftTrainer({ model, tokenizer: tok, out, steps: 12, lr: 5e-3, warmup: 2, logEvery: 1, heldout, examplesPerEpoch: RECORDS.length, ...extra }),
    }, { seed: 11, deadLetterPath: path.join(out, 'rejected.jsonl'), signal: options.signal, policy: options.policy });
    const metrics = (await readFile(path.join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as SftMetrics);
    return { summary: flow.result, metrics, rejected: flow.rejected, deadLetters: flow.deadLetterPath };
  } finally {
    model.dispose();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

removeAfterAll(root); // after the setup above: no top-level await may follow a hook

test.serial('trains: loss goes down, one metrics line per step, checkpoint written and loadable', async (t) => {
  const out = path.join(root, 'run-basic');
  const r = await train(out, { steps: 40, checkpointEvery: 20, evalEvery: 20 });
  t.is(r.summary.steps, 40);
  t.is(r.metrics.length, 40);
  t.deepEqual(r.metrics.map((m) => m.step), Array.from({ length: 40 }, (_, i) => i + 1));
  for (const m of r.metrics) {
    for (const k of ['step', 'loss', 'lr', 'grad_norm', 'tokens_per_s', 'epoch', 'elapsed_s'] as const) t.is(typeof m[k], 'number', `${k} in ${JSON.stringify(m)}`);
  }
  t.true(r.metrics[0]!.lr < r.metrics[2]!.lr, 'warmup raises the learning rate');
  t.true(r.metrics[39]!.lr < r.metrics[10]!.lr, 'cosine lowers it');
  t.is(r.metrics.filter((m) => m.heldout_loss !== undefined).length, 2);
  const first = mean(r.metrics.slice(0, 5).map((m) => m.loss));
  const last = mean(r.metrics.slice(-5).map((m) => m.loss));
  t.true(last < first * 0.5, `loss ${first.toFixed(3)} -> ${last.toFixed(3)}`);
  t.true(r.summary.heldout_loss! > 0 && Number.isFinite(r.summary.heldout_loss!));
  t.true(Math.abs(r.metrics[39]!.epoch! - (40 * 4) / RECORDS.length) < 1e-3);
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'optimizer.safetensors', 'trainer_state.json']) {
    t.true((await stat(path.join(out, 'checkpoint', f))).size > 0, f);
  }
  const { model, checkpoint } = await loadModel(path.join(out, 'checkpoint'));
  t.is(checkpoint.state.step, 40);
  t.is(model.parameterCount(), r.summary.parameters);
  t.deepEqual(checkpoint.tokenizer.encode('Is there a red circle?'), tok.encode('Is there a red circle?'));
  model.dispose();
});

test.serial('resume after an interruption: continues at the checkpoint step with the same losses as an uninterrupted run', async (t) => {
  const whole = await train(path.join(root, 'run-whole'), { steps: 12, checkpointEvery: 4 });
  const out = path.join(root, 'run-split');
  const ac = new AbortController();
  const err = await t.throwsAsync(train(out, { steps: 12, checkpointEvery: 4, onStep: (s) => { if (s === 6) ac.abort(new Error('stop')); } }, { signal: ac.signal }));
  t.is((err as { code?: string }).code, 'FF_ERR_ABORTED');
  const state = JSON.parse(await readFile(path.join(out, 'checkpoint', 'trainer_state.json'), 'utf8')) as { step: number };
  t.is(state.step, 4);
  const resumed = await train(out, { steps: 12, checkpointEvery: 4 });
  t.is(resumed.summary.resumed_from, 4);
  t.is(resumed.summary.steps, 12);
  t.deepEqual(resumed.metrics.map((m) => m.step), Array.from({ length: 12 }, (_, i) => i + 1));
  const a = whole.metrics.map((m) => m.loss);
  const b = resumed.metrics.map((m) => m.loss);
  t.deepEqual(b.slice(4), a.slice(4), 'steps 5..12 after resuming');
  t.deepEqual(b.slice(0, 4), a.slice(0, 4), 'steps 1..4 kept from the first run');
});

test.serial('resume into a model configured otherwise is refused, naming what differs (head counts leave the weights\' shapes alone)', async (t) => {
  const out = path.join(root, 'run-other-config');
  await train(out, { steps: 2, checkpointEvery: 2 });
  const other = resolveModelConfig({ language: { heads: 4 } }, config);
  const err = await t.throwsAsync(train(out, { steps: 4, checkpointEvery: 2 }, { config: other }));
  t.is((err as { code?: string }).code, 'FF_ERR_CHECKPOINT');
  t.regex(err!.message, /trained as another model \(language\.heads 2 -> 4\)/);
  t.regex((err as { fix?: string }).fix ?? '', /settings it was trained with/);
  // the checkpoint is left as it was
  const state = JSON.parse(await readFile(path.join(out, 'checkpoint', 'trainer_state.json'), 'utf8')) as { step: number };
  t.is(state.step, 2);
});

test.serial('bad records are rejected with a reason and their location; training goes on', async (t) => {
  const bad: Conversation[] = [
    { ...RECORDS[0]!, id: 'missing-image', image: 'coco/train2017/nope.jpg' },
    { ...RECORDS[1]!, id: 'bad-turns', conversations: [{ from: 'gpt', value: 'Yes' }] },
  ];
  const out = path.join(root, 'run-bad');
  const r = await train(out, { steps: 3 }, { records: [...RECORDS.slice(0, 8), ...bad], epochs: 1 });
  t.is(r.rejected, 2);
  const letters = (await readFile(r.deadLetters, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const text = JSON.stringify(letters);
  t.regex(text, /image \\"coco\/train2017\/nope.jpg\\" of record \\"missing-image\\" cannot be read/);
  t.regex(text, /not a conversation record/);
  // 8 good records make 2 batches: the data runs out before step 3, and the run still ends with a checkpoint
  t.is(r.summary.steps, 2);
  t.is((JSON.parse(await readFile(path.join(out, 'checkpoint', 'trainer_state.json'), 'utf8')) as { step: number }).step, 2);
  const failed = await t.throwsAsync(train(path.join(root, 'run-bad-fail'), { steps: 3 }, { records: [...RECORDS.slice(0, 8), bad[0]!], epochs: 1, policy: 'fail' }));
  t.is((failed as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.true(failed!.message.includes('memory.jsonl:9') && failed!.message.includes('stage "tokenize"'), failed!.message);
});

test.serial('threads=2: a bad record fails the run naming it; with the policy "skip" the run goes on past it', async (t) => {
  const bad = { ...RECORDS[0]!, id: 'missing-image', image: 'coco/train2017/nope.jpg' };
  // 8 good records are 2 batches, then the bad one
  const failed = await t.throwsAsync(train(path.join(root, 'run-t2-bad'), { steps: 5, threads: 2 }, { records: [...RECORDS.slice(0, 8), bad, ...RECORDS.slice(8, 16)], epochs: 1, policy: 'fail' }));
  t.is((failed as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.true(failed!.message.includes('memory.jsonl:9') && failed!.message.includes('stage "tokenize"'), failed!.message);
  // with the policy "skip" the run goes on past it, as with one thread
  const skipped = await train(path.join(root, 'run-t2-skip'), { steps: 5, threads: 2 }, { records: [...RECORDS.slice(0, 8), bad, ...RECORDS.slice(8, 16)], epochs: 1 });
  t.is(skipped.rejected, 1);
  t.is(skipped.summary.steps, 4);
});

test.serial('threads=2 (data parallel): the same losses as one thread up to float rounding', async (t) => {
  const one = await train(path.join(root, 'run-t1'), { steps: 6 });
  const two = await train(path.join(root, 'run-t2'), { steps: 6, threads: 2 });
  t.is(two.summary.steps, 6);
  one.metrics.forEach((m, i) => {
    const m2 = two.metrics[i]!;
    t.true(Math.abs(m.loss - m2.loss) < 1e-4 * Math.max(1, m.loss), `step ${m.step}: ${m.loss} vs ${m2.loss}`);
    t.true(Math.abs(m.grad_norm - m2.grad_norm) < 1e-3 * Math.max(1, m.grad_norm), `step ${m.step} norm: ${m.grad_norm} vs ${m2.grad_norm}`);
  });
});

test.serial('frozen vision (one thread and two): the encoder keeps its weights bit for bit, the rest trains', async (t) => {
  for (const threads of [1, 2]) {
    const out = path.join(root, `run-frozen-${threads}`);
    const r = await train(out, { steps: 4, frozen: ['vision.'], threads });
    t.is(r.summary.steps, 4);
    const fresh = createModel(config, { seed: 5 });
    const { model } = await loadModel(path.join(out, 'checkpoint'));
    const before = new Map(fresh.parameters().map((p) => [p.name, Array.from(p.variable.dataSync())]));
    let vision = 0;
    let changed = 0;
    for (const p of model.parameters()) {
      const same = JSON.stringify(Array.from(p.variable.dataSync())) === JSON.stringify(before.get(p.name));
      if (p.name.startsWith('vision.')) { vision++; t.true(same, `${p.name} moved (threads ${threads})`); } else if (!same) changed++;
    }
    t.true(vision > 0);
    t.true(changed > 10, `${changed} trainable tensors changed (threads ${threads})`);
    fresh.dispose();
    model.dispose();
  }
  const model = createModel(config);
  t.throws(() => sftTrainer({ model, tokenizer: tok, out: root, steps: 1, lr: 1, frozen: [''] }), { message: /freezes every parameter/ });
  model.dispose();
});

test('options are checked before any stream exists', (t) => {
  const model = createModel(config, { seed: 1 });
  try {
    const e = t.throws(() => sftTrainer({ model, tokenizer: tok, out: root, steps: 0, lr: 1e-3 }));
    t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
    t.true(e!.message.includes('"steps"'));
    t.throws(() => sftTrainer({ model, tokenizer: tok, out: root, steps: 5, lr: -1 }), { code: 'FF_ERR_INVALID_OPTION', message: /"lr"/ });
    t.throws(() => tokenizeConversation({ tokenizer: tok, images: createImageLoader({ size: 16 }), imageTokens: 4, maxLength: 4 }), { code: 'FF_ERR_INVALID_OPTION', message: /"maxLength"/ });
  } finally {
    model.dispose();
  }
});
