import test from 'ava';
import { rlPromptSchema, type RlPrompt } from '../../schemas/rl-prompt.ts';

const goodPrompt: RlPrompt = {
  id: 'aokvqa-9',
  image: 'coco/train2017/000000000009.jpg',
  conversations: [{ from: 'human', value: '<image>\nWhich shape is red?\nA. circle\nB. star\nAnswer with the option\'s letter from the given choices directly.' }],
  caption_type: 2,
  length_bonus: 1,
  facts: ['A red circle.', 'The correct option is A.'],
};

test('valid rl-prompt records pass', (t) => {
  t.is(rlPromptSchema.validate(goodPrompt), null);
  t.is(rlPromptSchema.validate({ ...goodPrompt, caption_type: 7, length_bonus: 0.5, image: null, conversations: [{ from: 'human', value: 'Hi' }] }), null);
});

const bad: [string, unknown, string][] = [
  ['two turns', { ...goodPrompt, conversations: [...goodPrompt.conversations, { from: 'gpt', value: 'A' }] }, 'field "conversations" must have exactly 1 turn, got 2.'],
  ['caption_type 0', { ...goodPrompt, caption_type: 0 }, 'field "caption_type" must be in 1..7, got 0.'],
  ['caption_type 8', { ...goodPrompt, caption_type: 8 }, 'field "caption_type" must be in 1..7, got 8.'],
  ['caption_type 300', { ...goodPrompt, caption_type: 300 }, 'field "caption_type" must be an int8 integer in [-128, 127], got number 300.'],
  ['length_bonus 0', { ...goodPrompt, length_bonus: 0 }, 'field "length_bonus" must be > 0, got 0.'],
  ['length_bonus NaN', { ...goodPrompt, length_bonus: NaN }, 'field "length_bonus" must be a finite float32, got NaN.'],
  ['gpt first', { ...goodPrompt, conversations: [{ from: 'gpt', value: '<image>\nx' }] }, 'turn 0 is from "gpt" but "human" was expected (turns alternate human/gpt starting with human).'],
];
for (const [name, record, reason] of bad) {
  test(`rejects: ${name}`, (t) => {
    t.is(rlPromptSchema.validate(record), reason);
  });
}
