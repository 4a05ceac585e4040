import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FactflowError } from '../../src/errors.ts';
import { loadShapesTruth } from '../../sources/shapes-truth.ts';

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-truth-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const gt = (image: string, split: 'train' | 'eval') => ({
  image, image_id: 1, dataset: 'coco', split, width: 64, height: 64, background: 'grey',
  objects: [{ shape: 'circle', color: 'red', size: 'large', box: [1, 2, 20, 22] }],
});

test('keyed by image path; split keeps one split', async (t) => {
  const file = path.join(tmp, 'ground_truth.jsonl');
  await writeFile(file, [gt('coco/train2017/a.jpg', 'train'), gt('coco/val2014/b.jpg', 'eval')].map((g) => JSON.stringify(g)).join('\n') + '\n');
  const all = await loadShapesTruth(file);
  t.deepEqual([...all.keys()], ['coco/train2017/a.jpg', 'coco/val2014/b.jpg']);
  t.is(all.get('coco/val2014/b.jpg')!.objects[0]!.color, 'red');
  t.deepEqual([...(await loadShapesTruth(file, { split: 'eval' })).keys()], ['coco/val2014/b.jpg']);
});

test('a broken line names file:line; a missing file is a bad input', async (t) => {
  const file = path.join(tmp, 'broken.jsonl');
  await writeFile(file, `${JSON.stringify(gt('a.jpg', 'eval'))}\n{"image": "b.jpg", "objects": 3}\n`);
  const err = await loadShapesTruth(file).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(err?.code, 'FF_ERR_BAD_RECORD');
  t.true(err!.message.startsWith(`${file}:2: not a ground-truth line`), err!.message);
  const missing = await loadShapesTruth(path.join(tmp, 'nope.jsonl')).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(missing?.code, 'FF_ERR_BAD_INPUT');
  t.regex(missing!.message, /nope\.jsonl: cannot read the ground truth/);
});
