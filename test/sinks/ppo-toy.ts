/**
 * A toy PPO task with a known optimum, on the tiny model: text-only prompts, reward = how many
 * times one chosen token appears in the response (a scorer stage in place of the reward model).
 * The best policy emits that token every time; a KL penalty holds it back towards the reference.
 */
import type { RlPrompt } from '../../schemas/rl-prompt.ts';
import { buildTokenizer, tokenizerConfigFor } from '../../src/model/build-tokenizer.ts';
import { resolveModelConfig, TINY_MODEL_CONFIG, type ModelConfig } from '../../src/model/config.ts';
import { createLivePolicy, type LivePolicy } from '../../src/model/live-policy.ts';
import { createModel, type MultimodalModel } from '../../src/model/multimodal-model.ts';
import { tokenizerFromJson, type TextTokenizer } from '../../src/model/tokenizer.ts';
import path from 'node:path';
import type { Source, Stage } from '../../src/stream/stage.ts';
import { batch } from '../../src/stream/batch.ts';
import { runFlow } from '../../src/stream/flow.ts';
import { tee } from '../../src/stream/tee.ts';
import { ppoTrainer, type PpoResult, type PpoTrainerOptions } from '../../sinks/ppo-trainer.ts';
import { rolloutJournal } from '../../sinks/rollout-journal.ts';
import { rollout, type RolloutRecord } from '../../transforms/rollout.ts';

const CORPUS = ['red circle?', 'blue square', 'a green star', 'two shapes', 'the left one'];

export function toyTokenizer(): TextTokenizer {
  return tokenizerFromJson(buildTokenizer(CORPUS, { vocabSize: 128 }), tokenizerConfigFor());
}

export function toyConfig(tok: TextTokenizer, context = 64): ModelConfig {
  return resolveModelConfig({ language: { vocabSize: tok.vocabSize, contextLength: context }, heads: ['lm'] }, TINY_MODEL_CONFIG);
}

export interface Toy {
  tok: TextTokenizer;
  policy: LivePolicy;
  reference: MultimodalModel;
  value: MultimodalModel;
  /** The token whose count is the reward. */
  target: number;
  dispose(): void;
}

/** Policy and reference with the same weights (seed), a separate value model with a zero head. */
export function makeToy(options: { seed?: number } = {}): Toy {
  const tok = toyTokenizer();
  const cfg = toyConfig(tok);
  const seed = options.seed ?? 1;
  const model = createModel(cfg, { seed, label: 'policy' });
  const reference = createModel(cfg, { seed, label: 'reference' });
  const value = createModel({ ...cfg, heads: ['value'] }, { seed: seed + 100, label: 'value' });
  const policy = createLivePolicy({ model, tokenizer: tok, systemPrompt: 'Hi.' });
  const target = tok.tokenToId('x')!;
  return { tok, policy, reference, value, target, dispose: () => { model.dispose(); reference.dispose(); value.dispose(); } };
}

export function toyPrompts(n: number): RlPrompt[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `toy-${i}`,
    image: null,
    conversations: [{ from: 'human' as const, value: CORPUS[i % CORPUS.length]! }],
    caption_type: 1 as const,
    length_bonus: 1,
    facts: [],
  }));
}

/** Repeats the prompts forever (the trainer stops after its steps). */
export function cyclingSource(prompts: readonly RlPrompt[], limit = Number.POSITIVE_INFINITY): Source<RlPrompt> {
  return {
    name: 'prompts',
    async *read() {
      for (let i = 0; i < limit; i++) yield prompts[i % prompts.length]!;
    },
  };
}

/** reward_model = reward_total = scale x (count of `target` in the response). */
export function countScorer(target: number, scale = 1, options: { name?: string } = {}): Stage<RolloutRecord[], RolloutRecord[]> {
  return {
    name: options.name ?? 'count-scorer',
    async *run(input) {
      for await (const batch of input) {
        yield batch.map((r) => {
          const count = r.response_ids.filter((id) => id === target).length * scale;
          return { ...r, reward_model: count, reward_total: count, reward_length: 0, reward_correctness: 0, reward_no_eos: 0 };
        });
      }
    },
  };
}

/** The run the resume tests interrupt (in process and with kill -9) and compare. */
export const RESUME_RUN = { steps: 6, batchSize: 4, journal: true, seed: 11, trainer: { checkpointEvery: 2, minibatchSize: 2 } } as const;

export interface ToyRun {
  /** Scorer stage instead of the count scorer. */
  scorer?: Stage<RolloutRecord[], RolloutRecord[]>;
  toy: Toy;
  out: string;
  steps: number;
  batchSize: number;
  scale?: number;
  seed?: number;
  journal?: boolean;
  trainer?: Partial<PpoTrainerOptions>;
}

/** source -> batch -> rollout -> count scorer [-> tee(journal)] -> ppo-trainer */
export async function runToy(r: ToyRun) {
  const { toy, out, steps, batchSize } = r;
  const journal = r.journal ? rolloutJournal<RolloutRecord>({ file: path.join(out, 'rollouts.jsonl'), policy: toy.policy }) : undefined;
  const stages: Stage<never, unknown>[] = [
    batch(batchSize) as Stage<never, unknown>,
    rollout({ policy: toy.policy, batchSize, maxResponseTokens: 8 }) as Stage<never, unknown>,
    (r.scorer ?? countScorer(toy.target, r.scale ?? 1)) as Stage<never, unknown>,
  ];
  if (journal) stages.push(tee(journal.consume, { name: 'journal' }) as Stage<never, unknown>);
  const sink = ppoTrainer({
    policy: toy.policy, reference: toy.reference, value: toy.value, out, steps,
    lr: 5e-3, minibatchSize: batchSize,
    beforeCheckpoint: journal ? (step) => journal.flushedBefore(step) : undefined,
    ...r.trainer,
  });
  return runFlow<PpoResult>({ source: cyclingSource(toyPrompts(5)), stages, sink: sink as never }, { seed: r.seed ?? 3, deadLetterPath: path.join(out, 'rejected.jsonl') });
}

