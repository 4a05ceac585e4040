/**
 * POPE question files (`coco_pope_{random,popular,adversarial}.json`: JSON Lines despite
 * the name, `{question_id, image, text, label}` per line, LF or CRLF) as records that also
 * carry their split. Several files are read one after the other, each split named after its
 * file (`coco_pope_random.json` -> `random`) unless `splits` names them.
 *
 * A bad line is rejected (dead letter with file:line); the line parser is the reference's
 * (`parsePopeQuestionLine` in src/eval/pope.ts), so there is one reading of the format.
 */
import { BadRecordError, InvalidOptionError } from '../src/errors.ts';
import { parsePopeQuestionLine, popeSplitName, type YesNo } from '../src/eval/pope.ts';
import { withOrigin } from '../src/stream/origin.ts';
import type { InputFingerprint, Source, SourceContext } from '../src/stream/stage.ts';
import type { EvalRecord } from '../schemas/eval.ts';
import { readLines } from './line-records.ts';
import { inputFile, type HttpOptions } from './resolve-input.ts';

export interface PopeQuestionRecord {
  question_id: number | string;
  /** Image file name as the file gives it (relative to the POPE image folder). */
  image: string;
  text: string;
  label: YesNo;
  /** random | popular | adversarial (or the file's name). */
  split: string;
}

export interface PopeQuestionsSourceOptions {
  /** One POPE question file (path or URL) or several. */
  readonly file: string | readonly string[];
  /** Split name per file (same order); default from each file name. */
  readonly splits?: readonly string[];
  readonly http?: HttpOptions;
  /** Source name (default `pope-questions`). */
  readonly name?: string;
}

/** The eval record a POPE question starts as: question_type = split, gt_answer = label. */
export function popeToEval(q: PopeQuestionRecord): EvalRecord {
  return {
    question_id: String(q.question_id),
    image: q.image,
    question: q.text,
    question_type: q.split,
    gt_answer: q.label,
    facts: [],
    model_answer: '',
    score: null,
    hallucinated: null,
    judge_text: '',
  };
}

export function popeQuestionsSource(options: PopeQuestionsSourceOptions): Source<PopeQuestionRecord> {
  const files = typeof options?.file === 'string' ? [options.file] : options?.file;
  if (!Array.isArray(files) || files.length === 0 || !files.every((f) => typeof f === 'string' && f !== '')) {
    throw new InvalidOptionError('file', 'must be a POPE question file (path or URL) or a non-empty list of them');
  }
  const splits = options.splits ?? files.map((f) => popeSplitName(f));
  if (!Array.isArray(splits) || splits.length !== files.length || !splits.every((s) => typeof s === 'string' && s !== '')) {
    throw new InvalidOptionError('splits', `must name one split per file (${files.length}), got ${JSON.stringify(options.splits)}`);
  }
  const seen = new Set<string>();
  for (const s of splits) {
    if (seen.has(s)) throw new InvalidOptionError('splits', `split "${s}" appears twice`, { fix: 'give each question file its own split name' });
    seen.add(s);
  }
  const inputs = files.map((f) => inputFile(f, options.http));
  return {
    name: options.name ?? 'pope-questions',
    async inputs(): Promise<InputFingerprint[]> {
      return Promise.all(inputs.map((i) => i.fingerprint()));
    },
    async *read(ctx: SourceContext): AsyncIterable<PopeQuestionRecord> {
      const { index: part, count: parts } = ctx.partition;
      let n = 0;
      for (let f = 0; f < inputs.length; f++) {
        const input = inputs[f]!;
        const split = splits[f]!;
        const local = await input.local(ctx.signal);
        for await (const { text, line, byteOffset } of readLines(local, { signal: ctx.signal })) {
          if (text.trim() === '') continue;
          const index = n++;
          if (parts > 1 && index % parts !== part) continue;
          const origin = { file: input.input, line, byteOffset, index };
          let q;
          try {
            q = parsePopeQuestionLine(text, { file: input.input, line });
          } catch (err) {
            if (!(err instanceof BadRecordError)) throw err;
            ctx.reject(text, err, origin);
            continue;
          }
          yield withOrigin<PopeQuestionRecord>({ ...q, split }, origin);
        }
      }
    },
  };
}
