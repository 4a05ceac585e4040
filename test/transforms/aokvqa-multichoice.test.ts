import test from 'ava';
import { fileURLToPath } from 'node:url';
import { aokvqaSource, type AokvqaItem } from '../../sources/aokvqa.ts';
import { aokvqaMultichoice, rlPromptMode } from '../../transforms/aokvqa-multichoice.ts';
import { conversationSchema } from '../../schemas/conversation.ts';
import { withOrigin } from '../../src/stream/origin.ts';
import { readSource, runStage } from '../sources/harness.ts';

const VAL = fileURLToPath(new URL('../fixtures/aokvqa/aokvqa_v1p0_val.json', import.meta.url));
const ROUNDS = fileURLToPath(new URL('../fixtures/aokvqa/handmade_rounds.json', import.meta.url));

async function items(file: string): Promise<AokvqaItem[]> {
  return (await readSource(aokvqaSource({ file }))).items;
}

const QUESTION = "What is in the motorcyclist's mouth?\nA. toothpick\nB. food\nC. popsicle stick\nD. cigarette";

test('real record, direct mode, written by hand', async (t) => {
  const { items: out, rejected } = await runStage(aokvqaMultichoice(), await items(VAL));
  t.deepEqual(rejected, []);
  t.deepEqual(out, [{
    id: 'aokvqa-22jbM6gDxdaMaunuzgrsBB',
    image: 'coco/val2017/000000461751.jpg',
    conversations: [
      { from: 'human', value: `<image>\n${QUESTION}\nAnswer with the option's letter from the given choices directly.` },
      { from: 'gpt', value: 'D' },
    ],
    source: 'aokvqa',
    meta: JSON.stringify({
      question_ids: ['22jbM6gDxdaMaunuzgrsBB'],
      answers: ['D'],
      split: 'val',
      facts: [
        "He's smoking while riding.",
        'The motorcyclist has a lit cigarette in his mouth while he rides on the street.',
        'The man is smoking.',
        "The answer to \"What is in the motorcyclist's mouth?\" is cigarette.",
      ],
    }),
  }]);
  t.is(conversationSchema.validate(out[0]), null);
});

test('real record, reasoning mode, written by hand', async (t) => {
  const first = await runStage(aokvqaMultichoice({ mode: 'reasoning' }), await items(VAL));
  t.deepEqual(first.items[0]!.conversations, [
    { from: 'human', value: `<image>\n${QUESTION}\nExplain your reasoning briefly, then state the correct option.` },
    { from: 'gpt', value: "He's smoking while riding. So the correct option is D." },
  ]);
  const all = await runStage(aokvqaMultichoice({ mode: 'reasoning', rationale: 'all' }), await items(VAL));
  t.is(all.items[0]!.conversations[1]!.value,
    "He's smoking while riding. The motorcyclist has a lit cigarette in his mouth while he rides on the street. The man is smoking. So the correct option is D.");
  t.regex(all.items[0]!.conversations[1]!.value, /correct option is D\.$/);
});

test('rounds: questions of one image form one conversation; image token only in the first turn', async (t) => {
  const { items: out } = await runStage(aokvqaMultichoice({ maxRounds: 3, imagePath: 'coco/train2017/{image_id:012}.jpg' }), await items(ROUNDS));
  t.deepEqual(out.map((c) => c.id), ['aokvqa-hand-q1', 'aokvqa-hand-q2']);
  const c = out[0]!;
  t.is(c.image, 'coco/train2017/000000000042.jpg');
  t.is(c.conversations.length, 4);
  t.true(c.conversations[0]!.value.startsWith('<image>\nWhat color is the large shape?\nA. red\nB. blue'));
  t.true(c.conversations[2]!.value.startsWith('Which shape is at the top?\nA. circle'));
  t.deepEqual([c.conversations[1]!.value, c.conversations[3]!.value], ['B', 'C']);
  t.deepEqual(JSON.parse(c.meta).answers, ['B', 'C']);
  for (const r of out) t.is(conversationSchema.validate(r), null);
});

test('bad input: correct_choice_idx out of range (and missing) is rejected with its origin', async (t) => {
  const good = (await items(VAL))[0]!;
  const bad = withOrigin({ ...good, question_id: 'bad1', correct_choice_idx: 4 }, { file: 'aokvqa_v1p0_val.json', line: 9, index: 1 });
  const test_ = withOrigin({ ...good, question_id: 'bad2', correct_choice_idx: null }, { file: 'aokvqa_v1p0_test.json', index: 0 });
  const { items: out, rejected } = await runStage(aokvqaMultichoice(), [bad, good, test_]);
  t.is(out.length, 1);
  t.is(rejected[0]!.reason, 'question_id bad1: "correct_choice_idx" 4 is out of range for 4 choices (0..3)');
  t.deepEqual(rejected[0]!.origin, { file: 'aokvqa_v1p0_val.json', line: 9, index: 1 });
  t.regex(rejected[1]!.reason, /question_id bad2: no "correct_choice_idx"/);
});

test('mixed mode: each question asked one way or the other by a seeded hash, answer matching its instruction', async (t) => {
  const base = (await items(VAL))[0]!;
  const many = Array.from({ length: 60 }, (_, i) => ({ ...base, question_id: `q${i}` }));
  const run = async (seed: number) => (await runStage(aokvqaMultichoice({ mode: 'mixed' }), many, { seed })).items.map((c) => c.conversations);
  const a = await run(1);
  t.is(a.length, 60);
  let direct = 0;
  for (const [q, answer] of a) {
    if (q!.value.endsWith("Answer with the option's letter from the given choices directly.")) {
      direct++;
      t.is(answer!.value, 'D');
    } else {
      t.true(q!.value.endsWith('Explain your reasoning briefly, then state the correct option.'));
      t.is(answer!.value, "He's smoking while riding. So the correct option is D.");
    }
  }
  t.true(direct > 15 && direct < 45, `about half direct, got ${direct} of 60`);
  t.deepEqual(await run(1), a, 'deterministic for a seed');
  t.notDeepEqual(await run(2), a, 'another seed asks other questions each way');
  t.throws(() => aokvqaMultichoice({ mode: 'mixed', instruction: 'Pick one.' }), { message: /option "instruction"/ });
});

test('options are checked at the factory', (t) => {
  t.throws(() => aokvqaMultichoice({ mode: 'cot' as never }), { message: /option "mode"/ });
  t.throws(() => aokvqaMultichoice({ maxRounds: 0 }), { message: /option "maxRounds"/ });
  t.throws(() => aokvqaMultichoice({ imagePath: '/abs/{image_id}.jpg' }), { message: /option "imagePath"/ });
});

test('rlPromptMode: RL prompts ask in the format the SFT mix taught; reasoning when unknown', (t) => {
  t.is(rlPromptMode('direct'), 'direct');
  t.is(rlPromptMode('reasoning'), 'reasoning');
  t.is(rlPromptMode('mixed'), 'reasoning', 'a mixed mix taught the reasoning answers too');
  t.is(rlPromptMode(undefined), 'reasoning');
});
