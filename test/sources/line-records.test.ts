import test from 'ava';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonArrayItems, readLines } from '../../sources/line-records.ts';

async function tmpFile(name: string, text: string | Buffer): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ff-lines-'));
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

test('readLines: LF and CRLF, byte offsets, last line without newline', async (t) => {
  const path = await tmpFile('a.txt', 'ab\r\nc\n\né\nlast');
  const lines = await all(readLines(path));
  t.deepEqual(lines.map((l) => l.text), ['ab', 'c', '', 'é', 'last']);
  t.deepEqual(lines.map((l) => l.line), [1, 2, 3, 4, 5]);
  t.deepEqual(lines.map((l) => l.byteOffset), [0, 4, 6, 7, 10]);
});

test('jsonArrayItems: objects, strings with brackets/escapes, scalars, positions', async (t) => {
  const text = '\ufeff[\n {"a": "x]}\\"{"},\n  "s,]", 12 ,true, null,\n[1,[2]] ]\n';
  const path = await tmpFile('a.json', text);
  const items = await all(jsonArrayItems(path));
  t.deepEqual(items.map((i) => i.value), [{ a: 'x]}"{' }, 's,]', 12, true, null, [1, [2]]]);
  t.deepEqual(items.map((i) => i.line), [2, 3, 3, 3, 3, 4]);
  t.is(items[0]!.byteOffset, Buffer.byteLength('\ufeff[\n '));
  t.deepEqual(items.map((i) => i.index), [0, 1, 2, 3, 4, 5]);
});

test('jsonArrayItems: items split across read chunks (multi-byte text)', async (t) => {
  const big = Array.from({ length: 3000 }, (_, i) => ({ i, text: 'ünïcödé '.repeat(100) }));
  const path = await tmpFile('big.json', JSON.stringify(big));
  const items = await all(jsonArrayItems(path));
  t.is(items.length, 3000);
  t.deepEqual(items[2999]!.value, big[2999]);
  t.deepEqual(items[1234]!.value, big[1234]);
});

test('jsonArrayItems: empty array', async (t) => {
  t.deepEqual(await all(jsonArrayItems(await tmpFile('e.json', ' [ ] '))), []);
});

test('jsonArrayItems: truncated file names the file and byte', async (t) => {
  const path = await tmpFile('cut.json', '[{"a": 1}, {"b": ');
  const err = await t.throwsAsync(all(jsonArrayItems(path)));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.true(err!.message.includes('cut.json (byte 17)'));
  t.regex(err!.message, /truncated/);
});

test('jsonArrayItems: an object at the top level is refused', async (t) => {
  const path = await tmpFile('obj.json', '{"annotations": []}');
  const err = await t.throwsAsync(all(jsonArrayItems(path)));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(err!.message, /obj\.json \(byte 0\).*expected a JSON array/);
});

test('jsonArrayItems: invalid item JSON names the item and its byte', async (t) => {
  const path = await tmpFile('bad.json', '[{"a": 1},\n {"b": tru}]');
  const err = await t.throwsAsync(all(jsonArrayItems(path)));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(err!.message, /bad\.json \(byte 12\): item #1 \(line 2\) is not valid JSON/);
});

test('jsonArrayItems: missing file', async (t) => {
  const err = await t.throwsAsync(all(jsonArrayItems(join(tmpdir(), 'no-such-file-ff.json'))));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(err!.message, /no-such-file-ff\.json: file not found/);
});
