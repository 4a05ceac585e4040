/**
 * POPE (Li et al. 2023, "Evaluating Object Hallucination in Large Vision-Language
 * Models"): reading question files, the reference answer parsing and the metrics.
 *
 * Question files are JSON Lines despite the `.json` name, one
 * `{"question_id", "image", "text", "label": "yes"|"no"}` per line; `random` uses LF,
 * `popular`/`adversarial` CRLF, so `\r` is stripped.
 *
 * Answer parsing mirrors RUCAIBox/POPE `evaluate.py`, LLaVA's `eval_pope.py` and
 * LLaVA-RLHF's `summarize_eval_pope.py` exactly: keep the text before the first '.',
 * remove commas, split on single spaces, and answer "no" when one of the words is exactly
 * "No", "no" or "not"; otherwise "yes". It is case- and whitespace-sensitive on purpose:
 * "NO" or "Not" or "no\nthere" read as yes, "Yes, there is a no-entry sign" reads as yes,
 * "There is no dog" reads as no.
 *
 * Metrics take "yes" as the positive class. Where the reference divides by zero
 * (no "yes" predictions, or no "yes" labels) it crashes; we report 0 for that precision,
 * recall or F1 instead, so a degenerate model still gets a report.
 */
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { AbortedError, BadInputError, BadRecordError } from '../errors.ts';
import { withOrigin } from '../stream/origin.ts';

export type YesNo = 'yes' | 'no';

export interface PopeQuestion {
  question_id: number | string;
  /** Image file name, e.g. `COCO_val2014_000000310196.jpg`. */
  image: string;
  text: string;
  label: YesNo;
}

export interface PopeAnswer {
  question_id: number | string;
  text: string;
}

/** "random" from `coco_pope_random.json` (else the file's base name without extension). */
export function popeSplitName(file: string): string {
  const name = basename(file).replace(/\.jsonl?$/i, '');
  const m = /_pope_(.+)$/.exec(name);
  return m ? m[1]! : name;
}

/** The reference parsing of a free-form answer into yes/no (see the file comment). */
export function parsePopeAnswer(text: string): YesNo {
  let s = text;
  if (s.indexOf('.') !== -1) s = s.split('.')[0]!;
  const words = s.replace(/,/g, '').split(' ');
  return words.includes('No') || words.includes('not') || words.includes('no') ? 'no' : 'yes';
}

interface LineLocation {
  file?: string;
  line?: number;
}

function parseJsonLine(line: string, loc: LineLocation, what: string): Record<string, unknown> {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch (cause) {
    throw new BadRecordError(`not a JSON object: ${(cause as Error).message}`, {
      ...loc,
      cause,
      fix: `${what} files hold one JSON object per line (JSON Lines, even when named .json)`,
    });
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new BadRecordError(`expected a JSON object, got ${Array.isArray(obj) ? 'an array' : typeof obj}`, {
      ...loc,
      fix: `${what} files hold one JSON object per line; a whole JSON array is not supported`,
    });
  }
  return obj as Record<string, unknown>;
}

function questionId(obj: Record<string, unknown>, loc: LineLocation): number | string {
  const id = obj.question_id;
  if ((typeof id !== 'number' || !Number.isFinite(id)) && (typeof id !== 'string' || id === '')) {
    throw new BadRecordError(`question_id is missing or not a number/string (got ${JSON.stringify(id)})`, loc);
  }
  return id;
}

function stringField(obj: Record<string, unknown>, key: string, loc: LineLocation): string {
  const v = obj[key];
  if (typeof v !== 'string') throw new BadRecordError(`field "${key}" is missing or not a string (got ${JSON.stringify(v)})`, loc);
  return v;
}

/** One question line (already stripped of its line ending) -> a PopeQuestion. */
export function parsePopeQuestionLine(line: string, loc: LineLocation = {}): PopeQuestion {
  const obj = parseJsonLine(line, loc, 'POPE question');
  const label = stringField(obj, 'label', loc).trim().toLowerCase();
  if (label !== 'yes' && label !== 'no') {
    throw new BadRecordError(`label must be "yes" or "no", got ${JSON.stringify(obj.label)}`, loc);
  }
  return {
    question_id: questionId(obj, loc),
    image: stringField(obj, 'image', loc),
    text: stringField(obj, 'text', loc),
    label,
  };
}

/** One answer line -> {question_id, text}; `answer` is accepted for `text` (RUCAIBox's field). */
export function parsePopeAnswerLine(line: string, loc: LineLocation = {}): PopeAnswer {
  const obj = parseJsonLine(line, loc, 'POPE answer');
  const text = typeof obj.text === 'string' ? obj.text : obj.answer;
  if (typeof text !== 'string') {
    throw new BadRecordError(`field "text" is missing or not a string (got ${JSON.stringify(obj.text)})`, {
      ...loc,
      fix: 'each answer line needs {"question_id": ..., "text": "..."}',
    });
  }
  return { question_id: questionId(obj, loc), text };
}

export interface ReadJsonLinesOptions {
  signal?: AbortSignal;
  /** Called with each bad line's error; without it the first bad line throws. */
  onBadRecord?: (error: BadRecordError) => void;
}

async function* readLines<T>(
  file: string,
  parse: (line: string, loc: LineLocation) => T,
  options: ReadJsonLinesOptions,
): AsyncGenerator<T> {
  const stream = createReadStream(file, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  try {
    await opened;
  } catch (cause) {
    throw new BadInputError(`cannot open: ${(cause as Error).message}`, { file, cause, fix: 'check the path' });
  }
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  let line = 0;
  let index = 0;
  try {
    for await (const raw of rl) {
      line++;
      if (options.signal?.aborted) throw new AbortedError(undefined, { file, line, cause: options.signal.reason });
      const text = raw.replace(/\r/g, '');
      if (text.trim() === '') continue;
      let rec: T;
      try {
        rec = parse(text, { file, line });
      } catch (e) {
        if (e instanceof BadRecordError && options.onBadRecord) {
          options.onBadRecord(e);
          continue;
        }
        throw e;
      }
      yield withOrigin(rec, { file, line, index: index++ });
    }
  } finally {
    rl.close();
    stream.destroy();
  }
}

/** Streams a POPE question file; each record carries its origin (file, line). */
export function readPopeQuestions(file: string, options: ReadJsonLinesOptions = {}): AsyncGenerator<PopeQuestion> {
  return readLines(file, parsePopeQuestionLine, options);
}

/** Streams an answers file (JSON Lines of {question_id, text}). */
export function readPopeAnswers(file: string, options: ReadJsonLinesOptions = {}): AsyncGenerator<PopeAnswer> {
  return readLines(file, parsePopeAnswerLine, options);
}

export interface PopeMetrics {
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
  /** Share of "yes" predictions. */
  yes_ratio: number;
  n: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface PopeCounter {
  /** Adds one question's label and the model's (already parsed) prediction. */
  add(label: YesNo, prediction: YesNo): void;
  /** Adds one question's label and the model's free-form answer (parsed as the reference). */
  addAnswer(label: YesNo, answerText: string): void;
  metrics(): PopeMetrics;
}

/** Streaming confusion-matrix counter: memory stays constant however many answers. */
export function popeCounter(): PopeCounter {
  let tp = 0;
  let fp = 0;
  let tn = 0;
  let fn = 0;
  const counter: PopeCounter = {
    add(label, prediction) {
      if (prediction === 'yes') label === 'yes' ? tp++ : fp++;
      else label === 'no' ? tn++ : fn++;
    },
    addAnswer(label, answerText) {
      counter.add(label, parsePopeAnswer(answerText));
    },
    metrics() {
      const n = tp + fp + tn + fn;
      if (n === 0) throw new BadInputError('no POPE answers to score', { fix: 'check that answers match the questions by question_id' });
      const precision = tp + fp > 0 ? tp / (tp + fp) : 0;
      const recall = tp + fn > 0 ? tp / (tp + fn) : 0;
      const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
      return { accuracy: (tp + tn) / n, precision, recall, f1, yes_ratio: (tp + fp) / n, n, tp, fp, tn, fn };
    },
  };
  return counter;
}

/** Metrics of labelled free-form answers. */
export function popeMetrics(pairs: Iterable<{ label: YesNo; answer: string }>): PopeMetrics {
  const c = popeCounter();
  for (const p of pairs) c.addAnswer(p.label, p.answer);
  return c.metrics();
}

/**
 * Pairs each question with its answer by question_id (ids compare as strings, so 7 and
 * "7" match). A question without an answer, or an answer for an unknown or repeated id,
 * is an error: a silently shorter split would change every metric.
 */
export function joinPopeAnswers(
  questions: readonly PopeQuestion[],
  answers: Iterable<PopeAnswer>,
  where: { answersFile?: string } = {},
): { label: YesNo; answer: string; question: PopeQuestion }[] {
  const byId = new Map<string, PopeAnswer>();
  let i = 0;
  for (const a of answers) {
    const key = String(a.question_id);
    if (byId.has(key)) {
      throw new BadRecordError(`question_id ${key} is answered twice`, { file: where.answersFile, recordIndex: i });
    }
    byId.set(key, a);
    i++;
  }
  const out = questions.map((q) => {
    const a = byId.get(String(q.question_id));
    if (!a) {
      throw new BadInputError(`no answer for question_id ${String(q.question_id)}`, {
        file: where.answersFile,
        fix: 'answer every question of the split (JSON Lines of {"question_id", "text"})',
      });
    }
    byId.delete(String(q.question_id));
    return { label: q.label, answer: a.text, question: q };
  });
  if (byId.size > 0) {
    const extra = [...byId.keys()].slice(0, 3).join(', ');
    throw new BadInputError(`${byId.size} answer(s) for question_ids not in the split (e.g. ${extra})`, {
      file: where.answersFile,
      fix: 'use the answers made for this question file',
    });
  }
  return out;
}
