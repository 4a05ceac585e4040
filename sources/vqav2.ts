/**
 * VQA-v2 (Goyal et al. 2017): joins a questions file and its annotations file into one
 * record per answered question (`Vqav2Item`), in the annotations file's order.
 *
 * Memory: the questions file is read first into a compact table keyed by question_id
 * (a Map to a slot, plus parallel arrays for image id, text and position): for the official
 * train2014 split that is ~443k small entries, roughly 50-60 MB. The annotations file
 * (~340 MB on one line) is then streamed element by element through `jsonArrayRecords`,
 * so it is never held whole. Questions with no annotation are rejected at the end.
 *
 * Answer types: `answerTypes` keeps only the types asked for. Dropping the others is a
 * filter, not an error, so they do not go to the dead-letter file (on real data that would be
 * ~280k lines); they are counted in `stats().filtered` / `filteredByType` and reported through
 * `ctx.note`. So for this source: annotations read = emitted + rejected + filtered, and every
 * question is either joined to an annotation or rejected.
 *
 * Order and grouping: the official annotations list an image's questions next to each
 * other, which is what `vqav2Multiround` relies on to group them into one conversation.
 * Input that is not grouped by image still converts correctly; an image then simply forms
 * several conversations (the transform numbers them apart).
 *
 * Partitions (`--partition i/n`) are cut by image id (hash32 of its decimal text, like
 * `inPartition`), so an image's questions always stay together.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { BadInputError, FactflowError, InvalidOptionError } from '../src/errors.ts';
import { withOrigin, type Origin } from '../src/stream/origin.ts';
import { hash32 } from '../src/stream/random.ts';
import type { InputFingerprint, Source, SourceContext } from '../src/stream/stage.ts';
import { VQA_ANSWER_TYPES, type VqaAnswer, type VqaAnswerType, type Vqav2Item } from '../schemas/vqav2-item.ts';
import { jsonArrayRecords } from './json-records.ts';

export interface Vqav2SourceOptions {
  /**
   * Folder holding `*questions.json` and `*annotations.json` (official names such as
   * `v2_OpenEnded_mscoco_train2014_questions.json` + `v2_mscoco_train2014_annotations.json`);
   * files are paired by their split token (`train2014`, `val2014`, ...). Several pairs are read
   * in name order. Give either `dir` or both `questions` and `annotations`.
   */
  readonly dir?: string;
  readonly questions?: string;
  readonly annotations?: string;
  /** Answer types to keep (default: all three). The others are counted as filtered. */
  readonly answerTypes?: readonly string[];
  /** Source name (default `vqav2`). */
  readonly name?: string;
}

export interface Vqav2Stats {
  /** Question/annotation file pairs read, in order. */
  pairs: { questions: string; annotations: string; subtype: string }[];
  /** Questions files skipped because they have no annotations (test splits). */
  skippedFiles: string[];
  questions: number;
  annotations: number;
  emitted: number;
  rejected: number;
  /** Valid, joined annotations dropped because their answer type was not asked for. */
  filtered: number;
  filteredByType: Record<string, number>;
}

export interface Vqav2Source extends Source<Vqav2Item> {
  /** Counts of the latest (or current) `read`. */
  stats(): Vqav2Stats;
}

const MISSING_FIX = 'check the path, or run `npx pipeline run pipelines/shapes-world.ts` to generate a small dataset in the VQA-v2 format';
const SPLIT_RE = /(train|val|test-dev|test)(\d{4})/;

interface Pair {
  questions: string;
  annotations: string;
}

/** Reads VQA-v2 questions + annotations as joined `Vqav2Item`s (see the module comment). */
export function vqav2Source(options: Vqav2SourceOptions): Vqav2Source {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'expected {dir} or {questions, annotations}');
  const { dir, questions, annotations } = options;
  for (const [k, v] of [['dir', dir], ['questions', questions], ['annotations', annotations]] as const) {
    if (v !== undefined && (typeof v !== 'string' || v === '')) throw new InvalidOptionError(k, `must be a non-empty path, got ${JSON.stringify(v)}`);
  }
  if (dir !== undefined && (questions !== undefined || annotations !== undefined)) {
    throw new InvalidOptionError('dir', 'give either dir or questions + annotations, not both');
  }
  if (dir === undefined && (questions === undefined || annotations === undefined)) {
    throw new InvalidOptionError(questions === undefined ? 'questions' : 'annotations', 'give dir, or both questions and annotations files', {
      fix: 'VQA-v2 needs the questions file and its annotations file (test splits have no annotations)',
    });
  }
  const answerTypes = options.answerTypes ?? VQA_ANSWER_TYPES;
  if (!Array.isArray(answerTypes) || answerTypes.length === 0) throw new InvalidOptionError('answerTypes', 'must be a non-empty list');
  answerTypes.forEach((t, i) => {
    if (!(VQA_ANSWER_TYPES as readonly string[]).includes(t)) {
      throw new InvalidOptionError(`answerTypes[${i}]`, `unknown answer type ${JSON.stringify(t)}; expected one of ${VQA_ANSWER_TYPES.join(', ')}`);
    }
  });
  const keep = new Set<string>(answerTypes);
  const name = options.name ?? 'vqav2';
  let stats = emptyStats();

  async function resolvePairs(): Promise<{ pairs: Pair[]; skipped: string[] }> {
    if (dir === undefined) return { pairs: [{ questions: questions!, annotations: annotations! }], skipped: [] };
    return findPairs(dir);
  }

  return {
    name,
    async inputs(): Promise<InputFingerprint[]> {
      try {
        const { pairs } = await resolvePairs();
        const out: InputFingerprint[] = [];
        for (const p of pairs) out.push(await fingerprint(p.questions), await fingerprint(p.annotations));
        return out;
      } catch (err) {
        // a sink may ask for the inputs before the source runs: name this source, not the sink
        if (err instanceof FactflowError) err.locate({ stage: name });
        throw err;
      }
    },
    stats: () => stats,
    async *read(ctx: SourceContext): AsyncIterable<Vqav2Item> {
      stats = emptyStats();
      const { pairs, skipped } = await resolvePairs();
      stats.skippedFiles = skipped;
      for (const file of skipped) ctx.note(`skipping ${path.basename(file)}: no annotations file for it (test splits have none)`);
      for (const pair of pairs) yield* readPair(pair, ctx, keep, stats);
      const filteredText = Object.entries(stats.filteredByType).map(([t, n]) => `${n} ${t}`).join(', ');
      ctx.note(`${stats.emitted} kept, ${stats.rejected} rejected, ${stats.filtered} filtered by answer type${filteredText ? ` (${filteredText})` : ''}`);
    },
  };
}

function emptyStats(): Vqav2Stats {
  return { pairs: [], skippedFiles: [], questions: 0, annotations: 0, emitted: 0, rejected: 0, filtered: 0, filteredByType: {} };
}

/** Pairs `*questions.json` with `*annotations.json` in `dir` by split token. */
async function findPairs(dir: string): Promise<{ pairs: Pair[]; skipped: string[] }> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BadInputError('no such folder (VQA-v2 input)', { file: dir, cause: err, fix: MISSING_FIX });
    if (code === 'ENOTDIR') throw new BadInputError('is a file, expected the folder holding the VQA-v2 questions and annotations files', { file: dir, cause: err, fix: 'pass dir, or questions and annotations' });
    throw new BadInputError(`cannot list the folder (${code ?? String(err)})`, { file: dir, cause: err });
  }
  const qs = names.filter((n) => n.endsWith('questions.json'));
  const as = names.filter((n) => n.endsWith('annotations.json'));
  if (qs.length === 0) {
    throw new BadInputError(`no *questions.json file in the folder (found: ${names.length ? names.slice(0, 8).join(', ') : 'nothing'})`, { file: dir, fix: MISSING_FIX });
  }
  const split = (n: string) => SPLIT_RE.exec(n)?.[0];
  const pairs: Pair[] = [];
  const skipped: string[] = [];
  if (qs.length === 1 && as.length === 1 && split(qs[0]!) === split(as[0]!)) {
    pairs.push({ questions: path.join(dir, qs[0]!), annotations: path.join(dir, as[0]!) });
  } else {
    for (const q of qs) {
      const s = split(q);
      const a = s === undefined ? undefined : as.find((n) => split(n) === s);
      if (a === undefined) skipped.push(path.join(dir, q));
      else pairs.push({ questions: path.join(dir, q), annotations: path.join(dir, a) });
    }
  }
  if (pairs.length === 0) {
    throw new BadInputError(
      `no annotations file for ${qs.map((q) => `"${q}"`).join(', ')}${as.length ? ` (annotations files there: ${as.join(', ')})` : ''}: VQA-v2 test splits have no public answers`,
      { file: path.join(dir, qs[0]!), fix: 'use the train2014 or val2014 questions with their v2_mscoco_*_annotations.json' },
    );
  }
  return { pairs, skipped };
}

async function fingerprint(file: string): Promise<InputFingerprint> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BadInputError(code === 'ENOENT' ? 'no such file' : `cannot read the file (${code ?? String(err)})`, { file, cause: err, fix: code === 'ENOENT' ? MISSING_FIX : undefined });
  }
  return { path: file, bytes, sha256: hash.digest('hex') };
}

/** Whether this partition owns a record: by its image id; records without a valid one go to partition 0 (rejected once, not n times). */
function owns(imageId: unknown, ctx: SourceContext): boolean {
  const { index, count } = ctx.partition;
  if (count <= 1) return true;
  return isId(imageId) ? hash32(String(imageId)) % count === index : index === 0;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 37) + '...' : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  if (Array.isArray(value)) return `array of ${value.length}`;
  return typeof value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Question table: question_id -> slot, with parallel arrays (far smaller than one object per question). */
class QuestionTable {
  readonly slots = new Map<number, number>();
  readonly imageIds: number[] = [];
  readonly texts: string[] = [];
  readonly offsets: number[] = [];
  readonly lines: number[] = [];
  readonly indexes: number[] = [];
  matched = new Uint8Array(1024);

  add(qid: number, imageId: number, text: string, r: { byteOffset: number; line: number; index: number }): void {
    const slot = this.texts.length;
    this.slots.set(qid, slot);
    this.imageIds.push(imageId);
    this.texts.push(text);
    this.offsets.push(r.byteOffset);
    this.lines.push(r.line);
    this.indexes.push(r.index);
    if (slot >= this.matched.length) {
      const grown = new Uint8Array(this.matched.length * 2);
      grown.set(this.matched);
      this.matched = grown;
    }
  }
}

// a plain function, not a per-record closure (tsx's keepNames wraps every closure it creates)
function originAt(file: string, r: { byteOffset: number; line: number; index: number }): Origin {
  return { file, byteOffset: r.byteOffset, line: r.line, index: r.index };
}

async function* readPair(pair: Pair, ctx: SourceContext, keep: Set<string>, stats: Vqav2Stats): AsyncGenerator<Vqav2Item> {
  const qFile = pair.questions;
  const aFile = pair.annotations;
  const reject = (record: unknown, reason: string, origin: Origin) => {
    stats.rejected++;
    ctx.reject(record, reason, origin);
  };

  // 1. the questions, into the compact table
  const table = new QuestionTable();
  const qReader = jsonArrayRecords(qFile, { key: 'questions', signal: ctx.signal, missingFix: MISSING_FIX });
  for await (const batch of qReader.batches()) for (const r of batch) {
    const q = r.value;
    if (!owns(isObject(q) ? q.image_id : undefined, ctx)) continue;
    stats.questions++;
    if (!isObject(q)) { reject(q, `question #${r.index} must be an object, got ${describe(q)}`, originAt(qFile, r)); continue; }
    const bad = !isId(q.question_id) ? 'question_id' : !isId(q.image_id) ? 'image_id' : typeof q.question !== 'string' ? 'question' : undefined;
    if (bad !== undefined) {
      const want = bad === 'question' ? 'a string' : 'a non-negative integer';
      reject(q, `question field "${bad}" must be ${want}, got ${describe(q[bad])}`, originAt(qFile, r));
      continue;
    }
    const qid = q.question_id as number;
    const prior = table.slots.get(qid);
    if (prior !== undefined) {
      reject(q, `duplicate question_id ${qid} (first at byte ${table.offsets[prior]}, line ${table.lines[prior]})`, originAt(qFile, r));
      continue;
    }
    if ((q.question as string).trim() === '') { reject(q, `question ${qid} has an empty "question" text`, originAt(qFile, r)); continue; }
    table.add(qid, q.image_id as number, q.question as string, r);
  }
  const qSubtype = typeof qReader.members.data_subtype === 'string' ? qReader.members.data_subtype : undefined;
  ctx.note(`${table.texts.length} questions loaded from ${path.basename(qFile)}`);

  // 2. the annotations, streamed and joined
  const aReader = jsonArrayRecords(aFile, { key: 'annotations', signal: ctx.signal, missingFix: MISSING_FIX });
  const checkSubtypes = (aSubtype: unknown) => {
    if (qSubtype !== undefined && typeof aSubtype === 'string' && aSubtype !== qSubtype) {
      throw new BadInputError(`the annotations are data_subtype "${aSubtype}" but the questions file ${qFile} is "${qSubtype}": they must be the same split`, {
        file: aFile,
        fix: 'pair v2_OpenEnded_mscoco_<split>_questions.json with v2_mscoco_<split>_annotations.json of the same split',
      });
    }
  };
  let subtype = qSubtype;
  let first = true;
  for await (const batch of aReader.batches()) for (const r of batch) {
    if (first) {
      // members before the array (the official files put data_subtype there) are known now
      first = false;
      checkSubtypes(aReader.members.data_subtype);
      if (subtype === undefined && typeof aReader.members.data_subtype === 'string') subtype = aReader.members.data_subtype;
    }
    const a = r.value;
    if (!owns(isObject(a) ? a.image_id : undefined, ctx)) continue;
    stats.annotations++;
    const reason = checkAnnotation(a);
    if (reason !== null) {
      // the annotation's question counts as answered (by this rejection), not as unanswered too
      if (isObject(a) && isId(a.question_id)) {
        const s = table.slots.get(a.question_id);
        if (s !== undefined) table.matched[s] = 1;
      }
      reject(a, reason, originAt(aFile, r));
      continue;
    }
    const ann = a as Record<string, unknown>;
    const qid = ann.question_id as number;
    const slot = table.slots.get(qid);
    if (slot === undefined) { reject(a, `annotation for question_id ${qid}: no such question in ${qFile}`, originAt(aFile, r)); continue; }
    if (table.matched[slot] === 1) { reject(a, `duplicate annotation for question_id ${qid}`, originAt(aFile, r)); continue; }
    table.matched[slot] = 1;
    const imageId = table.imageIds[slot]!;
    if (ann.image_id !== imageId) {
      reject(a, `annotation for question_id ${qid} has image_id ${String(ann.image_id)} but the question has image_id ${imageId}`, originAt(aFile, r));
      continue;
    }
    const answerType = ann.answer_type as VqaAnswerType;
    if (!keep.has(answerType)) {
      stats.filtered++;
      stats.filteredByType[answerType] = (stats.filteredByType[answerType] ?? 0) + 1;
      continue;
    }
    stats.emitted++;
    const item: Vqav2Item = {
      question_id: qid,
      image_id: imageId,
      question: table.texts[slot]!,
      answer: ann.multiple_choice_answer as string,
      answer_type: answerType,
      question_type: ann.question_type as string,
      answers: ann.answers as VqaAnswer[],
      subtype: subtype ?? '',
    };
    yield withOrigin(item, originAt(aFile, r));
  }
  checkSubtypes(aReader.members.data_subtype);
  stats.pairs.push({ questions: qFile, annotations: aFile, subtype: subtype ?? (typeof aReader.members.data_subtype === 'string' ? aReader.members.data_subtype : '') });

  // 3. questions nobody answered, in question-file order
  for (const [qid, slot] of table.slots) {
    if (table.matched[slot] === 1) continue;
    const origin: Origin = { file: qFile, byteOffset: table.offsets[slot], line: table.lines[slot], index: table.indexes[slot] };
    reject({ question_id: qid, image_id: table.imageIds[slot], question: table.texts[slot] }, `question ${qid} has no annotation in ${aFile}`, origin);
  }
}

const REQUIRED = ['question_id', 'image_id', 'question_type', 'answer_type', 'multiple_choice_answer', 'answers'] as const;

/** Null when the annotation has the official fields with the right types, else one reason. */
function checkAnnotation(a: unknown): string | null {
  if (!isObject(a)) return `annotation must be an object, got ${describe(a)}`;
  const missing = REQUIRED.filter((k) => a[k] === undefined);
  if (missing.length > 0) {
    return `annotation${isId(a.question_id) ? ` for question_id ${a.question_id}` : ''} is missing field${missing.length > 1 ? 's' : ''} ${missing.map((k) => `"${k}"`).join(', ')}` +
      ` (fields present: ${Object.keys(a).join(', ') || 'none'}; a trimmed annotations file cannot be converted)`;
  }
  if (!isId(a.question_id)) return `annotation field "question_id" must be a non-negative integer, got ${describe(a.question_id)}`;
  const who = `annotation for question_id ${a.question_id}`;
  if (!isId(a.image_id)) return `${who}: field "image_id" must be a non-negative integer, got ${describe(a.image_id)}`;
  if (typeof a.multiple_choice_answer !== 'string') return `${who}: field "multiple_choice_answer" must be a string, got ${describe(a.multiple_choice_answer)}`;
  if (a.multiple_choice_answer.trim() === '') return `${who}: field "multiple_choice_answer" is empty`;
  if (typeof a.answer_type !== 'string') return `${who}: field "answer_type" must be a string, got ${describe(a.answer_type)}`;
  if (!(VQA_ANSWER_TYPES as readonly string[]).includes(a.answer_type)) {
    return `${who}: unknown answer_type ${JSON.stringify(a.answer_type)} (expected one of ${VQA_ANSWER_TYPES.map((t) => `"${t}"`).join(', ')})`;
  }
  if (typeof a.question_type !== 'string') return `${who}: field "question_type" must be a string, got ${describe(a.question_type)}`;
  if (!Array.isArray(a.answers)) return `${who}: field "answers" must be a list, got ${describe(a.answers)}`;
  for (let i = 0; i < a.answers.length; i++) {
    const x: unknown = a.answers[i];
    if (!isObject(x)) return `${who}: answers[${i}] must be an object, got ${describe(x)}`;
    if (typeof x.answer !== 'string') return `${who}: field "answers[${i}].answer" must be a string, got ${describe(x.answer)}`;
    if (typeof x.answer_confidence !== 'string') return `${who}: field "answers[${i}].answer_confidence" must be a string, got ${describe(x.answer_confidence)}`;
    if (!isId(x.answer_id)) return `${who}: field "answers[${i}].answer_id" must be a non-negative integer, got ${describe(x.answer_id)}`;
  }
  return null;
}
