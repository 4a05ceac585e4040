import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jsonArrayFiles, type JsonArrayElement } from '../../sources/json-array-files.ts';
import type { FactflowError } from '../../src/errors.ts';
import type { SourceContext } from '../../src/stream/stage.ts';

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-json-array-files-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function context(): SourceContext {
  return {
    name: 'test', signal: new AbortController().signal, seed: 1, partition: { index: 0, count: 1 },
    counts: { in: 0, out: 0, rejected: 0 },
    reject: () => {}, setTotal: () => {}, note: () => {},
  };
}

test('elements of several files in order: ordinal across files, index, line and byte within each', async (t) => {
  const a = path.join(tmp, 'a.json');
  const b = path.join(tmp, 'b.json');
  await writeFile(a, '[{"q": 1},\n {"q": 2}]');
  await writeFile(b, '[\n"x"]');
  const files = jsonArrayFiles({ file: [a, b] });
  const got: JsonArrayElement[] = [];
  for await (const e of files.elements(context())) got.push(e);
  t.deepEqual(got, [
    { value: { q: 1 }, ordinal: 0, origin: { file: a, line: 1, byteOffset: 1, index: 0 } },
    { value: { q: 2 }, ordinal: 1, origin: { file: a, line: 2, byteOffset: 12, index: 1 } },
    { value: 'x', ordinal: 2, origin: { file: b, line: 2, byteOffset: 2, index: 0 } },
  ]);
  const prints = await files.inputs();
  t.is(prints.length, 2);
});

test('the file option is checked at the factory; a bad file fails naming it and the byte', async (t) => {
  for (const file of ['', [], [''], 7]) {
    t.throws(() => jsonArrayFiles({ file: file as string }), { code: 'FF_ERR_INVALID_OPTION', message: /option "file": must be a path or URL/ });
  }
  const bad = path.join(tmp, 'bad.json');
  await writeFile(bad, '{"annotations": []}');
  const err = await (async () => {
    try {
      for await (const _ of jsonArrayFiles({ file: bad }).elements(context()));
    } catch (e) {
      return e as FactflowError;
    }
    return undefined;
  })();
  t.is(err?.code, 'FF_ERR_BAD_INPUT');
  t.regex(err!.message, /bad\.json:1: byte 0: expected the top-level JSON value to be an array/);
});
