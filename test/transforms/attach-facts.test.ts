import test from 'ava';
import { fileURLToPath } from 'node:url';
import { cocoCaptionsSource } from '../../sources/coco-captions.ts';
import { aokvqaSource } from '../../sources/aokvqa.ts';
import { flickr30kEntitiesSource } from '../../sources/flickr30k-entities.ts';
import { aokvqaFacts, attachFacts, cocoCaptionFacts, factTable, flickr30kFacts, imageKey } from '../../transforms/attach-facts.ts';
import { runStage } from '../sources/harness.ts';

const COCO = fileURLToPath(new URL('../fixtures/coco/captions_val2014.json', import.meta.url));
const AOKVQA = fileURLToPath(new URL('../fixtures/aokvqa/aokvqa_v1p0_val.json', import.meta.url));
const FLICKR = fileURLToPath(new URL('../fixtures/flickr30k', import.meta.url));

test('imageKey reduces the different namings of one image to one key', (t) => {
  t.is(imageKey('coco/train2017/000000318219.jpg'), 'coco:318219');
  t.is(imageKey('COCO_val2014_000000318219.jpg'), 'coco:318219');
  t.is(imageKey('318219.jpg'), 'coco:318219');
  t.is(imageKey('flickr30k/4945942737.jpg'), 'flickr30k:4945942737');
  t.is(imageKey('coco/nothing.jpg'), null);
});

test('COCO captions, A-OKVQA rationales and Flickr30k captions join records by image', async (t) => {
  const stage = attachFacts<{ id: string; image: string | null; facts?: string[] }>({
    from: [
      cocoCaptionFacts(cocoCaptionsSource({ file: COCO })),
      aokvqaFacts(aokvqaSource({ file: AOKVQA })),
      flickr30kFacts(flickr30kEntitiesSource({ dir: FLICKR })),
    ],
  });
  const { items } = await runStage(stage, [
    { id: 'a', image: 'coco/train2017/000000318219.jpg' },
    { id: 'b', image: 'coco/val2017/000000461751.jpg', facts: ['Own fact.'] },
    { id: 'c', image: 'flickr30k/4945942737.jpg' },
    { id: 'd', image: null },
    { id: 'e', image: 'coco/train2017/000000000001.jpg' },
  ]);
  t.deepEqual(items[0]!.facts, [
    'A young boy standing in front of a computer keyboard.',
    'a little boy wearing headphones and looking at a computer monitor',
    'He is listening intently to the computer at school.',
    'A young boy stares up at the computer monitor.',
    'a young kid with head phones on using a computer',
  ]);
  t.deepEqual(items[1]!.facts, [
    'Own fact.',
    "He's smoking while riding.",
    'The motorcyclist has a lit cigarette in his mouth while he rides on the street.',
    'The man is smoking.',
    "The answer to \"What is in the motorcyclist's mouth?\" is cigarette.",
  ]);
  t.is(items[2]!.facts.length, 5);
  t.is(items[2]!.facts[0], 'A girl with brown hair sits on the edge of a cement area overlooking water.');
  t.deepEqual(items[3]!.facts, []);
  t.deepEqual(items[4]!.facts, []);
  t.deepEqual(stage.report(), { records: 5, withFacts: 3, without: 2, tableImages: 105 });
});

test('missing: reject sends records without facts to the dead letters; duplicates and maxFacts', async (t) => {
  const stage = attachFacts<{ id: string; image: string | null }>({
    from: [factTable([['coco/x/000000000007.jpg', ['A cat.', 'A cat.', 'A mat.', 'A hat.']]])],
    missing: 'reject',
    maxFacts: 2,
  });
  const { items, rejected } = await runStage(stage, [{ id: 'a', image: '7.jpg' }, { id: 'b', image: '8.jpg' }]);
  t.deepEqual(items.map((r) => r.facts), [['A cat.', 'A mat.']]);
  t.is(rejected[0]!.reason, 'no facts for image "8.jpg" (key coco:8) in fact-table');
});
