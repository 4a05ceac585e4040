import test from 'ava';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { originOf } from '../../src/stream/origin.ts';
import {
  joinPopeAnswers,
  parsePopeAnswer,
  popeCounter,
  popeMetrics,
  popeSplitName,
  readPopeAnswers,
  readPopeQuestions,
  type PopeQuestion,
} from '../../src/eval/pope.ts';

const fixtures = fileURLToPath(new URL('../fixtures/pope/', import.meta.url));
const SPLITS = ['random', 'popular', 'adversarial'] as const;

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'factflow-pope-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('reference answer parsing: first sentence, commas removed, exact words No/no/not', (t) => {
  t.is(parsePopeAnswer('Yes, there is a dog in the image.'), 'yes');
  t.is(parsePopeAnswer('No, there is not.'), 'no');
  t.is(parsePopeAnswer('Yes, there is a no-entry sign'), 'yes', '"no-entry" is not the word "no"');
  t.is(parsePopeAnswer('There is no cat in the image.'), 'no');
  t.is(parsePopeAnswer('Yes. There is no dog, but there is a cat.'), 'yes', 'only the first sentence counts');
  t.is(parsePopeAnswer('no'), 'no');
  t.is(parsePopeAnswer('No'), 'no');
  t.is(parsePopeAnswer('NO'), 'yes', 'case-sensitive, as the reference');
  t.is(parsePopeAnswer('Not that I can see'), 'yes', '"Not" is not in the reference list');
  t.is(parsePopeAnswer("I don't see one"), 'yes');
  t.is(parsePopeAnswer('No\nthere is none'), 'yes', 'split on single spaces only');
  t.is(parsePopeAnswer('there is,no,dog'), 'yes', 'commas are removed, not turned into spaces');
  t.is(parsePopeAnswer(''), 'yes');
});

test('confusion matrix and metrics by hand, including the reference edge cases', (t) => {
  // label -> answer -> parsed:
  //  yes "Yes, there is a dog."                     yes  TP
  //  yes "No, there is not."                        no   FN
  //  yes "Yes, there is a no-entry sign"            yes  TP
  //  no  "There is no cat in the image."            no   TN
  //  no  "NO"                                       yes  FP
  //  no  "Not that I can see"                       yes  FP
  //  no  "no"                                       no   TN
  //  yes "Yes. There is no dog, but there is a cat." yes TP
  // TP 3, FN 1, TN 2, FP 2; n 8
  // accuracy (3+2)/8 = 0.625; precision 3/5 = 0.6; recall 3/4 = 0.75
  // F1 = 2*0.6*0.75/(0.6+0.75) = 0.9/1.35 = 2/3; yes ratio 5/8 = 0.625
  const m = popeMetrics([
    { label: 'yes', answer: 'Yes, there is a dog.' },
    { label: 'yes', answer: 'No, there is not.' },
    { label: 'yes', answer: 'Yes, there is a no-entry sign' },
    { label: 'no', answer: 'There is no cat in the image.' },
    { label: 'no', answer: 'NO' },
    { label: 'no', answer: 'Not that I can see' },
    { label: 'no', answer: 'no' },
    { label: 'yes', answer: 'Yes. There is no dog, but there is a cat.' },
  ]);
  t.like(m, { tp: 3, fn: 1, tn: 2, fp: 2, n: 8, accuracy: 0.625, precision: 0.6, recall: 0.75, yes_ratio: 0.625 });
  t.true(Math.abs(m.f1 - 2 / 3) < 1e-12);
});

test('all-yes and all-no models; division by zero gives 0 (the reference would crash)', (t) => {
  const labels = ['yes', 'yes', 'no', 'no', 'no'] as const;
  // all yes: TP 2, FP 3 -> acc 2/5, precision 2/5, recall 1, F1 = 2*0.4*1/1.4 = 0.5714286, yes ratio 1
  const yes = popeMetrics(labels.map((label) => ({ label, answer: 'Yes' })));
  t.like(yes, { tp: 2, fp: 3, tn: 0, fn: 0, accuracy: 0.4, precision: 0.4, recall: 1, yes_ratio: 1 });
  t.true(Math.abs(yes.f1 - 0.8 / 1.4) < 1e-12);
  // all no: TN 3, FN 2 -> acc 3/5, precision 0/0 -> 0, recall 0, F1 0, yes ratio 0
  const no = popeMetrics(labels.map((label) => ({ label, answer: 'No' })));
  t.like(no, { tp: 0, fp: 0, tn: 3, fn: 2, accuracy: 0.6, precision: 0, recall: 0, f1: 0, yes_ratio: 0 });
  const e = t.throws(() => popeCounter().metrics());
  t.is((e as { code?: string }).code, 'FF_ERR_BAD_INPUT');
});

test('real POPE fixtures: JSON Lines, LF and CRLF, 150 yes / 150 no, origins kept', async (t) => {
  for (const split of SPLITS) {
    const file = join(fixtures, `coco_pope_${split}.json`);
    const raw = await readFile(file, 'utf8');
    t.is(raw.includes('\r\n'), split !== 'random', `${split} line endings as in the source`);
    const qs = await collect(readPopeQuestions(file));
    t.is(qs.length, 300);
    t.is(qs.filter((q) => q.label === 'yes').length, 150);
    t.deepEqual(qs[0], {
      question_id: 1,
      image: 'COCO_val2014_000000310196.jpg',
      text: split === 'random' ? qs[0]!.text : 'Is there a snowboard in the image?',
      label: 'yes',
    });
    t.false(qs.some((q) => /\r/.test(q.image + q.text)));
    t.deepEqual(originOf(qs[299]), { file, line: 300, index: 299 });
    t.is(popeSplitName(file), split);
    // a model that answers every question "Yes, there is ..." on the real split
    const m = popeMetrics(qs.map((q) => ({ label: q.label, answer: 'Yes, there is one.' })));
    t.like(m, { n: 300, tp: 150, fp: 150, accuracy: 0.5, precision: 0.5, recall: 1, yes_ratio: 1 });
  }
});

test('bad lines name file and line; onBadRecord skips them', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, 'coco_pope_broken.json');
  await writeFile(
    file,
    '{"question_id": 1, "image": "a.jpg", "text": "Is there a cat?", "label": "yes"}\r\n' +
      '{"question_id": 2, "image": "a.jpg", "text": "Is there a dog?", "label": "maybe"}\r\n' +
      '{"question_id": 3, "image": "a.jpg", "text": "Is there a cow?"\r\n' +
      '\r\n' +
      '[1, 2]\n' +
      '{"question_id": 6, "image": "b.jpg", "text": "Is there a bus?", "label": "No"}\n',
  );
  const e = await t.throwsAsync(collect(readPopeQuestions(file)));
  t.is((e as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.true(e!.message.startsWith(`${file}:2: label must be "yes" or "no", got "maybe"`), e!.message);
  const bad: string[] = [];
  const ok = await collect(readPopeQuestions(file, { onBadRecord: (err) => bad.push(err.message) }));
  t.deepEqual(ok.map((q) => q.question_id), [1, 6]);
  t.is(ok[1]!.label, 'no');
  t.is(bad.length, 3);
  t.true(bad[1]!.startsWith(`${file}:3: not a JSON object`));
  t.true(bad[2]!.startsWith(`${file}:5: expected a JSON object, got an array`));
  const missing = await t.throwsAsync(collect(readPopeQuestions(join(dir, 'nope.json'))));
  t.is((missing as { code?: string }).code, 'FF_ERR_BAD_INPUT');
});

test('answers join questions by question_id; gaps, extras and repeats are errors', async (t) => {
  const dir = await tempDir(t);
  const answers = join(dir, 'answers.jsonl');
  await writeFile(answers, '{"question_id": 2, "text": "No, there is not."}\n{"question_id": "1", "text": "Yes"}\n');
  const qs: PopeQuestion[] = [
    { question_id: 1, image: 'a.jpg', text: 'Is there a cat?', label: 'yes' },
    { question_id: 2, image: 'a.jpg', text: 'Is there a dog?', label: 'yes' },
  ];
  const as = await collect(readPopeAnswers(answers));
  const pairs = joinPopeAnswers(qs, as, { answersFile: answers });
  t.deepEqual(pairs.map((p) => [p.label, p.answer]), [['yes', 'Yes'], ['yes', 'No, there is not.']]);
  t.like(popeMetrics(pairs), { tp: 1, fn: 1, recall: 0.5 });
  const gap = t.throws(() => joinPopeAnswers([...qs, { ...qs[0]!, question_id: 3 }], as, { answersFile: answers }));
  t.is((gap as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(gap!.message, /answers\.jsonl: no answer for question_id 3/);
  t.throws(() => joinPopeAnswers(qs.slice(0, 1), as), { message: /1 answer\(s\) for question_ids not in the split \(e\.g\. 2\)/ });
  const dup = t.throws(() => joinPopeAnswers(qs, [...as, as[0]!]));
  t.is((dup as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  // RUCAIBox's answer files use "answer" instead of "text"
  await writeFile(answers, '{"question_id": 1, "answer": "no"}\n');
  t.deepEqual(await collect(readPopeAnswers(answers)), [{ question_id: 1, text: 'no' }]);
});
