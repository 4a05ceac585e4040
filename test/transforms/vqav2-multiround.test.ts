import test from 'ava';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { vqav2Multiround, compileImagePath, capitalizeFirst } from '../../transforms/vqav2-multiround.ts';
import { vqav2Source } from '../../sources/vqav2.ts';
import { conversationSchema, type Conversation } from '../../schemas/conversation.ts';
import type { Vqav2Item } from '../../schemas/vqav2-item.ts';
import type { SourceContext, StageContext } from '../../src/stream/stage.ts';
import { originOf, withOrigin, type Origin } from '../../src/stream/origin.ts';

const EMMA = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'vqav2', 'emma-datasets');
const SUFFIX = '\nAnswer the question using a single word or phrase.';

interface Rejection { record: unknown; reason: string; origin?: Origin }

function fakeCtx(name: string): { ctx: SourceContext & StageContext; rejections: Rejection[] } {
  const rejections: Rejection[] = [];
  const counts = { in: 0, out: 0, rejected: 0 };
  const ctx = {
    name, signal: new AbortController().signal, seed: 1, partition: { index: 0, count: 1 }, counts,
    reject(record: unknown, reason: string | Error, origin?: Origin) {
      counts.rejected++;
      rejections.push({ record, reason: typeof reason === 'string' ? reason : reason.message, origin: origin ?? originOf(record) });
    },
    setTotal() {},
    note() {},
  };
  return { ctx, rejections };
}

async function realItems(answerTypes?: string[]): Promise<Vqav2Item[]> {
  const { ctx } = fakeCtx('vqav2');
  const items: Vqav2Item[] = [];
  for await (const x of vqav2Source({ dir: EMMA, answerTypes }).read(ctx)) items.push(x);
  return items;
}

async function convert(items: Iterable<Vqav2Item> | AsyncIterable<Vqav2Item>, options: Parameters<typeof vqav2Multiround>[0] = {}) {
  const { ctx, rejections } = fakeCtx('vqav2-multiround');
  const out: Conversation[] = [];
  const input = (async function* () { yield* items; })();
  for await (const c of vqav2Multiround(options).run(input, ctx)) out.push(c);
  return { out, rejections };
}

test('real VQA-v2 rows, yes/no only (the paper default): conversations as written by hand', async (t) => {
  const { out, rejections } = await convert(await realItems(['yes/no']));
  t.deepEqual(rejections, []);
  t.is(out.length, 11); // 11 of the 13 images have yes/no questions
  t.deepEqual(out.map((c) => c.id), [
    'vqav2-6818-0', 'vqav2-403385-0', 'vqav2-174482-0', 'vqav2-46378-0', 'vqav2-517069-0', 'vqav2-179765-0',
    'vqav2-182417-0', 'vqav2-190236-0', 'vqav2-331352-0', 'vqav2-87038-0', 'vqav2-252219-0',
  ]);
  t.deepEqual(out[1], {
    id: 'vqav2-403385-0',
    image: 'coco/train2017/000000403385.jpg',
    conversations: [
      { from: 'human', value: '<image>\nDoes this bathroom need repair?\nAnswer the question using a single word or phrase.' },
      { from: 'gpt', value: 'Yes' },
      { from: 'human', value: 'Is there enough toilet tissue in the bathroom?\nAnswer the question using a single word or phrase.' },
      { from: 'gpt', value: 'Yes' },
      { from: 'human', value: 'Is there a mop in the bathroom?\nAnswer the question using a single word or phrase.' },
      { from: 'gpt', value: 'No' },
    ],
    source: 'vqav2',
    meta: '{"question_ids":[403385000,403385001,403385002],"subtype":"val2014"}',
  });
  t.deepEqual(out[2]!.conversations, [
    { from: 'human', value: '<image>\nIs the bike locked up?\nAnswer the question using a single word or phrase.' },
    { from: 'gpt', value: 'Yes' },
    { from: 'human', value: 'Is the U-Lock locked to the bike stand?\nAnswer the question using a single word or phrase.' },
    { from: 'gpt', value: 'Yes' },
    { from: 'human', value: 'Is the bicycle in motion?\nAnswer the question using a single word or phrase.' },
    { from: 'gpt', value: 'No' },
  ]);
  t.deepEqual(out[10], {
    id: 'vqav2-252219-0',
    image: 'coco/train2017/000000252219.jpg',
    conversations: [
      { from: 'human', value: '<image>\nDoes the crosswalk sign indicate that it is safe to cross?\nAnswer the question using a single word or phrase.' },
      { from: 'gpt', value: 'No' },
    ],
    source: 'vqav2',
    meta: '{"question_ids":[252219000],"subtype":"val2014"}',
  });
  for (const c of out) t.is(conversationSchema.validate(c), null, c.id);
  // each conversation remembers where its first question's annotation was
  t.is(originOf(out[0])?.file, path.join(EMMA, 'v2_mscoco_train2014_annotations.json'));
});

test('all answer types: numbers stay digits, phrases get a capital, one conversation per image', async (t) => {
  const { out } = await convert(await realItems());
  t.is(out.length, 13);
  t.deepEqual(out[0], {
    id: 'vqav2-6818-0',
    image: 'coco/train2017/000000006818.jpg',
    conversations: [
      { from: 'human', value: '<image>\nWhat color is the wall?\nAnswer the question using a single word or phrase.' },
      { from: 'gpt', value: 'White' },
      { from: 'human', value: 'Is there a window?\nAnswer the question using a single word or phrase.' },
      { from: 'gpt', value: 'Yes' },
      { from: 'human', value: 'What room is this?\nAnswer the question using a single word or phrase.' },
      { from: 'gpt', value: 'Bathroom' },
    ],
    source: 'vqav2',
    meta: '{"question_ids":[6818000,6818001,6818002],"subtype":"val2014"}',
  });
  const fruit = out.find((c) => c.id === 'vqav2-37777-0')!;
  t.deepEqual(fruit.conversations.filter((x) => x.from === 'gpt').map((x) => x.value), ['Kitchen', '2', '7']);
  const sink = out.find((c) => c.id === 'vqav2-331352-0')!;
  t.deepEqual(sink.conversations.slice(0, 2), [
    { from: 'human', value: '<image>\nWhere is the sink?\nAnswer the question using a single word or phrase.' },
    { from: 'gpt', value: 'Above toilet' },
  ]);
  const smelly = out.find((c) => c.id === 'vqav2-252219-0')!;
  t.is(smelly.conversations[3]!.value, 'Man in middle');
  t.is(smelly.conversations[4]!.value, 'How many people are barefooted in the picture?' + SUFFIX);
  for (const c of out) {
    t.is(conversationSchema.validate(c), null, c.id);
    // only the first human turn holds <image>
    t.is(c.conversations.filter((x) => x.value.includes('<image>')).length, 1);
  }
});

test('maxRounds splits an image into numbered conversations; suffix, capitalize, imagePath options', async (t) => {
  const bike = (await realItems()).filter((x) => x.image_id === 174482); // 8 questions
  const { out } = await convert(bike, { maxRounds: 3, suffix: '', capitalize: false, imagePath: 'coco/{subtype}/COCO_{subtype}_{image_id:012}.jpg', idPrefix: 'vqa' });
  t.deepEqual(out.map((c) => c.id), ['vqa-174482-0', 'vqa-174482-1', 'vqa-174482-2']);
  t.deepEqual(out.map((c) => c.conversations.length / 2), [3, 3, 2]);
  t.is(out[0]!.image, 'coco/val2014/COCO_val2014_000000174482.jpg');
  t.deepEqual(out[1], {
    id: 'vqa-174482-1',
    image: 'coco/val2014/COCO_val2014_000000174482.jpg',
    conversations: [
      { from: 'human', value: '<image>\nWhat color is the bike?' },
      { from: 'gpt', value: 'blue' },
      { from: 'human', value: 'Is the U-Lock locked to the bike stand?' },
      { from: 'gpt', value: 'yes' },
      { from: 'human', value: 'How many bikes are pictured?' },
      { from: 'gpt', value: '1' },
    ],
    source: 'vqav2',
    meta: '{"question_ids":[174482003,174482004,174482005],"subtype":"val2014"}',
  });
  const plain = await convert(bike.slice(0, 1), { imagePath: 'images/{image_id}.jpg' });
  t.is(plain.out[0]!.image, 'images/174482.jpg');
});

function item(image_id: number, k: number, question: string, answer: string): Vqav2Item {
  return { question_id: image_id * 1000 + k, image_id, question, answer, answer_type: 'yes/no', question_type: 'is the', answers: [], subtype: 'train2014' };
}

test('input not grouped by image: the image forms several conversations with distinct ids', async (t) => {
  const items = [item(42, 0, 'Is it red?', 'yes'), item(7, 0, 'Is it big?', 'no'), item(42, 1, 'Is it round?', 'no')];
  const { out } = await convert(items);
  t.deepEqual(out.map((c) => c.id), ['vqav2-42-0', 'vqav2-7-0', 'vqav2-42-1']);
  t.deepEqual(out[2]!.conversations, [
    { from: 'human', value: '<image>\nIs it round?' + SUFFIX },
    { from: 'gpt', value: 'No' },
  ]);
});

test('bad items are rejected with a reason and their origin; the rest still convert', async (t) => {
  const origin = { file: 'a.json', byteOffset: 120, line: 1, index: 3 };
  const bad = withOrigin(item(5, 0, '   ', 'yes'), origin);
  const sneaky = item(5, 1, 'Is <image> here?', 'yes');
  const noSubtype = { ...item(6, 0, 'Is it?', 'yes'), subtype: '' };
  const good = item(5, 2, 'Is it blue?', 'no');
  const { out, rejections } = await convert([bad, sneaky, good]);
  t.deepEqual(out.map((c) => c.id), ['vqav2-5-0']);
  t.deepEqual(rejections.map((r) => r.reason), [
    'question_id 5000: "question" is empty or not a string',
    'question_id 5001: the text holds "<image>", which belongs only at the start of the first turn',
  ]);
  t.deepEqual(rejections[0]!.origin, origin);
  const sub = await convert([noSubtype], { imagePath: '{subtype}/{image_id}.jpg' });
  t.deepEqual(sub.rejections.map((r) => r.reason), ['question_id 6000: imagePath uses {subtype} but the item has no data_subtype']);
  // items in = items inside conversations + rejected
  t.is(out.reduce((n, c) => n + c.conversations.length / 2, 0) + rejections.length, 3);
});

test('options are checked at the factory, naming the option', (t) => {
  const bad: [Parameters<typeof vqav2Multiround>[0], string, RegExp][] = [
    [{ maxRounds: 0 }, 'maxRounds', /integer >= 1/],
    [{ maxRounds: 2.5 }, 'maxRounds', /integer >= 1/],
    [{ imagePath: 'coco/{image}.jpg' }, 'imagePath', /unknown placeholder \{image\}/],
    [{ imagePath: 'coco/{image_id:12}.jpg' }, 'imagePath', /unknown placeholder \{image_id:12\}/],
    [{ imagePath: 'coco/{image_id.jpg' }, 'imagePath', /unbalanced brace/],
    [{ imagePath: 'coco/image_id}.jpg' }, 'imagePath', /unbalanced brace/],
    [{ imagePath: '/data/coco/{image_id}.jpg' }, 'imagePath', /relative to the image root/],
    [{ imagePath: '../{image_id}.jpg' }, 'imagePath', /"\.\." segment/],
    [{ suffix: 'Look at <image>' }, 'suffix', /<image>/],
    [{ idPrefix: 'a b' }, 'idPrefix', /without spaces/],
  ];
  for (const [options, option, message] of bad) {
    const err = t.throws(() => vqav2Multiround(options), { code: 'FF_ERR_INVALID_OPTION' });
    t.is((err as unknown as { option: string }).option, option);
    t.regex(err!.message, message);
  }
  t.is(compileImagePath('x/{image_id:06}-{image_id}.png').render(42, ''), 'x/000042-42.png');
  t.is(capitalizeFirst('yes'), 'Yes');
  t.is(capitalizeFirst('2'), '2');
  t.is(capitalizeFirst(''), '');
});
