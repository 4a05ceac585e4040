/**
 * Judges answered eval records with a Judge (the MMHal rubric, 0-6): batches of records in,
 * judged records out (`score`, `hallucinated`, and the judge's text in `judge_text`).
 *
 * - Up to `concurrency` batches are judged at once; records leave in input order.
 * - `truth` (the shapes world's ground truth, by image path) is attached to each item for
 *   the rule judge; a record whose image has no truth is rejected before any judging.
 * - A batch the judge refuses with a BadRecordError is judged again item by item, so only
 *   the bad items are rejected (dead letters), not their neighbours. Other errors (HTTP
 *   failures after retries, aborts) fail the run.
 * Input is batches and output records, so the stage carries `conserves: false`.
 */
import { BadRecordError, FactflowError, InvalidOptionError } from '../src/errors.ts';
import type { Judge, JudgeItem, JudgeResult, ShapesTruth } from '../src/eval/judge.ts';
import { map } from '../src/stream/map.ts';
import { originOf, withOrigin } from '../src/stream/origin.ts';
import type { Stage, StageContext } from '../src/stream/stage.ts';
import type { EvalRecord } from '../schemas/eval.ts';

export interface JudgeAnswersOptions {
  readonly judge: Judge;
  /** Ground truth by image path, or a lookup; needed by the rule judge. */
  readonly truth?: ReadonlyMap<string, ShapesTruth> | ((record: EvalRecord) => ShapesTruth | undefined);
  /** Batches judged at once (default 1; the OpenAI judge also limits its own requests). */
  readonly concurrency?: number;
  /** Stage name (default `judge-answers`). */
  readonly name?: string;
}

export interface JudgeAnswersReport {
  readonly judged: number;
  /** Verdicts an LLM judge read from its cache. */
  readonly cached: number;
  readonly hallucinated: number;
  readonly rejected: number;
}

/** The judge's view of one eval record. */
export function judgeItem(record: EvalRecord, truth?: ShapesTruth): JudgeItem {
  const item: JudgeItem = {
    question_id: record.question_id,
    question_type: record.question_type,
    image_content: record.facts,
    question: record.question,
    gt_answer: record.gt_answer,
    response: record.model_answer,
  };
  if (truth) item.truth = truth;
  return item;
}

export function judgeAnswers(options: JudgeAnswersOptions): Stage<readonly EvalRecord[], EvalRecord> & { readonly conserves: false; report(): JudgeAnswersReport } {
  const judge = options?.judge;
  if (!judge || typeof judge.judge !== 'function') throw new InvalidOptionError('judge', 'must be a Judge ({name, judge(items)})');
  const t = options.truth;
  if (t !== undefined && typeof t !== 'function' && !(t instanceof Map)) throw new InvalidOptionError('truth', 'must be a Map from image path to ground truth, or a function');
  const lookup: ((r: EvalRecord) => ShapesTruth | undefined) | undefined =
    t === undefined ? undefined : typeof t === 'function' ? t : (r) => (t as ReadonlyMap<string, ShapesTruth>).get(r.image);
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidOptionError('concurrency', `must be a positive integer, got ${String(concurrency)}`);
  const name = options.name ?? 'judge-answers';
  let judged = 0;
  let cached = 0;
  let hallucinated = 0;
  let rejected = 0;

  const verdict = (r: EvalRecord, v: JudgeResult): EvalRecord => {
    judged++;
    if (v.cached) cached++;
    if (v.hallucinated) hallucinated++;
    return withOrigin({ ...r, score: v.score, hallucinated: v.hallucinated, judge_text: v.explanation }, originOf(r));
  };

  const judgeBatch = async (batch: readonly EvalRecord[], ctx: StageContext, signal: AbortSignal): Promise<EvalRecord[]> => {
    const ready: { record: EvalRecord; item: JudgeItem }[] = [];
    const reject = (record: EvalRecord, err: Error): void => {
      rejected++;
      ctx.reject(record, err, originOf(record));
    };
    for (const record of batch) {
      if (!lookup) {
        ready.push({ record, item: judgeItem(record) });
        continue;
      }
      const truth = lookup(record);
      if (truth) ready.push({ record, item: judgeItem(record, truth) });
      else reject(record, new BadRecordError(`no ground truth for image ${record.image} (question_id ${record.question_id})`, { fix: 'judge with the ground truth of the world these questions come from (truth=<world>/ground_truth.jsonl)' }));
    }
    if (ready.length === 0) return [];
    let results: JudgeResult[] | undefined;
    try {
      results = await judge.judge(ready.map((x) => x.item), { signal });
    } catch (err) {
      if (!(err instanceof BadRecordError)) throw err;
    }
    if (results) {
      if (results.length !== ready.length) throw new FactflowError(`judge ${judge.name} returned ${results.length} verdicts for ${ready.length} answers`);
      return ready.map((x, i) => verdict(x.record, results[i]!));
    }
    // one item spoiled the batch: judge one by one and reject only the bad ones
    const out: EvalRecord[] = [];
    for (const x of ready) {
      try {
        const [v] = await judge.judge([x.item], { signal });
        out.push(verdict(x.record, v!));
      } catch (err) {
        if (!(err instanceof BadRecordError)) throw err;
        reject(x.record, err);
      }
    }
    return out;
  };

  return {
    name,
    conserves: false,
    report: () => ({ judged, cached, hallucinated, rejected }),
    async *run(input: AsyncIterable<readonly EvalRecord[]>, ctx: StageContext): AsyncIterable<EvalRecord> {
      const inner = map<readonly EvalRecord[], EvalRecord[]>((batch, { signal }) => judgeBatch(batch, ctx, signal), { concurrency, name });
      for await (const judgedBatch of inner.run(input, ctx)) {
        yield* judgedBatch;
        ctx.note(`${judged} judged, ${hallucinated} hallucinated`);
      }
    },
  };
}
