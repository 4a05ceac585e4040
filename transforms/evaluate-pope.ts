/**
 * POPE evaluation as one flow: question files -> eval records -> answers (an existing
 * answers file per split, or an Answerer) -> reference yes/no parsing and per-split
 * confusion counts -> eval shards in `out`; then `out/report.json`:
 * `{splits: {NAME: {accuracy, precision, recall, f1, yes_ratio, n}}, mean: {...}}`
 * (`mean` averages each metric over the splits, as papers report POPE).
 *
 * In the shards, POPE records carry `question_type` = split, `gt_answer` = label,
 * `hallucinated` = the model said yes to an absent object, `score` = null and
 * `judge_text` = how the answer was read.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { BadInputError, BadRecordError, InvalidOptionError } from '../src/errors.ts';
import type { Answerer } from '../src/eval/answerer.ts';
import { parsePopeAnswer, popeCounter, type PopeCounter, type YesNo } from '../src/eval/pope.ts';
import { map } from '../src/stream/map.ts';
import type { Stage } from '../src/stream/stage.ts';
import { evalSchema, type EvalRecord } from '../schemas/eval.ts';
import { writeJsonAtomic, type ShardFormat } from '../schemas/manifest.ts';
import { popeQuestionsSource, popeToEval, type PopeQuestionRecord } from '../sources/pope-questions.ts';
import { shardSink } from '../sinks/shard-sink.ts';
import { answerQuestions } from './answer-questions.ts';
import { attachPopeAnswers } from './attach-pope-answers.ts';
import type { FlowRunner } from './eval-flow.ts';

export const POPE_REPORT_FILE = 'report.json';

export interface PopeSplitMetrics {
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  yes_ratio: number;
  n: number;
}

export interface PopeReport {
  splits: Record<string, PopeSplitMetrics>;
  /** Each metric averaged over the splits; `n` is the total. */
  mean: PopeSplitMetrics;
}

export interface EvaluatePopeOptions {
  /** POPE question files (JSON Lines). */
  questions: readonly string[];
  /** Split name per question file; default from the file names. */
  splits?: readonly string[];
  /** Answers mode: answers file (JSON Lines of {question_id, text}) per split name. */
  answers?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  /** Policy mode: the model. */
  answerer?: Answerer;
  /** Policy mode: prepended to POPE image file names (relative to the answerer's image root). */
  imagePrefix?: string;
  /** Policy mode: appended to each question as asked. */
  promptSuffix?: string;
  /** Policy mode: questions per answerer call (default 8). */
  batchSize?: number;
  /** Folder for the eval shards and report.json. */
  out: string;
  format?: ShardFormat;
  flow: FlowRunner;
  /** Flow name (default `pope`). */
  name?: string;
}

function pick(m: ReturnType<PopeCounter['metrics']>): PopeSplitMetrics {
  return { accuracy: m.accuracy, precision: m.precision, recall: m.recall, f1: m.f1, yes_ratio: m.yes_ratio, n: m.n };
}

/** Averages each metric over the splits (n: total). */
export function meanPopeMetrics(splits: Readonly<Record<string, PopeSplitMetrics>>): PopeSplitMetrics {
  const all = Object.values(splits);
  const avg = (k: keyof PopeSplitMetrics): number => all.reduce((s, m) => s + m[k], 0) / all.length;
  return { accuracy: avg('accuracy'), precision: avg('precision'), recall: avg('recall'), f1: avg('f1'), yes_ratio: avg('yes_ratio'), n: all.reduce((s, m) => s + m.n, 0) };
}

/** Reads each answer as the reference does and counts it under its split. */
export function popeScore(counters: Map<string, PopeCounter>): Stage<EvalRecord, EvalRecord> {
  return map<EvalRecord, EvalRecord>((r) => {
    const label = r.gt_answer;
    if (label !== 'yes' && label !== 'no') throw new BadRecordError(`POPE label must be "yes" or "no", got ${JSON.stringify(label)} (question_id ${r.question_id})`);
    const said: YesNo = parsePopeAnswer(r.model_answer);
    let c = counters.get(r.question_type);
    if (!c) counters.set(r.question_type, (c = popeCounter()));
    c.add(label, said);
    return { ...r, hallucinated: said === 'yes' && label === 'no', judge_text: `answer read as "${said}"; label "${label}"` };
  }, { name: 'pope-score' });
}

export async function evaluatePope(options: EvaluatePopeOptions): Promise<PopeReport> {
  const { questions, answers, answerer } = options;
  if (!Array.isArray(questions) || questions.length === 0) throw new InvalidOptionError('questions', 'must list at least one POPE question file');
  if ((answers === undefined) === (answerer === undefined)) {
    throw new InvalidOptionError('answers', 'give exactly one of answers (files to score) or answerer (a model)');
  }
  if (typeof options.flow !== 'function') throw new InvalidOptionError('flow', 'must be a flow runner (ctx.flow or standaloneFlow)');
  if (typeof options.out !== 'string' || options.out === '') throw new InvalidOptionError('out', 'must be a folder');
  const source = popeQuestionsSource({ file: questions, splits: options.splits });
  const answering = answers !== undefined
    ? attachPopeAnswers({ answers })
    : answerQuestions({ answerer: answerer!, batchSize: options.batchSize, imagePrefix: options.imagePrefix, promptSuffix: options.promptSuffix });
  const counters = new Map<string, PopeCounter>();
  const stages = [
    map<PopeQuestionRecord, EvalRecord>((q) => popeToEval(q), { name: 'to-eval' }),
    answering,
    popeScore(counters),
  ] as unknown as Stage<never, unknown>[];
  await mkdir(options.out, { recursive: true });
  const flow = await options.flow(
    { source, stages, sink: shardSink({ dir: options.out, schema: evalSchema, split: 'test', format: options.format ?? 'parquet', name: 'eval-shards' }) },
    { name: options.name ?? 'pope' },
  );
  if (counters.size === 0) {
    throw new BadInputError(flow.rejected > 0 ? `no question could be scored: all ${flow.rejected} were rejected` : 'the question files hold no questions', {
      file: questions.join(', '),
      fix: flow.rejected > 0 ? `see why in ${flow.deadLetterPath}` : 'give non-empty POPE question files',
    });
  }
  const splits: Record<string, PopeSplitMetrics> = {};
  for (const [name, c] of counters) splits[name] = pick(c.metrics());
  const report: PopeReport = { splits, mean: meanPopeMetrics(splits) };
  await writeJsonAtomic(path.join(options.out, POPE_REPORT_FILE), report);
  return report;
}
