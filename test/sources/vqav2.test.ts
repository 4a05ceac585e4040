import test from 'ava';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { vqav2Source, type Vqav2SourceOptions } from '../../sources/vqav2.ts';
import type { Vqav2Item } from '../../schemas/vqav2-item.ts';
import type { FactflowError } from '../../src/errors.ts';
import { originOf, type Origin } from '../../src/stream/origin.ts';
import type { Sink, SourceContext } from '../../src/stream/stage.ts';
import { runFlow } from '../../src/stream/flow.ts';
import type { DeadLetter } from '../../src/stream/dead-letters.ts';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'vqav2');
const EMMA = path.join(FIX, 'emma-datasets');
const EMMA_Q = path.join(EMMA, 'v2_OpenEnded_mscoco_train2014_questions.json');
const EMMA_A = path.join(EMMA, 'v2_mscoco_train2014_annotations.json');
const TEST_DEV_Q = path.join(EMMA, 'v2_OpenEnded_mscoco_test-dev2015_questions.json');
const ALLEN = path.join(FIX, 'allennlp-models');

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-vqav2-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface Rejection { record: unknown; reason: string; origin?: Origin }

function fakeCtx(partition = { index: 0, count: 1 }) {
  const rejections: Rejection[] = [];
  const notes: string[] = [];
  const ctx: SourceContext = {
    name: 'vqav2', signal: new AbortController().signal, seed: 1, partition, counts: { in: 0, out: 0, rejected: 0 },
    reject(record, reason, origin) {
      rejections.push({ record, reason: typeof reason === 'string' ? reason : reason.message, origin });
    },
    setTotal() {},
    note(text) { notes.push(text); },
  };
  return { ctx, rejections, notes };
}

async function read(options: Vqav2SourceOptions, partition?: { index: number; count: number }) {
  const source = vqav2Source(options);
  const { ctx, rejections, notes } = fakeCtx(partition);
  const items: Vqav2Item[] = [];
  for await (const x of source.read(ctx)) items.push(x);
  return { items, rejections, notes, stats: source.stats() };
}

async function readError(options: Vqav2SourceOptions): Promise<FactflowError> {
  return read(options).then(
    () => { throw new Error('expected an error'); },
    (e: unknown) => e as FactflowError,
  );
}

/** A folder with the emma questions and an annotations file edited by `edit` (tab-indented like the original). */
let cases = 0;
async function editedPair(edit: (doc: { annotations: Record<string, unknown>[] }) => void, editQuestions?: (doc: { questions: Record<string, unknown>[] }) => void) {
  const dir = path.join(tmp, `case-${cases++}`);
  await mkdir(dir);
  const a = JSON.parse(await readFile(EMMA_A, 'utf8')) as { annotations: Record<string, unknown>[] };
  edit(a);
  const annotations = path.join(dir, 'v2_mscoco_train2014_annotations.json');
  const aText = JSON.stringify(a, null, '\t') + '\n';
  await writeFile(annotations, aText);
  const questions = path.join(dir, 'v2_OpenEnded_mscoco_train2014_questions.json');
  let qText = await readFile(EMMA_Q, 'utf8');
  if (editQuestions) {
    const q = JSON.parse(qText) as { questions: Record<string, unknown>[] };
    editQuestions(q);
    qText = JSON.stringify(q, null, '\t') + '\n';
  }
  await writeFile(questions, qText);
  return { dir, questions, annotations, aText, qText };
}

test('real emma folder: 53 joined items with every field, origins, the test-dev file skipped', async (t) => {
  const { items, rejections, notes, stats } = await read({ dir: EMMA });
  t.deepEqual(rejections, []);
  t.is(items.length, 53);
  t.deepEqual(items[0], {
    question_id: 6818000,
    image_id: 6818,
    question: 'What color is the wall?',
    answer: 'white',
    answer_type: 'other',
    question_type: 'what color is the',
    answers: Array.from({ length: 10 }, (_, i) => ({ answer: 'white', answer_confidence: 'yes', answer_id: i + 1 })),
    subtype: 'val2014', // the files say val2014 despite their train2014 names
  });
  t.deepEqual(originOf(items[0]), { file: EMMA_A, byteOffset: 420, line: 17, index: 0 });
  t.deepEqual(items.slice(3, 6).map((x) => [x.question_id, x.question, x.answer, x.answer_type]), [
    [403385000, 'Does this bathroom need repair?', 'yes', 'yes/no'],
    [403385001, 'Is there enough toilet tissue in the bathroom?', 'yes', 'yes/no'],
    [403385002, 'Is there a mop in the bathroom?', 'no', 'yes/no'],
  ]);
  t.is(items[52]!.answer, 'cup');
  t.deepEqual(stats.skippedFiles, [TEST_DEV_Q]);
  t.true(notes.some((n) => n.includes('v2_OpenEnded_mscoco_test-dev2015_questions.json') && n.includes('no annotations')));
  t.like(stats, { questions: 53, annotations: 53, emitted: 53, rejected: 0, filtered: 0 });
  t.deepEqual(stats.pairs, [{ questions: EMMA_Q, annotations: EMMA_A, subtype: 'val2014' }]);
});

test('answerTypes filters without rejecting, and counts what it dropped', async (t) => {
  const { items, rejections, stats, notes } = await read({ questions: EMMA_Q, annotations: EMMA_A, answerTypes: ['yes/no'] });
  t.is(items.length, 23);
  t.true(items.every((x) => x.answer_type === 'yes/no'));
  t.deepEqual(rejections, []);
  t.like(stats, { annotations: 53, emitted: 23, filtered: 30, rejected: 0 });
  t.deepEqual(stats.filteredByType, { other: 19, number: 11 });
  t.is(stats.annotations, stats.emitted + stats.filtered + stats.rejected);
  t.is(notes.at(-1), '23 kept, 0 rejected, 30 filtered by answer type (19 other, 11 number)');
});

test('allennlp trimmed annotations: each rejected, naming the missing fields', async (t) => {
  const { items, rejections, stats } = await read({ questions: path.join(ALLEN, 'questions.json'), annotations: path.join(ALLEN, 'annotations.json') });
  t.deepEqual(items, []);
  t.is(rejections.length, 3);
  t.is(
    rejections[0]!.reason,
    'annotation for question_id 458752000 is missing fields "image_id", "question_type", "answer_type", "multiple_choice_answer" ' +
      '(fields present: question_id, answers; a trimmed annotations file cannot be converted)',
  );
  t.deepEqual(rejections.map((r) => (r.record as { question_id: number }).question_id), [458752000, 458752001, 458752002]);
  t.deepEqual(rejections[0]!.origin, { file: path.join(ALLEN, 'annotations.json'), byteOffset: 476, line: 18, index: 0 });
  // their questions are accounted for by these rejections, not reported again as unanswered
  t.like(stats, { questions: 3, annotations: 3, emitted: 0, rejected: 3 });
});

test('test-dev questions with train annotations: a clear split mismatch error', async (t) => {
  const err = await readError({ questions: TEST_DEV_Q, annotations: EMMA_A });
  t.is(err.code, 'FF_ERR_BAD_INPUT');
  t.is(err.file, EMMA_A);
  t.true(err.message.startsWith(`${EMMA_A}: the annotations are data_subtype "val2014" but the questions file ${TEST_DEV_Q} is "test-dev2015"`));
  t.regex(err.message, /Fix: pair v2_OpenEnded_mscoco_<split>_questions\.json with v2_mscoco_<split>_annotations\.json/);
});

test('a folder with only the test-dev questions: no annotations to join', async (t) => {
  const dir = path.join(tmp, 'test-dev-only');
  await mkdir(dir);
  await copyFile(TEST_DEV_Q, path.join(dir, path.basename(TEST_DEV_Q)));
  const err = await readError({ dir });
  t.is(err.code, 'FF_ERR_BAD_INPUT');
  t.is(err.file, path.join(dir, 'v2_OpenEnded_mscoco_test-dev2015_questions.json'));
  t.regex(err.message, /no annotations file for "v2_OpenEnded_mscoco_test-dev2015_questions\.json": VQA-v2 test splits have no public answers/);
});

test('a missing input folder names it and says how to make data', async (t) => {
  const dir = path.join(tmp, 'no-such-dir', 'vqav2');
  const err = await readError({ dir });
  t.is(err.code, 'FF_ERR_BAD_INPUT');
  t.is(err.file, dir);
  t.true(err.message.startsWith(`${dir}: no such folder`));
  t.regex(err.message, /pipelines\/shapes-world\.ts/);
  const missing = await readError({ questions: path.join(tmp, 'q.json'), annotations: EMMA_A });
  t.is(missing.code, 'FF_ERR_BAD_INPUT');
  t.true(missing.message.startsWith(`${path.join(tmp, 'q.json')}: no such file`));
});

test('an empty annotations file and a truncated one: file and byte in the message', async (t) => {
  const dir = path.join(tmp, 'empty');
  await mkdir(dir);
  await copyFile(EMMA_Q, path.join(dir, path.basename(EMMA_Q)));
  const annotations = path.join(dir, 'v2_mscoco_train2014_annotations.json');
  await writeFile(annotations, '');
  const e1 = await readError({ dir });
  t.is(e1.code, 'FF_ERR_BAD_INPUT');
  t.true(e1.message.startsWith(`${annotations}:1: byte 0: the file is empty`));

  const whole = await readFile(EMMA_A);
  await writeFile(annotations, whole.subarray(0, 20000));
  const source = vqav2Source({ dir });
  const { ctx } = fakeCtx();
  const got: Vqav2Item[] = [];
  const e2 = await (async () => {
    try { for await (const x of source.read(ctx)) got.push(x); } catch (e) { return e as FactflowError; }
    return undefined;
  })();
  t.is(e2?.code, 'FF_ERR_BAD_INPUT');
  t.is(e2?.file, annotations);
  t.is(e2?.byteOffset, 20000);
  t.regex(e2!.message, /byte 20000: the file ends inside element #\d+ of "annotations" \(which starts at byte \d+, line \d+\): it is truncated/);
  t.true(got.length > 10); // what came before the cut was delivered
});

test('a question whose annotation is missing is rejected at the end, pointing at the question', async (t) => {
  const { dir, questions, qText } = await editedPair((doc) => {
    doc.annotations = doc.annotations.filter((a) => a.question_id !== 174482004);
  });
  const { items, rejections, stats } = await read({ dir });
  t.is(items.length, 52);
  t.is(rejections.length, 1);
  t.is(rejections[0]!.reason, `question 174482004 has no annotation in ${path.join(dir, 'v2_mscoco_train2014_annotations.json')}`);
  t.deepEqual(rejections[0]!.record, { question_id: 174482004, image_id: 174482, question: 'Is the U-Lock locked to the bike stand?' });
  const at = qText.indexOf('{\n\t\t\t"image_id": 174482,\n\t\t\t"question": "Is the U-Lock');
  t.deepEqual(rejections[0]!.origin, { file: questions, byteOffset: at, line: qText.slice(0, at).split('\n').length, index: 13 });
  t.like(stats, { questions: 53, annotations: 52, emitted: 52, rejected: 1 });
});

test('wrong field types, an unknown answer type, an orphan and a duplicate annotation: one reason each', async (t) => {
  const { dir, annotations, aText } = await editedPair((doc) => {
    const a = doc.annotations;
    a[0]!.question_id = '6818000'; // a string id
    a[1]!.answer_type = 'maybe';
    a[2]!.multiple_choice_answer = 3;
    a[3]!.answers = 'yes';
    a.splice(5, 0, { ...a[4]!, question_id: 999000, image_id: 999 }); // no such question
    a.push({ ...a[10]! }); // answered twice (a[10] is 174482000 after the splice)
  }, (doc) => {
    doc.questions[46]!.image_id = '480985'; // question 480985001 with a string image id
  });
  const q = path.join(dir, 'v2_OpenEnded_mscoco_train2014_questions.json');
  const { items, rejections, stats } = await read({ dir });
  t.deepEqual(rejections.map((r) => r.reason), [
    // the questions file is read first
    'question field "image_id" must be a non-negative integer, got string "480985"',
    // then the annotations, in file order
    'annotation field "question_id" must be a non-negative integer, got string "6818000"',
    'annotation for question_id 6818001: unknown answer_type "maybe" (expected one of "yes/no", "number", "other")',
    'annotation for question_id 6818002: field "multiple_choice_answer" must be a string, got number 3',
    'annotation for question_id 403385000: field "answers" must be a list, got string "yes"',
    `annotation for question_id 999000: no such question in ${q}`,
    `annotation for question_id 480985001: no such question in ${q}`,
    'duplicate annotation for question_id 174482000',
    // last, the questions nobody answered (6818000's annotation had a string id)
    `question 6818000 has no annotation in ${annotations}`,
  ]);
  // each rejection points at its own record in its own file
  const unknownType = rejections[2]!.origin!;
  t.is(unknownType.file, annotations);
  t.is(aText[unknownType.byteOffset!], '{');
  t.is(unknownType.index, 1);
  t.is(unknownType.line, aText.slice(0, unknownType.byteOffset).split('\n').length);
  t.is(rejections[0]!.origin!.file, q);
  t.is(rejections[0]!.origin!.index, 46);
  // accounting: every annotation is emitted, filtered or rejected; every question is joined or rejected
  t.like(stats, { questions: 53, annotations: 55, emitted: 48, filtered: 0, rejected: 9 });
  t.is(items.length, 48);
  t.is(stats.annotations, stats.emitted + stats.filtered + 7);
});

test('question-side problems and an image id that disagrees with the question', async (t) => {
  const { dir, annotations } = await editedPair((doc) => {
    doc.annotations[4]!.image_id = 403386; // the question 403385001 says image 403385
  }, (doc) => {
    const qs = doc.questions as unknown[];
    qs[1] = 'not an object';
    (qs[5] as Record<string, unknown>).question_id = 403385000; // the same id as questions[3]
    (qs[6] as Record<string, unknown>).question = '  ';
  });
  const q = path.join(dir, 'v2_OpenEnded_mscoco_train2014_questions.json');
  const { rejections, stats } = await read({ dir });
  const reasons = rejections.map((r) => r.reason);
  t.is(reasons[0], 'question #1 must be an object, got string "not an object"');
  t.regex(reasons[1]!, /^duplicate question_id 403385000 \(first at byte \d+, line \d+\)$/);
  t.is(reasons[2], 'question 37777000 has an empty "question" text');
  t.deepEqual(reasons.slice(3), [
    `annotation for question_id 6818001: no such question in ${q}`,
    'annotation for question_id 403385001 has image_id 403386 but the question has image_id 403385',
    `annotation for question_id 403385002: no such question in ${q}`,
    `annotation for question_id 37777000: no such question in ${q}`,
  ]);
  t.is(rejections[4]!.origin!.file, annotations);
  t.is(rejections[1]!.origin!.index, 5);
  t.like(stats, { questions: 53, annotations: 53, emitted: 49, rejected: 7 });
});

test('in = out + rejected through runFlow, and the dead-letter lines name file and position', async (t) => {
  const { dir } = await editedPair((doc) => {
    doc.annotations[7]!.answer_type = 'color';
    doc.annotations = doc.annotations.filter((a) => a.question_id !== 190236001);
  });
  const seen: Vqav2Item[] = [];
  const sink: Sink<Vqav2Item, number> = {
    name: 'collect',
    async write(input) {
      for await (const x of input) seen.push(x);
      return seen.length;
    },
  };
  const source = vqav2Source({ dir, answerTypes: ['yes/no', 'number'] });
  const deadLetterPath = path.join(tmp, `dead-${cases++}.jsonl`);
  const res = await runFlow({ source, sink }, { seed: 1, deadLetterPath });
  const row = res.stages[0]!;
  t.is(row.in, row.out + row.rejected);
  t.is(row.rejected, 2);
  const stats = source.stats();
  t.is(row.out, stats.emitted);
  t.is(stats.annotations + 1, stats.emitted + stats.filtered + stats.rejected); // +1: the unanswered question
  const lines = (await readFile(deadLetterPath, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as DeadLetter);
  t.is(lines.length, 2);
  t.like(lines[0], { stage: 'vqav2', file: path.join(dir, 'v2_mscoco_train2014_annotations.json'), index: 7, reason: 'annotation for question_id 37777001: unknown answer_type "color" (expected one of "yes/no", "number", "other")' });
  t.like(lines[1], { stage: 'vqav2', file: path.join(dir, 'v2_OpenEnded_mscoco_train2014_questions.json'), index: 34 });
  t.true(typeof lines[1]!.byteOffset === 'number' && lines[1]!.line! > 1);
});

test('partitions cut by image: together they are the whole, and no image is split', async (t) => {
  const whole = await read({ dir: EMMA });
  const parts = [await read({ dir: EMMA }, { index: 0, count: 2 }), await read({ dir: EMMA }, { index: 1, count: 2 })];
  const ids = parts.flatMap((p) => p.items.map((x) => x.question_id)).sort((a, b) => a - b);
  t.deepEqual(ids, whole.items.map((x) => x.question_id).sort((a, b) => a - b));
  const images0 = new Set(parts[0]!.items.map((x) => x.image_id));
  t.true(parts[1]!.items.every((x) => !images0.has(x.image_id)));
  t.true(parts.every((p) => p.rejections.length === 0 && p.items.length > 0));
});

test('inputs() fingerprints the paired files', async (t) => {
  const inputs = await vqav2Source({ dir: EMMA }).inputs!();
  t.deepEqual(inputs, [
    { path: EMMA_Q, bytes: 6068, sha256: '1981a3c44730cb0a439c5b6af2bb1d381953ba3d15419c84023d0b7eb0f611be' },
    { path: EMMA_A, bytes: 47783, sha256: '5568a919b3e9de5f6a65307677c9a1f253796df72deae0d39d9320521b290e31' },
  ]);
});

test('options are checked at the factory', (t) => {
  t.throws(() => vqav2Source({}), { code: 'FF_ERR_INVALID_OPTION', message: /option "questions"/ });
  t.throws(() => vqav2Source({ dir: EMMA, questions: EMMA_Q }), { code: 'FF_ERR_INVALID_OPTION', message: /option "dir": give either dir/ });
  t.throws(() => vqav2Source({ dir: EMMA, answerTypes: ['yes/no', 'color'] }), { code: 'FF_ERR_INVALID_OPTION', message: /option "answerTypes\[1\]": unknown answer type "color"/ });
  t.throws(() => vqav2Source({ dir: EMMA, answerTypes: [] }), { code: 'FF_ERR_INVALID_OPTION', message: /option "answerTypes"/ });
});
