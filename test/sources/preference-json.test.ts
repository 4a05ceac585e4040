import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { preferenceJsonSource } from '../../sources/preference-json.ts';
import { preferenceSchema } from '../../schemas/preference.ts';
import { readSource } from './harness.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const FILE = fileURLToPath(new URL('../fixtures/llava/llava_preference_sample.json', import.meta.url));

test('LLaVA-RLHF preference items -> preference records (placeholder gpt turn dropped, nested list unwrapped)', async (t) => {
  const { items, rejected } = await readSource(preferenceJsonSource({ file: FILE }));
  t.deepEqual(rejected, []);
  t.deepEqual(items, [
    {
      id: 'hand-pref-1',
      image: 'coco/train2017/000000033471.jpg',
      conversations: [{ from: 'human', value: '<image>\nWhat are the colors of the bus in the image?' }],
      output_1: 'The bus in the image is white and red.',
      output_2: 'The bus is yellow and has a bicycle on its roof.',
      preference: 1,
      hallucination: false,
      facts: [],
    },
    {
      id: 'preference-1',
      image: 'coco/train2017/000000033471.jpg',
      conversations: [{ from: 'human', value: '<image>\nWhat feature can be seen on the back of the bus?' }],
      output_1: 'There is a ladder on the back of the bus.',
      output_2: 'The back of the bus features an advertisement.',
      preference: 2,
      hallucination: true,
      facts: [],
    },
  ]);
  for (const p of items) t.is(preferenceSchema.validate(p), null);
});

test('bad input: preference 3 is rejected with the reason and location', async (t) => {
  const dir = await tempDir(t, 'ff-pref-');
  const file = join(dir, 'pref.json');
  const item = { image: 'a.jpg', conversations: [{ from: 'human', value: '<image>\nQ?' }, { from: 'gpt', value: '' }], output_1: { value: 'A' }, output_2: { value: 'B' } };
  await writeFile(file, JSON.stringify([{ ...item, preference: 3 }, { ...item, preference: 2, hallucination: 'maybe' }, { ...item, preference: '1' }]));
  const { items, rejected } = await readSource(preferenceJsonSource({ file }));
  t.deepEqual(items.map((p) => [p.id, p.preference, p.hallucination]), [['preference-2', 1, null]]);
  t.is(rejected[0]!.reason, 'item preference-0: "preference" must be 1 or 2 (which output people preferred), got 3');
  t.deepEqual(rejected[0]!.origin, { file, line: 1, byteOffset: 1, index: 0 });
  t.regex(rejected[1]!.reason, /"hallucination" must be a boolean/);
});
