/**
 * Evaluates one model on a shapes world, as the demo does for SFT, RLHF and Fact-RLHF:
 * the world's three POPE splits and its MMHal-style set, answered by `policyAnswerer`
 * (whose image root is `<world>/images`), MMHal judged by `judge` (default: the rule judge
 * with the world's ground truth). Writes `out/pope/` and `out/mmhal/` (eval shards +
 * report.json each, plus dead letters) and returns the headline numbers:
 *
 *   hallucination_rate, mmhal_score  MMHal-style set (share of scores < 3, mean score)
 *   pope_f1                          POPE F1 averaged over the splits
 *   pope_yes_ratio                   share of POPE answers read as yes (F1 is 0 when it is 0)
 *   response_length_mean             mean MMHal answer length (countTokens, default words)
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { BadInputError, InvalidOptionError } from '../src/errors.ts';
import type { Answerer } from '../src/eval/answerer.ts';
import type { Judge } from '../src/eval/judge.ts';
import { ruleJudge } from '../src/eval/rule-judge.ts';
import type { ProgressSink } from '../src/stream/progress.ts';
import type { ShardFormat } from '../schemas/manifest.ts';
import { SHAPES_WORLD_FILES } from '../sources/shapes-world.ts';
import { loadShapesTruth } from '../sources/shapes-truth.ts';
import { standaloneFlow } from './eval-flow.ts';
import { evaluateMmhal, type MmhalReport } from './evaluate-mmhal.ts';
import { evaluatePope, type PopeReport } from './evaluate-pope.ts';
import { DEFAULT_VQA_SUFFIX } from './vqav2-multiround.ts';

/** What the POPE questions are asked with by default (the short-answer instruction SFT taught). */
export const POPE_PROMPT_SUFFIX = `\n${DEFAULT_VQA_SUFFIX}`;
/** Where the shapes world keeps POPE images, relative to `<world>/images`. */
export const SHAPES_POPE_IMAGE_PREFIX = 'coco/val2014/';

export interface EvaluateModelOptions {
  /** The model, answering about images under `<worldDir>/images`. */
  policyAnswerer: Answerer;
  /** A generated shapes world (has world.json). */
  worldDir: string;
  /** MMHal judge; default the rule judge (with the world's ground truth). */
  judge?: Judge;
  /** Output folder (pope/ and mmhal/ are made inside). */
  out: string;
  seed?: number;
  signal?: AbortSignal;
  progress?: ProgressSink;
  /** Questions per answerer call (default 8). */
  batchSize?: number;
  /** Appended to POPE questions (default POPE_PROMPT_SUFFIX; '' for none). */
  popePromptSuffix?: string;
  /** Answer length measure (default whitespace words). */
  countTokens?: (text: string) => number;
  /** Shard format (default parquet). */
  format?: ShardFormat;
}

export interface EvaluateModelResult {
  hallucination_rate: number;
  mmhal_score: number;
  pope_f1: number;
  pope_yes_ratio: number;
  response_length_mean: number;
  pope: PopeReport;
  mmhal: MmhalReport;
}

export async function evaluateModel(options: EvaluateModelOptions): Promise<EvaluateModelResult> {
  if (typeof options?.policyAnswerer !== 'function') throw new InvalidOptionError('policyAnswerer', 'must be an Answerer (items, signal) => Promise<string[]>');
  if (typeof options.worldDir !== 'string' || options.worldDir === '') throw new InvalidOptionError('worldDir', 'must be a shapes world folder');
  if (typeof options.out !== 'string' || options.out === '') throw new InvalidOptionError('out', 'must be a folder');
  const world = path.resolve(options.worldDir);
  const out = path.resolve(options.out);
  try {
    await readFile(path.join(world, SHAPES_WORLD_FILES.world));
  } catch (cause) {
    throw new BadInputError('not a complete shapes world (no world.json)', { file: world, cause, fix: 'generate it first: npx pipeline run pipelines/shapes-world.ts --out DIR' });
  }
  const judge = options.judge ?? ruleJudge();
  // small, and harmless to an LLM judge (it ignores item.truth)
  const truth = await loadShapesTruth(path.join(world, SHAPES_WORLD_FILES.ground_truth), { split: 'eval', signal: options.signal });
  const params = { world, judge: judge.name };
  const popeOut = path.join(out, 'pope');
  const mmhalOut = path.join(out, 'mmhal');
  await mkdir(popeOut, { recursive: true });
  await mkdir(mmhalOut, { recursive: true });

  const pope = await evaluatePope({
    questions: [SHAPES_WORLD_FILES.pope_random, SHAPES_WORLD_FILES.pope_popular, SHAPES_WORLD_FILES.pope_adversarial].map((f) => path.join(world, f)),
    answerer: options.policyAnswerer,
    imagePrefix: SHAPES_POPE_IMAGE_PREFIX,
    promptSuffix: options.popePromptSuffix ?? POPE_PROMPT_SUFFIX,
    batchSize: options.batchSize,
    out: popeOut,
    format: options.format,
    flow: standaloneFlow({ out: popeOut, seed: options.seed, signal: options.signal, progress: options.progress, params }),
  });
  const mmhal = await evaluateMmhal({
    questions: path.join(world, SHAPES_WORLD_FILES.mmhal),
    answerer: options.policyAnswerer,
    batchSize: options.batchSize,
    judge,
    truth,
    countTokens: options.countTokens,
    out: mmhalOut,
    format: options.format,
    flow: standaloneFlow({ out: mmhalOut, seed: options.seed, signal: options.signal, progress: options.progress, params }),
  });
  return {
    hallucination_rate: mmhal.hallucination_rate,
    mmhal_score: mmhal.average_score,
    pope_f1: pope.mean.f1,
    pope_yes_ratio: pope.mean.yes_ratio,
    response_length_mean: mmhal.response_length_mean,
    pope,
    mmhal,
  };
}
