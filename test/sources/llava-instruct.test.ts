import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { llavaInstructSource } from '../../sources/llava-instruct.ts';
import { conversationSchema } from '../../schemas/conversation.ts';
import { readSource } from './harness.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const FILE = fileURLToPath(new URL('../fixtures/llava/llava_instruct_sample.json', import.meta.url));

test('LLaVA items -> conversations: image prefix, <image> moved to the front, repeated ids numbered', async (t) => {
  const { items, rejected } = await readSource(llavaInstructSource({ file: FILE }));
  t.deepEqual(rejected, []);
  t.is(items.length, 2);
  t.deepEqual(items[0], {
    id: '000000033471',
    image: 'coco/train2017/000000033471.jpg',
    conversations: [
      { from: 'human', value: '<image>\nWhat are the colors of the bus in the image?' },
      { from: 'gpt', value: 'The bus in the image is white and red.' },
      { from: 'human', value: 'What feature can be seen on the back of the bus?' },
      { from: 'gpt', value: 'The back of the bus features an advertisement.' },
      { from: 'human', value: 'Is the bus driving down the street or pulled off to the side?' },
      { from: 'gpt', value: 'The bus is driving down the street, which is crowded with people and other vehicles.' },
    ],
    source: 'llava',
    meta: '',
  });
  t.is(items[1]!.id, '000000033471-2');
  t.deepEqual(JSON.parse(items[1]!.meta), { raw_id: '000000033471' });
  for (const c of items) t.is(conversationSchema.validate(c), null);
});

test('bad items: image path with "..", <image> in a later turn, wrong speaker; each rejected with its location', async (t) => {
  const dir = await tempDir(t, 'ff-llava-');
  const file = join(dir, 'bad.json');
  await writeFile(file, JSON.stringify([
    { id: 'a', image: '../../etc/passwd', conversations: [{ from: 'human', value: '<image>\nHi' }, { from: 'gpt', value: 'Yo' }] },
    { id: 'b', image: 'x.jpg', conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'see <image>' }] },
    { id: 'c', image: 'x.jpg', conversations: [{ from: 'user', value: 'Hi' }] },
    { id: 'd', conversations: [{ from: 'human', value: 'Text only?' }, { from: 'gpt', value: 'Yes.' }] },
  ], null, 1));
  const { items, rejected } = await readSource(llavaInstructSource({ file }));
  t.deepEqual(items.map((i) => [i.id, i.image]), [['d', null]]);
  t.is(rejected.length, 3);
  t.is(rejected[0]!.reason, 'item a: field "image" must not contain a ".." segment, got "coco/train2017/../../etc/passwd".');
  t.is(rejected[1]!.reason, 'item b: turn 1 holds "<image>" (only the first human turn may)');
  t.is(rejected[2]!.reason, 'item c: conversations[0].from must be "human" or "gpt", got "user"');
  t.deepEqual(rejected[0]!.origin, { file, line: 2, byteOffset: 3, index: 0 });
});

test('options are checked at the factory', (t) => {
  t.throws(() => llavaInstructSource({ file: FILE, imagePrefix: '../up/' }), { message: /option "imagePrefix"/ });
});
