/**
 * Fills each eval record's `model_answer` with an Answerer (the policy, greedy), `batchSize`
 * questions per call. One record in, one record out, in order.
 *
 * The model is asked `question + promptSuffix` about `imagePrefix + image` (both relative to
 * the answerer's image root); the stored question stays as the benchmark wrote it.
 * Answers are trimmed. An answerer that returns the wrong number of answers, or a
 * non-string, fails the run (BackendError): that is a model bug, not a bad record.
 */
import { BackendError, InvalidOptionError } from '../src/errors.ts';
import type { Answerer } from '../src/eval/answerer.ts';
import { abortedBy } from '../src/stream/map.ts';
import { originOf, withOrigin } from '../src/stream/origin.ts';
import type { Stage, StageContext } from '../src/stream/stage.ts';
import type { EvalRecord } from '../schemas/eval.ts';

export interface AnswerQuestionsOptions {
  readonly answerer: Answerer;
  /** Questions per answerer call (default 8). */
  readonly batchSize?: number;
  /** Prepended to each record's image (e.g. `coco/val2014/` for POPE file names). */
  readonly imagePrefix?: string;
  /** Appended to each question as asked (e.g. `\nAnswer the question using a single word or phrase.`). */
  readonly promptSuffix?: string;
  /** Stage name (default `answer-questions`). */
  readonly name?: string;
}

export interface AnswerQuestionsReport {
  readonly answered: number;
  readonly calls: number;
  /** Mean answer length in whitespace-separated words. */
  readonly mean_words: number;
}

export function answerQuestions(options: AnswerQuestionsOptions): Stage<EvalRecord, EvalRecord> & { report(): AnswerQuestionsReport } {
  const answerer = options?.answerer;
  if (typeof answerer !== 'function') throw new InvalidOptionError('answerer', 'must be a function (items, signal) => Promise<string[]>');
  const batchSize = options.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new InvalidOptionError('batchSize', `must be a positive integer, got ${String(batchSize)}`);
  const prefix = options.imagePrefix ?? '';
  if (typeof prefix !== 'string' || prefix.startsWith('/') || prefix.split('/').includes('..')) {
    throw new InvalidOptionError('imagePrefix', `must be a relative folder inside the image root, got ${JSON.stringify(options.imagePrefix)}`);
  }
  const suffix = options.promptSuffix ?? '';
  if (typeof suffix !== 'string') throw new InvalidOptionError('promptSuffix', 'must be a string');
  const name = options.name ?? 'answer-questions';
  let answered = 0;
  let calls = 0;
  let words = 0;

  const answerBatch = async (batch: EvalRecord[], ctx: StageContext): Promise<EvalRecord[]> => {
    calls++;
    const items = batch.map((r) => ({ image: prefix + r.image, question: r.question + suffix }));
    const answers = await answerer(items, ctx.signal);
    if (ctx.signal.aborted) throw abortedBy(ctx.signal);
    if (!Array.isArray(answers) || answers.length !== batch.length) {
      throw new BackendError(`the answerer returned ${Array.isArray(answers) ? answers.length : typeof answers} answer(s) for ${batch.length} question(s)`, {
        fix: 'an Answerer must resolve to one string per item, in order',
      });
    }
    return batch.map((r, i) => {
      const a = answers[i];
      if (typeof a !== 'string') throw new BackendError(`the answerer returned a ${typeof a} for question_id ${r.question_id}`, { fix: 'an Answerer must resolve to strings' });
      const text = a.trim();
      answered++;
      words += text === '' ? 0 : text.split(/\s+/).length;
      return withOrigin({ ...r, model_answer: text }, originOf(r));
    });
  };

  return {
    name,
    report: () => ({ answered, calls, mean_words: answered > 0 ? words / answered : 0 }),
    async *run(input: AsyncIterable<EvalRecord>, ctx: StageContext): AsyncIterable<EvalRecord> {
      let buf: EvalRecord[] = [];
      for await (const r of input) {
        buf.push(r);
        if (buf.length === batchSize) {
          const batch = buf;
          buf = [];
          yield* await answerBatch(batch, ctx);
          ctx.note(`${answered} answered`);
        }
      }
      if (buf.length > 0) yield* await answerBatch(buf, ctx);
    },
  };
}
