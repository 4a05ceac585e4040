import test from 'ava';
import { preferenceSchema, type Preference } from '../../schemas/preference.ts';

const good: Preference = {
  id: 'pref-1',
  image: 'coco/train2017/000000000042.jpg',
  conversations: [{ from: 'human', value: '<image>\nDescribe the image.' }],
  output_1: 'A red circle above a blue square.',
  output_2: 'A red circle, a blue square and a dog.',
  preference: 1,
  hallucination: true,
  facts: ['A red circle is above a blue square.'],
};

test('valid preference records pass', (t) => {
  t.is(preferenceSchema.validate(good), null);
  t.is(preferenceSchema.validate({ ...good, hallucination: null, preference: 2, facts: [] }), null);
  const multi = {
    ...good,
    conversations: [
      { from: 'human', value: '<image>\nWhat is red?' },
      { from: 'gpt', value: 'The circle.' },
      { from: 'human', value: 'And blue?' },
    ],
  };
  t.is(preferenceSchema.validate(multi), null);
});

const bad: [string, unknown, string][] = [
  ['preference 3', { ...good, preference: 3 }, 'field "preference" must be 1 or 2, got 3.'],
  ['preference 1.5', { ...good, preference: 1.5 }, 'field "preference" must be an int8 integer in [-128, 127], got number 1.5.'],
  ['prompt ends with gpt', { ...good, conversations: [...good.conversations, { from: 'gpt', value: 'x' }] }, 'turn 1 is from "gpt" but the prompt must end with a human turn.'],
  ['empty output', { ...good, output_2: '' }, 'field "output_2" is empty.'],
  ['<image> in output', { ...good, output_1: '<image> a circle' }, 'field "output_1" holds "<image>", which belongs only at the start of the first human turn.'],
  ['hallucination as string', { ...good, hallucination: 'yes' }, 'field "hallucination" must be a boolean, got string "yes".'],
  ['facts not strings', { ...good, facts: ['a', 2] }, 'field "facts[1]" must be a string, got number 2.'],
  ['empty fact', { ...good, facts: ['a', ' '] }, 'field "facts[1]" is empty.'],
  ['image missing <image>', { ...good, conversations: [{ from: 'human', value: 'Describe.' }] }, 'turn 0 must start with "<image>\\n" because the record has an image.'],
];
for (const [name, record, reason] of bad) {
  test(`rejects: ${name}`, (t) => {
    t.is(preferenceSchema.validate(record), reason);
  });
}
