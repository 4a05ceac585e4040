/**
 * PPO throughput at the default size: the ppo pipeline's defaults (batch, minibatch, epochs,
 * response length) on the model size sft-train makes by default, through the real stages
 * (rollout -> reward-score -> tee(journal) -> ppo-trainer) on synthetic image prompts.
 * Reports prompts/s and the share of each step spent generating, scoring and updating (first
 * step left out: wasm is still being optimised then). Weights are random, so responses run to
 * the token limit: the generation share is an upper bound for a trained policy.
 *
 *   npm run bench -- ppo                       # wasm (default)
 *   FACTFLOW_BENCH_BACKEND=webgpu npm run bench -- ppo
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import type { RlPrompt } from '../schemas/rl-prompt.ts';
import { selectBackend, type BackendChoice } from '../src/model/backend.ts';
import { buildTokenizer, tokenizerConfigFor } from '../src/model/build-tokenizer.ts';
import { VICUNA_SYSTEM_PROMPT } from '../src/model/chat-template.ts';
import { DEFAULT_MODEL_CONFIG, resolveModelConfig } from '../src/model/config.ts';
import { createImageLoader } from '../src/model/image-input.ts';
import { createLivePolicy } from '../src/model/live-policy.ts';
import { createModel } from '../src/model/multimodal-model.ts';
import { REWARD_PROMPT_CORPUS } from '../src/model/reward-prompt.ts';
import { tokenizerFromJson } from '../src/model/tokenizer.ts';
import { batch } from '../src/stream/batch.ts';
import { runFlow } from '../src/stream/flow.ts';
import type { Source, Stage } from '../src/stream/stage.ts';
import { tee } from '../src/stream/tee.ts';
import { ppoTrainer, type PpoMetrics } from '../sinks/ppo-trainer.ts';
import { rolloutJournal } from '../sinks/rollout-journal.ts';
import { rewardScore } from '../transforms/reward-score.ts';
import { rollout, type RolloutRecord } from '../transforms/rollout.ts';
import ppo from '../pipelines/ppo.ts';
import sftTrain from '../pipelines/sft-train.ts';
import type { BenchFn, BenchRow } from './types.ts';

const SUITE = 'ppo';
const COLOURS = ['red', 'green', 'blue', 'yellow', 'black', 'orange'];
const SHAPES = ['circle', 'square', 'triangle', 'star', 'diamond'];

function num(spec: unknown, fallback: number): number {
  const d = (spec as { default?: unknown } | undefined)?.default;
  return typeof d === 'number' ? d : fallback;
}

export const bench: BenchFn = async ({ quick }) => {
  const backend = await selectBackend((process.env.FACTFLOW_BENCH_BACKEND ?? 'wasm') as BackendChoice);
  const P = ppo.params;
  const S = sftTrain.params as Record<string, unknown>;
  const batchSize = num(P.batch_size, 8);
  const maxResponse = num(P.max_response_tokens, 32);
  const steps = quick ? 3 : 6;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-ppo-'));
  try {
    // images and prompts in the shapes-world style
    const prompts: RlPrompt[] = [];
    for (let i = 0; i < 16; i++) {
      const c = COLOURS[i % COLOURS.length]!;
      const s = SHAPES[i % SHAPES.length]!;
      const file = `img-${i}.png`;
      await sharp({ create: { width: 96, height: 72, channels: 3, background: { r: 40 * (i % 6), g: 90, b: 200 - 10 * i } } }).png().toFile(path.join(dir, file));
      const kind = i % 3;
      prompts.push({
        id: `bench-${i}`, image: file, length_bonus: 1,
        caption_type: kind === 0 ? 1 : kind === 1 ? 6 : 3,
        conversations: [{ from: 'human', value: kind === 0 ? '<image>\nDescribe the image in detail.' : kind === 1 ? `<image>\nIs there a ${c} ${s}?\nAnswer the question using a single word or phrase.` : `<image>\nWhat colour is the ${s}?\nA. ${c}\nB. blue\nC. grey\nD. white\nAnswer with the option's letter from the given choices directly.` }],
        facts: [`A ${c} ${s} and a small grey circle on a plain background.`, `Simple flat shapes: a ${c} ${s}.`, `The ${s} is ${c}.`],
      });
    }
    const corpus = [VICUNA_SYSTEM_PROMPT, 'USER: ASSISTANT:', ...REWARD_PROMPT_CORPUS, ...REWARD_PROMPT_CORPUS, ...prompts.flatMap((p) => [p.conversations[0]!.value, ...p.facts])];
    const tok = tokenizerFromJson(buildTokenizer(corpus, { vocabSize: num(S.vocab_size, 1024) }), tokenizerConfigFor());
    const cfg = resolveModelConfig({
      vision: { imageSize: num(S.image_size, 64), patchSize: num(S.patch_size, 16) },
      language: { vocabSize: tok.vocabSize, contextLength: num(S.max_length, 256), width: num(S.width, DEFAULT_MODEL_CONFIG.language.width), layers: num(S.layers, DEFAULT_MODEL_CONFIG.language.layers) },
      heads: ['lm'],
    });
    const model = createModel(cfg, { seed: 1, label: 'policy' });
    const reference = createModel(cfg, { seed: 1, label: 'reference' });
    const value = createModel({ ...cfg, heads: ['value'] }, { seed: 2, label: 'value' });
    // reward-train's default head: per-token scores weighing the LM head's likelihoods, summed over the response
    const rm = createModel({ ...cfg, heads: ['reward', 'lm'], rewardLikelihood: true, rewardPooling: 'response-sum' }, { seed: 2, label: 'reward' });
    const images = createImageLoader({ size: cfg.vision.imageSize, root: dir });
    const policy = createLivePolicy({ model, tokenizer: tok, images });
    const journal = rolloutJournal<RolloutRecord>({ file: path.join(dir, 'rollouts.jsonl'), policy });
    const source: Source<RlPrompt> = {
      name: 'prompts',
      async *read() { for (let i = 0; ; i++) yield prompts[i % prompts.length]!; },
    };
    const t0 = performance.now();
    await runFlow({
      source,
      stages: [
        batch<RlPrompt>(batchSize),
        rollout({ policy, reference, batchSize, maxResponseTokens: maxResponse }),
        rewardScore<RolloutRecord>({ model: rm, tokenizer: tok, facts: true, maxResponseTokens: maxResponse, images }),
        tee(journal.consume),
      ] as Stage<never, unknown>[],
      sink: ppoTrainer({
        policy, reference, value, out: dir, steps,
        minibatchSize: num(P.minibatch_size, 4), ppoEpochs: num(P.ppo_epochs, 2), lr: num(P.lr, 1e-4), valueLr: num(P.value_lr, 0) > 0 ? num(P.value_lr, 0) : num(P.lr, 1e-4), warmupSteps: num(P.warmup, 5),
        beforeCheckpoint: (step) => journal.flushedBefore(step),
      }) as never,
    }, { seed: 1, deadLetterPath: path.join(dir, 'rejected.jsonl') });
    const wall = (performance.now() - t0) / 1000;
    const metrics = (await readFile(path.join(dir, 'metrics.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as PpoMetrics);
    const timed = metrics.slice(1);
    const sum = (k: keyof PpoMetrics): number => timed.reduce((a, m) => a + (m[k] as number), 0);
    const gen = sum('time_generation_s');
    const score = sum('time_scoring_s');
    const update = sum('time_update_s');
    const total = gen + score + update;
    const prompts_ = timed.reduce((a, m) => a + m.rollouts + m.rejected + m.rejected_upstream, 0);
    const tokens = timed.reduce((a, m) => a + (Number.isFinite(m.response_length_mean) ? m.response_length_mean * m.rollouts : 0), 0);
    for (const m of [model, reference, value, rm]) m.dispose();
    const where = `${backend.name}; ${cfg.language.width}w x ${cfg.language.layers}L, ${(cfg.vision.imageSize / cfg.vision.patchSize) ** 2} image tokens, batch ${batchSize}, <= ${maxResponse} response tokens`;
    const pct = (x: number): string => `${(100 * x).toFixed(0)}%`;
    const rows: BenchRow[] = [
      { suite: SUITE, case: 'PPO step throughput', value: prompts_ / total, unit: 'prompts/s', note: `${where}; ${(tokens / total).toFixed(1)} response tokens/s; ${(total / timed.length).toFixed(2)} s/step over ${timed.length} steps (${wall.toFixed(0)} s with the first)` },
      { suite: SUITE, case: 'share: generation (sampling + reference log-probs)', value: 100 * gen / total, unit: '%', note: pct(gen / total) },
      { suite: SUITE, case: 'share: scoring (reward model)', value: 100 * score / total, unit: '%', note: pct(score / total) },
      { suite: SUITE, case: 'share: updates (values, GAE, PPO epochs)', value: 100 * update / total, unit: '%', note: pct(update / total) },
    ];
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

// `tsx bench/ppo.ts` runs it alone
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await bench({ quick: process.argv.includes('--quick') });
  for (const r of rows) process.stdout.write(`${r.case}: ${r.value.toFixed(2)} ${r.unit}  ${r.note ?? ''}\n`);
}
