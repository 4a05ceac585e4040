import test from 'ava';
import { fileURLToPath } from 'node:url';
import { aokvqaSource } from '../../sources/aokvqa.ts';
import { aokvqaMultichoice } from '../../transforms/aokvqa-multichoice.ts';
import { toRlPrompt } from '../../transforms/to-rl-prompt.ts';
import { rlPromptSchema } from '../../schemas/rl-prompt.ts';
import type { Conversation } from '../../schemas/conversation.ts';
import { readSource, runStage } from '../sources/harness.ts';

const AOKVQA = fileURLToPath(new URL('../fixtures/aokvqa/aokvqa_v1p0_val.json', import.meta.url));

const conv = (id: string, source: string, q: string, a: string, meta = ''): Conversation => ({
  id, image: 'coco/train2017/000000000001.jpg', conversations: [{ from: 'human', value: `<image>\n${q}` }, { from: 'gpt', value: a }, { from: 'human', value: 'More?' }, { from: 'gpt', value: 'No.' }], source, meta,
});

test('caption types: llava general, VQA yes/no, A-OKVQA letter; first human turn only', async (t) => {
  const { items: aok } = await runStage(aokvqaMultichoice({ mode: 'reasoning' }), (await readSource(aokvqaSource({ file: AOKVQA }))).items);
  const input = [
    conv('l1', 'llava', 'Describe the image.', 'A bus.'),
    conv('v1', 'vqav2', 'Is there a bus?\nAnswer the question using a single word or phrase.', 'Yes'),
    conv('v2', 'vqav2', 'Is it raining?', 'No'),
    conv('v3', 'vqav2', 'What color?', 'Red'),
    ...aok,
  ];
  const { items, rejected } = await runStage(toRlPrompt(), input);
  t.deepEqual(rejected, []);
  t.deepEqual(items.map((p) => p.caption_type), [1, 7, 6, 1, 5]);
  t.deepEqual(items[0]!.conversations, [{ from: 'human', value: '<image>\nDescribe the image.' }]);
  t.is(items[4]!.id, 'aokvqa-22jbM6gDxdaMaunuzgrsBB');
  t.is(items[4]!.facts.length, 4);
  t.true(items.every((p) => p.length_bonus === 1 && rlPromptSchema.validate(p) === null));
});

test('an A-OKVQA answer beyond D and a record without answers are rejected', async (t) => {
  const { items, rejected } = await runStage(toRlPrompt({ lengthBonus: 0.5 }), [
    conv('a1', 'aokvqa', 'Q', 'E', JSON.stringify({ answers: ['E'] })),
    conv('a2', 'aokvqa', 'Q', 'B'),
    conv('a3', 'aokvqa', 'Q', 'B', JSON.stringify({ answers: ['B'] })),
  ]);
  t.deepEqual(items.map((p) => [p.id, p.caption_type, p.length_bonus]), [['a3', 3, 0.5]]);
  t.is(rejected[0]!.reason, 'record a1: ground-truth option "E" is not A-D (caption types 2-5 cover A-D only)');
  t.is(rejected[1]!.reason, 'record a2: an aokvqa record needs meta.answers (the ground-truth letters)');
});
