import test from 'ava';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { flickr30kEntitiesSource, type Flickr30kItem } from '../../sources/flickr30k-entities.ts';
import { flickr30kSpotting, normalizeBox, SPOTTING_TEMPLATES, spottingBoxes } from '../../transforms/flickr30k-spotting.ts';
import { conversationSchema } from '../../schemas/conversation.ts';
import { hash32 } from '../../src/stream/random.ts';
import { withOrigin } from '../../src/stream/origin.ts';
import { readSource, runStage } from '../sources/harness.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/flickr30k', import.meta.url));

async function fixtureItem(): Promise<Flickr30kItem> {
  const { items } = await readSource(flickr30kEntitiesSource({ dir: FIXTURE }));
  return items[0]!;
}

// Written by hand from the real captions and the hand-made XML (500x375 image):
// girl 151,61,330,300 -> (150/500, 60/375, 330/500, 300/375); hair 201,61,260,130 -> 130/375 = 0.3467;
// ledge: two boxes 1,281,250,375 and 301,291,500,375 -> 280/375 = 0.7467, 290/375 = 0.7733;
// dress 171,121,320,290. Water (scene), "behind" and "life" (nobndbox) stay plain text.
const EXPECTED = [
  'A girl [0.300,0.160,0.660,0.800] with brown hair [0.400,0.160,0.520,0.347] sits on the edge of a cement area [0.000,0.747,0.500,1.000;0.600,0.773,1.000,1.000] overlooking water.',
  'A woman [0.300,0.160,0.660,0.800] in black [0.340,0.320,0.640,0.773], seen from behind, sits next to a body of water.',
  'A girl [0.300,0.160,0.660,0.800] sitting outside on concrete [0.000,0.747,0.500,1.000;0.600,0.773,1.000,1.000] near water in a black dress [0.340,0.320,0.640,0.773].',
  'A small girl [0.300,0.160,0.660,0.800] sits on a ledge [0.000,0.747,0.500,1.000;0.600,0.773,1.000,1.000] by the water contemplating life.',
  'A dark-haired girl [0.300,0.160,0.660,0.800] is sitting on the waters edge.',
];

test('real captions -> spotting captions, compared with hand-written ones', async (t) => {
  const item = await fixtureItem();
  const { items, rejected } = await runStage(flickr30kSpotting(), [item], { seed: 7 });
  t.deepEqual(rejected, []);
  t.deepEqual(items.map((r) => r.conversations[1]!.value), EXPECTED);
  const first = items[0]!;
  t.is(first.id, 'flickr30k-4945942737-1');
  t.is(first.image, 'flickr30k/4945942737.jpg');
  t.is(first.source, 'flickr30k');
  t.is(first.conversations[0]!.value, `<image>\n${SPOTTING_TEMPLATES[hash32(first.id, 7) % SPOTTING_TEMPLATES.length]}`);
  t.deepEqual(JSON.parse(first.meta), { image_id: '4945942737', caption_line: 1 });
  for (const r of items) t.is(conversationSchema.validate(r), null);
});

test('every box parses back to four numbers in [0,1] with x0 <= x1 and y0 <= y1', async (t) => {
  const item = await fixtureItem();
  const { items } = await runStage(flickr30kSpotting(), [item]);
  let n = 0;
  for (const r of items) {
    for (const box of spottingBoxes(r.conversations[1]!.value)) {
      n++;
      t.is(box.length, 4);
      t.true(box.every((v) => Number.isFinite(v) && v >= 0 && v <= 1));
      t.true(box[0]! <= box[2]! && box[1]! <= box[3]!);
    }
  }
  t.is(n, 14);
});

test('templates are chosen by a seeded hash of the id (deterministic, seed-dependent)', async (t) => {
  const item = await fixtureItem();
  const a = await runStage(flickr30kSpotting(), [item], { seed: 1 });
  const b = await runStage(flickr30kSpotting(), [item], { seed: 1 });
  t.deepEqual(a.items, b.items);
  const seeds = [1, 2, 3, 4, 5, 6].map(async (seed) => (await runStage(flickr30kSpotting(), [item], { seed })).items.map((r) => r.conversations[0]!.value).join('|'));
  t.true(new Set(await Promise.all(seeds)).size > 1);
});

test('captionsPerImage first gives one record', async (t) => {
  const item = await fixtureItem();
  const { items } = await runStage(flickr30kSpotting({ captionsPerImage: 'first' }), [item]);
  t.is(items.length, 1);
  t.is(items[0]!.conversations[1]!.value, EXPECTED[0]);
});

test('normalisation: full image is [0,0,1,1]; overshoot within tolerance is clamped', (t) => {
  t.is(normalizeBox({ xmin: 1, ymin: 1, xmax: 500, ymax: 375 }, 500, 375), '0.000,0.000,1.000,1.000');
  t.is(normalizeBox({ xmin: 0, ymin: 1, xmax: 501, ymax: 375 }, 500, 375), '0.000,0.000,1.000,1.000');
});

test('bad input: a box outside the image rejects the image, naming the XML file', async (t) => {
  const item = await fixtureItem();
  const bad: Flickr30kItem = withOrigin({ ...item, boxes: { ...item.boxes, '221804': [{ xmin: 201, ymin: 61, xmax: 620, ymax: 130 }] } }, { index: 0 });
  const { items, rejected } = await runStage(flickr30kSpotting(), [bad]);
  t.is(items.length, 0);
  t.is(rejected.length, 1);
  t.is(rejected[0]!.reason, 'image 4945942737: box of entity 221804 (xmin 201, ymin 61, xmax 620, ymax 130) lies outside the 500x375 image');
  t.is(rejected[0]!.origin?.file, join(FIXTURE, 'Annotations', '4945942737.xml'));
});

test('bad input: a caption whose entity has no annotation is rejected with file and line; others convert', async (t) => {
  const item = await fixtureItem();
  const { '221797': _dress, ...boxes } = item.boxes;
  const bad: Flickr30kItem = { ...item, boxes };
  const { items, rejected } = await runStage(flickr30kSpotting(), [bad]);
  // lines 2 and 3 mention the dress (221797)
  t.deepEqual(items.map((r) => r.id), ['flickr30k-4945942737-1', 'flickr30k-4945942737-4', 'flickr30k-4945942737-5']);
  t.is(rejected.length, 2);
  t.regex(rejected[0]!.reason, /^image 4945942737, caption 2: phrase "black" refers to entity 221797, which .*4945942737\.xml does not annotate/);
  t.is(rejected[0]!.origin?.file, join(FIXTURE, 'Sentences', '4945942737.txt'));
  t.is(rejected[0]!.origin?.line, 2);
  t.is(rejected[1]!.origin?.line, 3);
});

test('options are checked at the factory', (t) => {
  t.throws(() => flickr30kSpotting({ captionsPerImage: 'some' as never }), { message: /option "captionsPerImage"/ });
  t.throws(() => flickr30kSpotting({ templates: [] }), { message: /option "templates"/ });
  t.throws(() => flickr30kSpotting({ imagePath: '../x/{id}.jpg' }), { message: /option "imagePath"/ });
  t.throws(() => flickr30kSpotting({ tolerance: -1 }), { message: /option "tolerance"/ });
});
