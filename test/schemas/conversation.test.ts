import test from 'ava';
import { conversationSchema, type Conversation } from '../../schemas/conversation.ts';

const good: Conversation = {
  id: 'vqav2-42',
  image: 'coco/train2017/000000000042.jpg',
  conversations: [
    { from: 'human', value: '<image>\nIs there a red circle?' },
    { from: 'gpt', value: 'Yes' },
    { from: 'human', value: 'Is it large?' },
    { from: 'gpt', value: 'No' },
  ],
  source: 'vqav2',
  meta: '{"question_ids":[1,2]}',
};

const textOnly: Conversation = {
  id: 'llava-7',
  image: null,
  conversations: [
    { from: 'human', value: 'Write a haiku.' },
    { from: 'gpt', value: 'Shapes on a canvas' },
  ],
  source: 'llava',
  meta: '',
};

const turns = (...t: [string, string][]): Conversation['conversations'] => t.map(([from, value]) => ({ from: from as 'human', value }));

test('valid records pass, with and without an image', (t) => {
  t.is(conversationSchema.validate(good), null);
  t.is(conversationSchema.validate(textOnly), null);
  t.true(conversationSchema.is(good));
  t.is(conversationSchema.validate({ ...good, meta: '{}' }), null);
  t.is(conversationSchema.name, 'conversation');
  t.is(conversationSchema.version, 1);
});

const bad: [string, unknown, string][] = [
  ['not an object', 'hello', 'the record must be an object, got string "hello".'],
  ['empty id', { ...good, id: ' ' }, 'field "id" is empty.'],
  ['missing field', { ...good, source: undefined }, 'field "source" is missing but is required.'],
  ['wrong type', { ...good, image: 5 }, 'field "image" must be a string, got number 5.'],
  ['unknown field', { ...good, extra: 1 }, 'field "extra" is not part of the schema.'],
  ['bad turn shape', { ...good, conversations: [{ from: 'human' }] }, 'field "conversations[0].value" is missing but is required.'],
  ['no turns', { ...good, conversations: [] }, 'field "conversations" has no turns.'],
  ['starts with gpt', { ...textOnly, conversations: turns(['gpt', 'hi'], ['human', 'yo']) }, 'turn 0 is from "gpt" but "human" was expected (turns alternate human/gpt starting with human).'],
  ['two humans in a row', { ...good, conversations: turns(['human', '<image>\nq'], ['human', 'q2']) }, 'turn 1 is from "human" but "gpt" was expected (turns alternate human/gpt starting with human).'],
  ['unknown speaker', { ...textOnly, conversations: turns(['human', 'q'], ['assistant', 'a']) }, 'turn 1 is from "assistant" but "gpt" was expected (turns alternate human/gpt starting with human).'],
  ['ends with human', { ...good, conversations: good.conversations.slice(0, 3) }, 'turn 2 is from "human" with no gpt answer after it (a conversation needs complete human/gpt pairs).'],
  ['empty value', { ...textOnly, conversations: turns(['human', 'q'], ['gpt', '  ']) }, 'turn 1 has an empty value.'],
  ['image without <image>', { ...good, conversations: turns(['human', 'q'], ['gpt', 'a']) }, 'turn 0 must start with "<image>\\n" because the record has an image.'],
  ['<image> without newline', { ...good, conversations: turns(['human', '<image> q'], ['gpt', 'a']) }, 'turn 0 must start with "<image>\\n" because the record has an image.'],
  ['<image> but no image', { ...textOnly, conversations: turns(['human', '<image>\nq'], ['gpt', 'a']) }, 'turn 0 holds "<image>" but the record has no image.'],
  ['<image> twice in turn 0', { ...good, conversations: turns(['human', '<image>\nq <image>'], ['gpt', 'a']) }, 'turn 0 holds "<image>" outside the start of the first human turn.'],
  ['<image> in a later turn', { ...good, conversations: turns(['human', '<image>\nq'], ['gpt', 'a'], ['human', '<image>\nq'], ['gpt', 'a']) }, 'turn 2 holds "<image>" outside the start of the first human turn.'],
  ['<image> in an answer', { ...good, conversations: turns(['human', '<image>\nq'], ['gpt', 'see <image>']) }, 'turn 1 holds "<image>" outside the start of the first human turn.'],
  ['only the image token', { ...good, conversations: turns(['human', '<image>\n '], ['gpt', 'a']) }, 'turn 0 has no text after "<image>\\n".'],
  ['absolute image', { ...good, image: '/data/coco/1.jpg' }, 'field "image" must be relative to the image root, got absolute path "/data/coco/1.jpg".'],
  ['windows image', { ...good, image: 'C:\\coco\\1.jpg' }, 'field "image" must be relative to the image root, got absolute path "C:\\\\coco\\\\1.jpg".'],
  ['.. in image', { ...good, image: 'coco/../../etc/passwd' }, 'field "image" must not contain a ".." segment, got "coco/../../etc/passwd".'],
  ['empty image', { ...good, image: '' }, 'field "image" is an empty path; use null for a text-only record.'],
  ['empty source', { ...good, source: '' }, 'field "source" is empty.'],
  ['meta not JSON', { ...good, meta: '{oops' }, 'field "meta" is not valid JSON text.'],
  ['meta not an object', { ...good, meta: '[1]' }, 'field "meta" must be the JSON text of an object (or "").'],
];

for (const [name, record, reason] of bad) {
  test(`rejects: ${name}`, (t) => {
    t.is(conversationSchema.validate(record), reason);
    t.false(conversationSchema.is(record));
  });
}

test('a ".." inside a file name is fine (only whole segments escape the root)', (t) => {
  t.is(conversationSchema.validate({ ...good, image: 'coco/a..b.jpg' }), null);
});
