/**
 * MMHal-Bench evaluation as one flow: the response template -> answers (already in the
 * file's `model_answer`, or from an Answerer) -> batches -> a Judge (0-6 rubric) -> eval
 * shards in `out`; then `out/report.json`: `{average_score, hallucination_rate, n,
 * by_type: {TYPE: average}, judge, response_length_mean, response_length_unit}`.
 *
 * Response length is the mean of `countTokens(model_answer)` (default: whitespace words),
 * so a caller with a tokenizer gets tokens.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { BadInputError, InvalidOptionError } from '../src/errors.ts';
import type { Answerer } from '../src/eval/answerer.ts';
import type { Judge, ShapesTruth } from '../src/eval/judge.ts';
import { mmhalMetrics, type MmhalScored } from '../src/eval/mmhal-metrics.ts';
import { batch } from '../src/stream/batch.ts';
import { map } from '../src/stream/map.ts';
import type { Stage } from '../src/stream/stage.ts';
import { evalSchema, type EvalRecord } from '../schemas/eval.ts';
import { writeJsonAtomic, type ShardFormat } from '../schemas/manifest.ts';
import { mmhalTemplateSource } from '../sources/mmhal-template.ts';
import { shardSink } from '../sinks/shard-sink.ts';
import { answerQuestions } from './answer-questions.ts';
import type { FlowRunner } from './eval-flow.ts';
import { judgeAnswers } from './judge-answers.ts';

export const MMHAL_REPORT_FILE = 'report.json';

export interface MmhalReport {
  average_score: number;
  hallucination_rate: number;
  n: number;
  by_type: Record<string, number>;
  /** The judge's name (`rule`, `openai:<model>`). */
  judge: string;
  response_length_mean: number;
  response_length_unit: string;
}

export interface EvaluateMmhalOptions {
  /**
   * The template. Answers mode (no `answerer`): the filled template, whose `model_answer`s
   * are scored. Policy mode: the questions the answerer answers.
   */
  questions: string;
  answerer?: Answerer;
  /** Policy mode: prepended to each image path (relative to the answerer's image root). */
  imagePrefix?: string;
  promptSuffix?: string;
  /** Questions per answerer call (default 8). */
  batchSize?: number;
  judge: Judge;
  /** Ground truth by image path (the rule judge needs it). */
  truth?: ReadonlyMap<string, ShapesTruth>;
  /** Answers per judge call (default 16) and judge calls at once (default 1). */
  judgeBatch?: number;
  judgeConcurrency?: number;
  /** Length of an answer; default whitespace words. */
  countTokens?: (text: string) => number;
  /** Unit of `countTokens` for the report (default `words`, or `tokens` when countTokens is given). */
  lengthUnit?: string;
  out: string;
  format?: ShardFormat;
  flow: FlowRunner;
  /** Flow name (default `mmhal`). */
  name?: string;
}

export function countWords(text: string): number {
  const t = text.trim();
  return t === '' ? 0 : t.split(/\s+/).length;
}

export async function evaluateMmhal(options: EvaluateMmhalOptions): Promise<MmhalReport> {
  if (typeof options?.questions !== 'string' || options.questions === '') throw new InvalidOptionError('questions', 'must be an MMHal-Bench response template file');
  if (options.answerer !== undefined && typeof options.answerer !== 'function') throw new InvalidOptionError('answerer', 'must be an Answerer function');
  if (!options.judge || typeof options.judge.judge !== 'function') throw new InvalidOptionError('judge', 'must be a Judge');
  if (typeof options.flow !== 'function') throw new InvalidOptionError('flow', 'must be a flow runner (ctx.flow or standaloneFlow)');
  if (typeof options.out !== 'string' || options.out === '') throw new InvalidOptionError('out', 'must be a folder');
  const judgeBatch = options.judgeBatch ?? 16;
  if (!Number.isInteger(judgeBatch) || judgeBatch < 1) throw new InvalidOptionError('judgeBatch', `must be a positive integer, got ${String(judgeBatch)}`);
  const countTokens = options.countTokens ?? countWords;
  const lengthUnit = options.lengthUnit ?? (options.countTokens ? 'tokens' : 'words');
  const answering = options.answerer !== undefined;

  const source = mmhalTemplateSource({ file: options.questions, requireAnswer: !answering });
  const stages: Stage<never, unknown>[] = [];
  if (answering) {
    stages.push(answerQuestions({
      answerer: options.answerer!, batchSize: options.batchSize, imagePrefix: options.imagePrefix, promptSuffix: options.promptSuffix,
    }) as unknown as Stage<never, unknown>);
  }
  stages.push(batch<EvalRecord>(judgeBatch, { name: 'judge-batches' }) as unknown as Stage<never, unknown>);
  stages.push(judgeAnswers({ judge: options.judge, truth: options.truth, concurrency: options.judgeConcurrency }) as unknown as Stage<never, unknown>);
  const scored: MmhalScored[] = [];
  let lengthSum = 0;
  let empty = 0;
  stages.push(map<EvalRecord, EvalRecord>((r) => {
    scored.push({ question_type: r.question_type, score: r.score! });
    lengthSum += countTokens(r.model_answer);
    if (r.model_answer.trim() === '') empty++;
    return r;
  }, { name: 'mmhal-tally' }) as unknown as Stage<never, unknown>);

  await mkdir(options.out, { recursive: true });
  const flow = await options.flow(
    { source, stages, sink: shardSink({ dir: options.out, schema: evalSchema, split: 'test', format: options.format ?? 'parquet', name: 'eval-shards' }) },
    { name: options.name ?? 'mmhal' },
  );
  if (scored.length === 0) {
    throw new BadInputError(flow.rejected > 0 ? `no answer could be judged: all ${flow.rejected} were rejected` : 'the template holds no questions', {
      file: options.questions,
      fix: flow.rejected > 0 ? `see why in ${flow.deadLetterPath}` : 'give a non-empty MMHal response template',
    });
  }
  if (!answering && scored.length > 0 && empty === scored.length) {
    throw new BadInputError('every model_answer is empty: this is the unfilled template', {
      file: options.questions,
      fix: 'give the template filled with the model\'s answers (answers=FILE), or a policy to answer (policy=DIR)',
    });
  }
  const m = mmhalMetrics(scored);
  const report: MmhalReport = {
    average_score: m.average_score,
    hallucination_rate: m.hallucination_rate,
    n: m.n,
    by_type: m.by_type,
    judge: options.judge.name,
    response_length_mean: scored.length > 0 ? lengthSum / scored.length : 0,
    response_length_unit: lengthUnit,
  };
  await writeJsonAtomic(path.join(options.out, MMHAL_REPORT_FILE), report);
  return report;
}
