import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { deadLetters, safeJsonValue } from '../../src/stream/dead-letters.ts';
import { tempDir } from './helpers.ts';

test('dead letters: file exists at once, lines have every key, flush makes them visible', async (t) => {
  const path = join(await tempDir(t), 'sub', 'dl.jsonl');
  const dl = deadLetters(path);
  t.is(await readFile(path, 'utf8'), '');
  dl.write('parse', { id: 1n, img: new Uint8Array(10) }, 'bad json', { file: 'a.json', byteOffset: 77, index: 3 });
  dl.flush();
  const line = JSON.parse((await readFile(path, 'utf8')).trim());
  t.deepEqual(line, { stage: 'parse', file: 'a.json', line: null, byteOffset: 77, index: 3, reason: 'bad json', record: { id: '1', img: '<10 bytes>' } });
  dl.write('parse', 5, 'x');
  t.is(dl.count(), 2);
  dl.close();
  dl.write('parse', 6, 'after close');
  t.is(dl.count(), 3);
  t.is((await readFile(path, 'utf8')).trim().split('\n').length, 2);
});

test('safeJsonValue handles cycles, maps, sets, dates, errors and non-finite numbers', (t) => {
  const o: Record<string, unknown> = { n: Number.NaN, d: new Date(0), e: new Error('bad'), m: new Map([['k', 1n]]), s: new Set([1]) };
  o.self = o;
  const shared = { x: 1 };
  t.deepEqual(safeJsonValue(o), { n: 'NaN', d: '1970-01-01T00:00:00.000Z', e: 'bad', m: { k: '1' }, s: [1], self: '[circular]' });
  t.deepEqual(safeJsonValue([shared, shared, undefined]), [{ x: 1 }, { x: 1 }, null]);
});
