import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import oracleWorld from '../../pipelines/oracle-world.ts';
import { shapesWorldFor } from '../../pipelines/shapes-world.ts';
import { definePipeline } from '../../src/pipeline/define-pipeline.ts';
import { runPipeline } from '../../src/pipeline/run-pipeline.ts';
import { BadInputError } from '../../src/errors.ts';
import { generateShapesWorld, SHAPES_WORLD_FILES as F } from '../../sources/shapes-world.ts';
import { COLOR_RGB } from '../../sources/shapes-world-scene.ts';
import { ORACLE_SHAPE_RGB, oracleCells } from '../../sources/shapes-world-oracle.ts';
import type { GroundTruth } from '../../schemas/shapes-world.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const obj = (box: [number, number, number, number], color: GroundTruth['objects'][number]['color'], shape: GroundTruth['objects'][number]['shape']): GroundTruth['objects'][number] => ({ box, color, shape, size: 'small' });

test('oracleCells: an object owns the 16-px cells it covers by at least 6 px each way; a later object wins a shared cell', (t) => {
  const gt = {
    width: 64, height: 64,
    objects: [
      obj([2, 2, 14, 14], 'red', 'circle'), // inside cell 0
      obj([20, 20, 44, 44], 'blue', 'star'), // a large object: 12 px into cells (1,1), (2,1), (1,2), (2,2)
      obj([50, 35, 62, 47], 'green', 'square'), // 13 px in row 2, 1 px in row 2's neighbour below: only cell (3,2)
      obj([36, 36, 46, 46], 'white', 'hexagon'), // drawn later, inside cell (2,2)
    ],
  };
  const owner = Array.from(oracleCells(gt));
  const expected = new Array(16).fill(-1);
  expected[0] = 0;
  expected[5] = 1; expected[6] = 1; expected[9] = 1;
  expected[10] = 3;
  expected[11] = 2;
  t.deepEqual(owner, expected);
});

test.serial('oracle-world copies a world with oracle images: same annotations, each object cell shows its colour and shape code', async (t) => {
  const tmp = await tempDir(t, 'ff-oracle-');
  const world = path.join(tmp, 'world');
  await generateShapesWorld({ out: world, seed: 5, images: 16, mmhalPerType: 1 });
  const out = path.join(tmp, 'oracle');
  const summary = await runPipeline(oracleWorld, { out, params: { world } });
  const truth = (await readFile(path.join(world, F.ground_truth), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as GroundTruth);
  t.is((summary.result as { images: number }).images, truth.length);
  // annotations are the world's, byte for byte
  for (const f of [F.ground_truth, F.vqav2_questions, F.aokvqa_train, F.llava_instruct, F.world]) {
    t.true((await readFile(path.join(out, f))).equals(await readFile(path.join(world, f))), f);
  }
  let checked = 0;
  for (const gt of truth) {
    const { data } = await sharp(path.join(out, 'images', gt.image)).raw().toBuffer({ resolveWithObject: true });
    const owner = oracleCells(gt);
    for (let c = 0; c < owner.length; c++) {
      const y = Math.floor(c / 4) * 16 + 8;
      const left = (y * 64 + (c % 4) * 16 + 3) * 3;
      const right = left + 9 * 3;
      const near = (at: number, rgb: readonly number[]) => rgb.every((v, i) => Math.abs(data[at + i]! - v) <= 8);
      const k = owner[c]!;
      if (k < 0) { t.true(near(left, [128, 128, 128]) && near(right, [128, 128, 128]), `${gt.image} cell ${c} is background`); continue; }
      const o = gt.objects[k]!;
      t.true(near(left, COLOR_RGB[o.color]), `${gt.image} cell ${c}: ${o.color}`);
      t.true(near(right, ORACLE_SHAPE_RGB[o.shape]), `${gt.image} cell ${c}: ${o.shape}`);
      checked++;
    }
  }
  t.true(checked >= truth.length, `object cells checked: ${checked}`);
  // a pipeline that reads a world takes the copy as it is, at the copy's path
  const reader = definePipeline({ name: 'reader', description: 'reads a world', params: {}, async run(ctx) { return { dir: await shapesWorldFor(ctx, out) }; } });
  t.is(((await runPipeline(reader, { out: path.join(tmp, 'r') })).result as { dir: string }).dir, out);
});

test('oracle-world refuses a folder that is not a shapes world, and says how to make one', async (t) => {
  const tmp = await tempDir(t, 'ff-oracle-');
  await writeFile(path.join(tmp, 'note.txt'), 'not a world');
  const err = await t.throwsAsync(runPipeline(oracleWorld, { out: path.join(tmp, 'o'), params: { world: tmp } }), { instanceOf: BadInputError });
  t.regex(err!.message, /not a shapes world[\s\S]*pipelines\/shapes-world\.ts/);
});
