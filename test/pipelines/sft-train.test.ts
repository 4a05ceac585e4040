import test from 'ava';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sftTrain from '../../pipelines/sft-train.ts';
import { runPipeline } from '../../src/pipeline/run-pipeline.ts';
import { readSafetensors } from '../../src/model/safetensors.ts';
import { loadTokenizer } from '../../src/model/tokenizer.ts';
import { VICUNA_SYSTEM_PROMPT } from '../../src/model/chat-template.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-sft-train-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A tiny model on a tiny world: every stage of the pipeline, in seconds. */
const TINY = {
  world_images: 24, steps: 4, vision_pretrain_steps: 3, vision_batch_size: 4, batch_size: 4, warmup: 1, image_size: 16, patch_size: 8, vision_width: 16, vision_layers: 1, vision_heads: 2,
  width: 16, layers: 1, heads: 2, max_length: 192, vocab_size: 256, checkpoint_every: 2, eval_every: 2, log_every: 1,
  eval_images: 2, heldout_loss_questions: 4, threads: 1,
};

test.serial('makes the world and the SFT mix, trains, evaluates; a rerun only evaluates the finished checkpoint', async (t) => {
  const out = path.join(tmp, 'sft');
  const params = { ...TINY, world: path.join(tmp, 'world'), mix: path.join(tmp, 'mix'), align_projector: true };
  const summary = await runPipeline(sftTrain, { out, params, backend: 'wasm', cwd: ROOT });
  const result = summary.result as {
    heldout: { loss: number; yesno_accuracy: number; multichoice_accuracy: number; questions: number };
    parameters: { total: number }; backend: { name: string }; tokens_per_s: number; train: { steps: number }; world: string;
    vision_pretraining: { steps: number; images: number; heldout: { images: number; ranking_accuracy: number }; projector_alignment: { patches: number; tags_used: number; r2: number } }; frozen: string[];
  };
  t.is(result.train.steps, 4);
  // stage 1 ran on the world's captions, and SFT kept the encoder it made
  t.is(result.vision_pretraining.steps, 3);
  t.is(result.vision_pretraining.images, 12);
  t.true(result.vision_pretraining.heldout.images > 0);
  t.deepEqual(result.frozen, ['vision.']);
  // the projector started from the tag words' embeddings: 8 colours + 6 shapes, 4 patches an image
  const aligned = result.vision_pretraining.projector_alignment;
  t.is(aligned.tags_used, 14);
  t.true(aligned.patches > 0 && aligned.patches % 4 === 0);
  t.true(aligned.r2 > 0 && aligned.r2 <= 1, `R^2 ${aligned.r2}`);
  const visionLines = (await readFile(path.join(out, 'vision_metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { step: number });
  t.is(visionLines.at(-1)!.step, 3);
  t.true(result.heldout.loss > 0);
  t.true(result.heldout.yesno_accuracy >= 0 && result.heldout.yesno_accuracy <= 1);
  t.true(result.heldout.multichoice_accuracy >= 0 && result.heldout.multichoice_accuracy <= 1);
  t.true(result.heldout.questions > 0);
  t.true(result.parameters.total > 0);
  t.is(result.backend.name, 'wasm');
  t.true(result.tokens_per_s > 0);
  t.is(result.world, path.join(tmp, 'world'));
  const onDisk = JSON.parse(await readFile(path.join(out, 'summary.json'), 'utf8')) as { result: typeof result };
  t.is(onDisk.result.heldout.yesno_accuracy, result.heldout.yesno_accuracy);
  const metrics = (await readFile(path.join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { step: number });
  t.deepEqual(metrics.map((m) => m.step), [1, 2, 3, 4]);
  for (const f of ['checkpoint/model.safetensors', 'checkpoint/optimizer.safetensors', 'checkpoint/config.json', 'checkpoint/tokenizer.json', 'tokenizer.json', 'heldout_answers.jsonl']) {
    t.true((await stat(path.join(out, f))).size > 0, f);
  }
  // the mix was made with A-OKVQA in the direct format the held-out questions use
  const mixRun = JSON.parse(await readFile(path.join(tmp, 'mix', 'summary.json'), 'utf8')) as { params: { aokvqa_mode: string } };
  t.is(mixRun.params.aokvqa_mode, 'direct');

  const logs: string[] = [];
  const again = await runPipeline(sftTrain, { out, params, backend: 'wasm', cwd: ROOT, log: (m) => logs.push(m) });
  t.true(logs.some((l) => l.includes('has finished 4 steps')), logs.join('\n'));
  t.is((again.result as typeof result).heldout.yesno_accuracy, result.heldout.yesno_accuracy);
});

test.serial('init starts from a trained policy: its weights, config and tokenizer, a fresh schedule, no vision pretraining', async (t) => {
  const first = path.join(tmp, 'sft');
  await runPipeline(sftTrain, { out: first, params: { ...TINY, world: path.join(tmp, 'world'), mix: path.join(tmp, 'mix'), align_projector: true }, backend: 'wasm', cwd: ROOT });
  const out = path.join(tmp, 'stage2');
  const logs: string[] = [];
  // width 32 is not the init's 16: the model-size params do not apply to a started policy
  const summary = await runPipeline(sftTrain, {
    out, params: { ...TINY, world: path.join(tmp, 'world'), mix: path.join(tmp, 'mix'), init: first, width: 32, steps: 2, lr: 1e-3 }, backend: 'wasm', cwd: ROOT, log: (m) => logs.push(m),
  });
  const result = summary.result as { init: string; vision_pretraining: unknown; frozen: string[]; model: { language: { width: number } }; train: { steps: number } };
  t.is(result.init, path.join(first, 'checkpoint'));
  t.is(result.vision_pretraining, null);
  t.deepEqual(result.frozen, ['vision.']);
  t.is(result.model.language.width, 16);
  t.is(result.train.steps, 2);
  t.true(logs.some((l) => l.includes('starting from the policy in')), logs.join('\n'));
  t.is(await readFile(path.join(out, 'tokenizer.json'), 'utf8'), await readFile(path.join(first, 'tokenizer.json'), 'utf8'));
  const before = (await readSafetensors(path.join(first, 'checkpoint', 'model.safetensors'))).tensors;
  const after = (await readSafetensors(path.join(out, 'checkpoint', 'model.safetensors'))).tensors;
  const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  const same = (name: string) => Buffer.compare(bytes(before.get(name)!.data), bytes(after.get(name)!.data)) === 0;
  const names = [...before.keys()];
  t.is(after.size, before.size);
  // the frozen encoder is the init's bit for bit; the language model moved on from it
  t.true(names.filter((n) => n.startsWith('vision.')).every(same));
  t.false(names.filter((n) => n.startsWith('lm.')).every(same));
  // a fresh schedule: warmup from the start, not the init's last learning rate
  const lrs = (await readFile(path.join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { lr: number }).lr);
  t.is(lrs[0], 1e-3);

  const err = await t.throwsAsync(runPipeline(sftTrain, { out: path.join(tmp, 'bad-init'), params: { ...TINY, world: path.join(tmp, 'world'), mix: path.join(tmp, 'mix'), init: path.join(tmp, 'mix') }, backend: 'wasm', cwd: ROOT }));
  t.is((err as { code?: string }).code, 'FF_ERR_CHECKPOINT');
  t.true(err!.message.includes('no checkpoint at'), err!.message);
});

test('bad params fail before any work', async (t) => {
  const err = await t.throwsAsync(runPipeline(sftTrain, { out: path.join(tmp, 'bad'), params: { ...TINY, image_size: 20, patch_size: 8 }, cwd: ROOT }));
  t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.true(err!.message.includes('image_size'));
  const beta = await t.throwsAsync(runPipeline(sftTrain, { out: path.join(tmp, 'bad-beta'), params: { ...TINY, adam_beta2: 1 }, cwd: ROOT }));
  t.is((beta as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.true(beta!.message.includes('adam_beta2'));
});

test.serial('vision_lr sets the vision pretraining learning rate apart from the SFT one; 0 is refused', async (t) => {
  const err = await t.throwsAsync(runPipeline(sftTrain, { out: path.join(tmp, 'bad-vlr'), params: { ...TINY, vision_lr: 0 }, cwd: ROOT }));
  t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.true(err!.message.includes('vision_lr'));
  const out = path.join(tmp, 'vlr');
  // world_images names a size the existing 24-image world does not have: the world is used as it is, and the log says so
  const logs: string[] = [];
  await runPipeline(sftTrain, { out, params: { ...TINY, world: path.join(tmp, 'world'), mix: path.join(tmp, 'mix'), world_images: 30, vision_pretrain_steps: 20, vision_lr: 0.0125, steps: 1, eval_images: 1 }, backend: 'wasm', cwd: ROOT, log: (m) => logs.push(m) });
  t.true(logs.some((l) => l.includes('using the existing world') && l.includes('(24 images; world_images=30 applies only when a world is made')), logs.join('\n'));
  const rows = (await readFile(path.join(out, 'vision_metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { lr: number });
  t.is(Math.max(...rows.map((r) => r.lr)), 0.0125);
  const sft = (await readFile(path.join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { lr: number });
  t.true(sft.every((r) => r.lr <= 2e-3), 'SFT keeps lr');
});

test.serial('system_prompt: saved with the tokenizer, so the checkpoint prompts as it trained; a started policy keeps its own; <image> refused', async (t) => {
  const err = await t.throwsAsync(runPipeline(sftTrain, { out: path.join(tmp, 'bad-sys'), params: { ...TINY, system_prompt: 'see <image>' }, cwd: ROOT }));
  t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.true(err!.message.includes('system_prompt'));
  const out = path.join(tmp, 'nosys');
  const params = { ...TINY, world: path.join(tmp, 'world'), mix: path.join(tmp, 'mix'), system_prompt: '', steps: 1, eval_images: 1 };
  await runPipeline(sftTrain, { out, params, backend: 'wasm', cwd: ROOT });
  for (const dir of [out, path.join(out, 'checkpoint')]) {
    t.is((await loadTokenizer(dir)).systemPrompt, '', dir);
  }
  // the default writes Vicuna's, so a checkpoint says which it trained with
  const vicuna = path.join(tmp, 'vicuna');
  await runPipeline(sftTrain, { out: vicuna, params: { ...params, system_prompt: 'vicuna' }, backend: 'wasm', cwd: ROOT });
  t.is((await loadTokenizer(path.join(vicuna, 'checkpoint'))).systemPrompt, VICUNA_SYSTEM_PROMPT);
  const logs: string[] = [];
  const second = path.join(tmp, 'nosys-init');
  await runPipeline(sftTrain, { out: second, params: { ...params, init: out, system_prompt: 'Be brief.' }, backend: 'wasm', cwd: ROOT, log: (m) => logs.push(m) });
  t.is((await loadTokenizer(path.join(second, 'checkpoint'))).systemPrompt, '');
  t.true(logs.some((l) => l.includes('system_prompt does not apply to a started policy')), logs.join('\n'));
});

test.serial('vision_world: vision pretraining learns from a world of its own, made with its own seed; the SFT world\'s held-out images score it', async (t) => {
  const out = path.join(tmp, 'vworld-run');
  const corpus = path.join(tmp, 'vworld');
  const summary = await runPipeline(sftTrain, {
    out, params: { ...TINY, world: path.join(tmp, 'world'), mix: path.join(tmp, 'mix'), vision_world: corpus, vision_world_images: 40, vision_pretrain_steps: 12, steps: 1, eval_images: 1 }, backend: 'wasm', cwd: ROOT,
  });
  const made = JSON.parse(await readFile(path.join(corpus, 'summary.json'), 'utf8')) as { seed: number; params: { images: number } };
  t.is(made.params.images, 40);
  t.is(made.seed, 1001, 'the corpus is not the SFT world drawn again');
  const result = summary.result as { vision_pretraining: { images: number; heldout: { images: number }; projector_alignment?: unknown } };
  t.is(result.vision_pretraining.projector_alignment, undefined, 'align_projector is off by default: the projector stays as initialised');
  // 12 steps x 4 images: more than the SFT world's 18 training images, all from the corpus's 40
  t.is(result.vision_pretraining.images, 48);
  t.true(result.vision_pretraining.heldout.images > 0);
  const scenes = async (dir: string) => (await readFile(path.join(dir, 'ground_truth.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.stringify((JSON.parse(l) as { objects: unknown }).objects));
  const own = new Set(await scenes(path.join(tmp, 'world')));
  const theirs = await scenes(corpus);
  t.true(theirs.length >= 40);
  t.true(theirs.filter((s) => own.has(s)).length < theirs.length / 4, 'mostly other scenes');
  const flows = (summary as unknown as { flows: { name: string; stages: { name: string; in: number }[] }[] }).flows;
  // 48 images over the corpus's 40 training images (none held out: a corpus has nothing to keep out): two epochs of 40
  const training = flows.find((f) => f.name === 'vision')!.stages.find((st) => st.name === 'training-images')!;
  t.is(training.in, 80);
});
