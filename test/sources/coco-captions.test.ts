import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cocoCaptionsSource } from '../../sources/coco-captions.ts';
import { readSource } from './harness.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const FILE = fileURLToPath(new URL('../fixtures/coco/captions_val2014.json', import.meta.url));

test('real COCO captions file: per-image captions in file order, whitespace normalised', async (t) => {
  const { items, rejected } = await readSource(cocoCaptionsSource({ file: FILE }));
  t.deepEqual(rejected, []);
  t.is(items.length, 103);
  t.is(items.reduce((a, i) => a + i.captions.length, 0), 518);
  t.deepEqual(items[0], {
    image_id: 318219,
    file_name: 'COCO_val2014_000000318219.jpg',
    width: 556,
    height: 640,
    captions: [
      'A young boy standing in front of a computer keyboard.',
      'a little boy wearing headphones and looking at a computer monitor',
      'He is listening intently to the computer at school.',
      'A young boy stares up at the computer monitor.',
      'a young kid with head phones on using a computer',
    ],
  });
  t.deepEqual(items.filter((i) => i.captions.length === 6).map((i) => i.image_id).sort(), [248148, 507273, 84258].sort());
});

test('bad entries are rejected with byte offsets; captions of unknown images reported', async (t) => {
  const dir = await tempDir(t, 'ff-coco-');
  const file = join(dir, 'captions_x.json');
  await writeFile(file, JSON.stringify({
    images: [{ id: 1, file_name: 'a.jpg', width: 4, height: 3 }, { file_name: 'b.jpg' }],
    annotations: [{ image_id: 1, id: 10, caption: '  A  cat. ' }, { image_id: 2, id: 11, caption: 'ghost' }, { image_id: 1, id: 12 }],
  }));
  const { items, rejected } = await readSource(cocoCaptionsSource({ file }));
  t.deepEqual(items, [{ image_id: 1, file_name: 'a.jpg', width: 4, height: 3, captions: ['A cat.'] }]);
  t.deepEqual(rejected.map((r) => r.reason), [
    'caption annotation needs an integer "image_id" and a string "caption"',
    'image entry needs an integer "id" and a string "file_name"',
    '1 caption(s) for image 2, which is not in "images"',
  ]);
  t.is(rejected[0]!.origin?.file, file);
  t.is(typeof rejected[0]!.origin?.byteOffset, 'number');
});

test('a file without "annotations" is a clear error', async (t) => {
  const dir = await tempDir(t, 'ff-coco-');
  const file = join(dir, 'instances.json');
  await writeFile(file, JSON.stringify({ images: [] }));
  const err = await t.throwsAsync(readSource(cocoCaptionsSource({ file })));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.true(err!.message.includes(file));
  t.regex(err!.message, /no member "annotations"/);
});
