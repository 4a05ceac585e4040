import test, { type ExecutionContext } from 'ava';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLines } from '../../sources/line-records.ts';
import { tempDir } from '../helpers/temp-dir.ts';

async function tmpFile(t: ExecutionContext, name: string, text: string | Buffer): Promise<string> {
  const dir = await tempDir(t, 'ff-lines-');
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
  const path = await tmpFile(t, 'a.txt', 'ab\r\nc\n\né\nlast');
  const lines = await all(readLines(path));
  t.deepEqual(lines.map((l) => l.text), ['ab', 'c', '', 'é', 'last']);
  t.deepEqual(lines.map((l) => l.line), [1, 2, 3, 4, 5]);
  t.deepEqual(lines.map((l) => l.byteOffset), [0, 4, 6, 7, 10]);
});

test('readLines: a missing file names the path', async (t) => {
  const err = await t.throwsAsync(all(readLines(join(tmpdir(), 'no-such-file-ff.txt'))));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(err!.message, /no-such-file-ff\.txt: file not found/);
});
