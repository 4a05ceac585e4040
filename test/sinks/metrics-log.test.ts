import test from 'ava';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cutMetrics } from '../../sinks/metrics-log.ts';
import { tempDir } from '../helpers/temp-dir.ts';

test('cutMetrics keeps the lines of steps up to the checkpoint and drops a torn last line', async (t) => {
  const dir = await tempDir(t, 'ff-metrics-');
  const file = path.join(dir, 'metrics.jsonl');
  await writeFile(file, '{"step":10,"loss":1}\n{"step":20,"loss":0.5}\n\n{"note":"no step"}\n{"step":30,"loss":0.4}\n{"step":40,"lo');
  await cutMetrics(file, 20);
  t.is(await readFile(file, 'utf8'), '{"step":10,"loss":1}\n{"step":20,"loss":0.5}\n');
  t.deepEqual(await readdir(dir), ['metrics.jsonl']); // no temporary file left
});

test('cutMetrics at step 0 removes the file; a missing file stays missing', async (t) => {
  const dir = await tempDir(t, 'ff-metrics-');
  const file = path.join(dir, 'metrics.jsonl');
  await writeFile(file, '{"step":10}\n');
  await cutMetrics(file, 0);
  t.deepEqual(await readdir(dir), []);
  await cutMetrics(file, 5);
  t.deepEqual(await readdir(dir), []);
});
