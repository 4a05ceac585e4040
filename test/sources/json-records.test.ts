import test from 'ava';
import { mkdtemp, readFile, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonArrayRecords, type JsonRecord } from '../../sources/json-records.ts';
import type { FactflowError } from '../../src/errors.ts';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'vqav2');
const EMMA_A = path.join(fixtures, 'emma-datasets', 'v2_mscoco_train2014_annotations.json');
const EMMA_Q = path.join(fixtures, 'emma-datasets', 'v2_OpenEnded_mscoco_train2014_questions.json');
const ALLEN_A = path.join(fixtures, 'allennlp-models', 'annotations.json');

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-json-records-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function collect(file: string, key: string | null, chunkBytes?: number, signal?: AbortSignal) {
  const reader = jsonArrayRecords(file, { key, chunkBytes, signal });
  const records: JsonRecord[] = [];
  for await (const r of reader) records.push(r);
  return { records, members: reader.members, skipped: reader.skippedMembers };
}

let n = 0;
async function write(text: string | Buffer): Promise<string> {
  const file = path.join(tmp, `case-${n++}.json`);
  await writeFile(file, text);
  return file;
}

test('tab-indented real annotations: every element, its byte offset and line, and the other members', async (t) => {
  const bytes = await readFile(EMMA_A);
  const whole = JSON.parse(bytes.toString('utf8')) as { annotations: unknown[] } & Record<string, unknown>;
  const { records, members } = await collect(EMMA_A, 'annotations');
  t.is(records.length, 53);
  t.deepEqual(records.map((r) => r.value), whole.annotations);
  t.deepEqual(records.map((r) => r.index), [...Array(53).keys()]);
  // the first element's '{' is at byte 420 on line 17 (after `"annotations": [\n\t\t`)
  t.is(records[0]!.byteOffset, 420);
  t.is(records[0]!.line, 17);
  for (const r of records) {
    t.is(bytes[r.byteOffset], 0x7b);
    t.is(bytes.subarray(0, r.byteOffset).toString('latin1').split('\n').length, r.line);
  }
  const { annotations: _a, ...rest } = whole;
  t.deepEqual(members, rest);
  t.is(members.data_subtype, 'val2014');
});

test('every chunk size gives the same records (splits at every byte position)', async (t) => {
  const ref = await collect(EMMA_Q, 'questions');
  t.is(ref.records.length, 53);
  for (const chunk of [1, 2, 3, 7, 64, 4096]) {
    const got = await collect(EMMA_Q, 'questions', chunk);
    t.deepEqual(got.records, ref.records, `chunkBytes ${chunk}`);
    t.deepEqual(got.members, ref.members);
  }
});

test('2-space indent (allennlp) and a one-line compact file', async (t) => {
  const pretty = await collect(ALLEN_A, 'annotations', 5);
  t.is(pretty.records.length, 3);
  t.deepEqual(pretty.records.map((r) => (r.value as { question_id: number }).question_id), [458752000, 458752001, 458752002]);
  const whole = JSON.parse(await readFile(EMMA_A, 'utf8')) as Record<string, unknown>;
  const compact = JSON.stringify(whole);
  const file = await write(compact); // one line, no trailing newline, like the official files
  const got = await collect(file, 'annotations', 1000);
  t.deepEqual(got.records.map((r) => r.value), whole.annotations);
  t.true(got.records.every((r) => r.line === 1));
  t.is(got.records[0]!.byteOffset, compact.indexOf('[{"question_type"') + 1);
});

test('UTF-8 characters split across chunks, escaped quotes, backslashes and brackets inside strings', async (t) => {
  const items = [
    { s: 'café ☕ 𝄞 ünïcödé' },
    { s: 'he said "]}" and left', t: '\\', u: '\\"', v: '[{' },
    'a plain "string" element ]',
    42,
    -1.5e3,
    true,
    null,
    [1, [2, { x: '}' }]],
    { nested: { deep: [{ a: 'é' }] } },
  ];
  const text = JSON.stringify({ before: 'x\u00e9', annotations: items, after: { n: 1 } }, null, '\t');
  const file = await write(text);
  for (const chunk of [1, 2, 3, 5, 1 << 20]) {
    const got = await collect(file, 'annotations', chunk);
    t.deepEqual(got.records.map((r) => r.value), items, `chunkBytes ${chunk}`);
    t.deepEqual(got.members, { before: 'xé', after: { n: 1 } });
  }
});

test('members after the array are available once iteration ends; empty arrays yield nothing', async (t) => {
  const file = await write('{"annotations": [], "data_type": "mscoco", "data_subtype": "train2014"}');
  const reader = jsonArrayRecords(file, { key: 'annotations' });
  let count = 0;
  for await (const _ of reader) count++;
  t.is(count, 0);
  t.deepEqual(reader.members, { data_type: 'mscoco', data_subtype: 'train2014' });
});

test('a member larger than maxMemberBytes is skipped, not collected', async (t) => {
  const big = 'y'.repeat(5000);
  const file = await write(JSON.stringify({ big, small: 1, annotations: [{ a: 1 }] }));
  const reader = jsonArrayRecords(file, { key: 'annotations', maxMemberBytes: 100, chunkBytes: 64 });
  const got: unknown[] = [];
  for await (const r of reader) got.push(r.value);
  t.deepEqual(got, [{ a: 1 }]);
  t.deepEqual(reader.members, { small: 1 });
  t.deepEqual(reader.skippedMembers, ['big']);
});

test('breaking out early stops reading without error', async (t) => {
  const reader = jsonArrayRecords(EMMA_A, { key: 'annotations', chunkBytes: 256 });
  let seen = 0;
  for await (const _ of reader) {
    if (++seen === 2) break;
  }
  t.is(seen, 2);
});

async function failure(file: string, key: string | null = 'annotations', chunkBytes?: number): Promise<FactflowError> {
  const err = await collect(file, key, chunkBytes).then(
    () => undefined,
    (e: unknown) => e as FactflowError,
  );
  if (!err) throw new Error('expected an error');
  return err;
}

test('missing file: BadInputError naming the path and the fix', async (t) => {
  const file = path.join(tmp, 'nope', 'v2_mscoco_train2014_annotations.json');
  const err = await failure(file);
  t.is(err.code, 'FF_ERR_BAD_INPUT');
  t.is(err.file, file);
  t.regex(err.message, /no such file/);
  t.true(err.message.includes(file));
  t.regex(err.message, /Fix: check the path/);
  const custom = jsonArrayRecords(file, { key: 'annotations', missingFix: 'run pipelines/shapes-world.ts' });
  const e2 = await (async () => { try { for await (const _ of custom); } catch (e) { return e as FactflowError; } return undefined; })();
  t.regex(e2!.message, /Fix: run pipelines\/shapes-world\.ts/);
});

test('empty and whitespace-only files', async (t) => {
  const empty = await write('');
  const e1 = await failure(empty);
  t.is(e1.code, 'FF_ERR_BAD_INPUT');
  t.is(e1.byteOffset, 0);
  t.true(e1.message.startsWith(`${empty}:1: `));
  t.regex(e1.message, /empty \(0 bytes\)/);
  const blank = await write('  \n\t\n');
  const e2 = await failure(blank);
  t.is(e2.code, 'FF_ERR_BAD_INPUT');
  t.regex(e2.message, /only whitespace/);
  t.is(e2.byteOffset, 5);
});

test('truncated inside an element: names the file, the byte where it ends, the element and where it started', async (t) => {
  const bytes = await readFile(EMMA_A);
  const cut = 30000;
  const file = await write(bytes.subarray(0, cut));
  for (const chunk of [7, 1 << 20]) {
    const err = await failure(file, 'annotations', chunk);
    t.is(err.code, 'FF_ERR_BAD_INPUT');
    t.is(err.file, file);
    t.is(err.byteOffset, cut);
    t.true(err.message.includes(`${file}:`));
    t.regex(err.message, new RegExp(`byte ${cut}: the file ends inside element #\\d+ of "annotations" \\(which starts at byte \\d+, line \\d+\\): it is truncated`));
  }
});

test('truncated after the array and before the closing brace', async (t) => {
  const file = await write('{"annotations": [{"a": 1}, {"a": 2}]');
  const err = await failure(file);
  t.is(err.code, 'FF_ERR_BAD_INPUT');
  t.regex(err.message, /byte 36: the file ends before the top-level object is closed: it is truncated/);
  const mid = await write('{"annotations": [{"a": 1}, ');
  const e2 = await failure(mid);
  t.regex(e2.message, /byte 27: the file ends inside the "annotations" array after 1 elements: it is truncated/);
});

test('no such key: lists the members that are there', async (t) => {
  const err = await failure(EMMA_Q, 'annotations');
  t.is(err.code, 'FF_ERR_BAD_INPUT');
  t.true(err.message.startsWith(`${EMMA_Q}:`));
  t.regex(err.message, /byte 6066: the top-level object has no member "annotations" \(it has: "info", "task_type", "data_type", "license", "data_subtype", "questions"\)/);
  t.is(err.byteOffset, 6066); // the closing brace, before the final newline
});

test('key is not an array', async (t) => {
  const file = await write('{\n  "info": {},\n  "annotations": {"0": {}}\n}');
  const err = await failure(file);
  t.is(err.code, 'FF_ERR_BAD_INPUT');
  t.is(err.line, 3);
  t.is(err.byteOffset, 33);
  t.is(err.message, `${file}:3: byte 33: member "annotations" is an object, not an array`);
});

test('top level is not an object; data after the end; invalid element JSON', async (t) => {
  const arr = await write('[{"a": 1}]');
  t.regex((await failure(arr)).message, /byte 0: expected the top-level JSON value to be an object \('\{'\), found an array/);
  const extra = await write('{"annotations": []} x');
  t.regex((await failure(extra)).message, /byte 20: unexpected 'x' after the end of the top-level object/);
  const bad = await write('{"annotations": [{"a": 1}, {"a": tru}]}');
  const err = await failure(bad);
  t.is(err.code, 'FF_ERR_BAD_INPUT');
  t.is(err.byteOffset, 27);
  t.regex(err.message, /element #1 of "annotations" \(starting at byte 27, line 1\) is not valid JSON/);
});

test('an aborted signal stops the read with FF_ERR_ABORTED', async (t) => {
  const ac = new AbortController();
  ac.abort(new Error('stop'));
  const err = await collect(EMMA_A, 'annotations', 64, ac.signal).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(err?.code, 'FF_ERR_ABORTED');
});

test('options are checked at the factory', (t) => {
  t.throws(() => jsonArrayRecords(EMMA_A, { key: '' }), { code: 'FF_ERR_INVALID_OPTION', message: /option "key"/ });
  t.throws(() => jsonArrayRecords(EMMA_A, { key: undefined as unknown as null }), { code: 'FF_ERR_INVALID_OPTION', message: /option "key": must be a non-empty member name, or null for a top-level array/ });
  t.throws(() => jsonArrayRecords(EMMA_A, { key: 'annotations', chunkBytes: 0 }), { code: 'FF_ERR_INVALID_OPTION', message: /option "chunkBytes"/ });
});

// ---- key: null, a top-level array (A-OKVQA, LLaVA instruct, preference JSON) ----

test('top-level array: objects, strings with brackets/escapes, scalars; positions after a BOM', async (t) => {
  const text = '\ufeff[\n {"a": "x]}\\"{"},\n  "s,]", 12 ,true, null,\n[1,[2]] ]\n';
  const file = await write(text);
  for (const chunk of [1 << 20, 4, 1]) {
    const { records, members } = await collect(file, null, chunk);
    t.deepEqual(records.map((r) => r.value), [{ a: 'x]}"{' }, 's,]', 12, true, null, [1, [2]]], `chunkBytes ${chunk}`);
    t.deepEqual(records.map((r) => r.line), [2, 3, 3, 3, 3, 4]);
    t.deepEqual(records.map((r) => r.index), [0, 1, 2, 3, 4, 5]);
    t.is(records[0]!.byteOffset, Buffer.byteLength('\ufeff[\n '));
    t.deepEqual(members, {});
  }  const broken = await failure(await write(Buffer.from([0xef, 0xbb, 0x5b, 0x5d])), null, 1);
  t.is(broken.code, 'FF_ERR_BAD_INPUT');
  t.regex(broken.message, /:1: byte 2: the file starts with a broken UTF-8 byte order mark/);
});

test('top-level array: elements split across chunks (multi-byte text) and an empty array', async (t) => {
  const big = Array.from({ length: 3000 }, (_, i) => ({ i, text: 'ünïcödé '.repeat(100) }));
  const file = await write(JSON.stringify(big));
  const { records } = await collect(file, null);
  t.is(records.length, 3000);
  t.deepEqual(records[2999]!.value, big[2999]);
  t.deepEqual(records[1234]!.value, big[1234]);
  t.deepEqual((await collect(await write(' [ ] '), null)).records, []);
});

test('top-level array: truncated file names the file, the byte and the element', async (t) => {
  const cut = await write('[{"a": 1}, {"b": ');
  const e1 = await failure(cut, null);
  t.is(e1.code, 'FF_ERR_BAD_INPUT');
  t.is(e1.byteOffset, 17);
  t.is(e1.message, `${cut}:1: byte 17: the file ends inside element #1 of the top-level array (which starts at byte 11, line 1): it is truncated`);
  const open = await write('[{"a": 1},\n');
  t.regex((await failure(open, null)).message, /:2: byte 11: the file ends inside the top-level array after 1 elements: it is truncated$/);
});

test('top-level array: an object at the top level, data after the end, empty and blank files', async (t) => {
  const obj = await write('{"annotations": []}');
  const e1 = await failure(obj, null);
  t.is(e1.code, 'FF_ERR_BAD_INPUT');
  t.is(e1.message, `${obj}:1: byte 0: expected the top-level JSON value to be an array ('['), found an object ('{')`);
  t.regex((await failure(await write('[1] x'), null)).message, /byte 4: unexpected 'x' after the end of the top-level array/);
  t.regex((await failure(await write(''), null)).message, /byte 0: the file is empty \(0 bytes\), expected a JSON array/);
  t.regex((await failure(await write(' \n'), null)).message, /:2: byte 2: the file holds only whitespace, expected a JSON array/);
});

test('top-level array: an invalid element names its index, byte and line; a missing file names the path', async (t) => {
  const bad = await write('[{"a": 1},\n {"b": tru}]');
  const e1 = await failure(bad, null);
  t.is(e1.code, 'FF_ERR_BAD_INPUT');
  t.is(e1.line, 2);
  t.regex(e1.message, /:2: byte 12: element #1 of the top-level array \(starting at byte 12, line 2\) is not valid JSON/);
  const missing = path.join(tmp, 'no-such-file-ff.json');
  const e2 = await failure(missing, null);
  t.is(e2.code, 'FF_ERR_BAD_INPUT');
  t.regex(e2.message, /no-such-file-ff\.json: no such file/);
});
