/**
 * `npx pipeline run pipelines/oracle-world.ts --set world=runs/world-3000 --out runs/world-oracle`:
 * a copy of a shapes world whose images are oracle images (sources/shapes-world-oracle.ts): every
 * object's cells show its colour and a flat shape code. Annotations, questions and splits stay the
 * same, so `sft-train --set world=<copy>` trains and scores a policy whose encoder cannot be the
 * reason it fails: a diagnostic that separates seeing from the language model.
 *   npx pipeline run pipelines/sft-train.ts --set world=runs/world-oracle --set mix=runs/mix-oracle
 * (a mix of its own: the copy's mix holds the same conversations, but sft-train would otherwise
 * make it again into the default mix folder)
 */
import { copyFile, cp, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { definePipeline } from '../src/pipeline/define-pipeline.ts';
import { lockFileName } from '../src/pipeline/out-lock.ts';
import { WHOLE } from '../src/pipeline/partition.ts';
import { BadInputError, InvalidOptionError } from '../src/errors.ts';
import { isShapesWorld, SHAPES_WORLD_FILES } from '../sources/shapes-world.ts';
import { loadShapesTruth } from '../sources/shapes-truth.ts';
import { writeOracleImage } from '../sources/shapes-world-oracle.ts';
import { createTaskPool } from '../sources/shapes-world-render.ts';

/** Files of the source world not copied: its images are redrawn, its run records are its own. */
// a lock left by a crashed run there would replace this run's own
const NOT_COPIED = new Set(['images', 'run.json', 'summary.json', lockFileName(WHOLE), SHAPES_WORLD_FILES.world]);

export default definePipeline({
  name: 'oracle-world',
  description: 'Copy a shapes world with oracle images (colour and a shape code per object cell): trains a policy whose encoder sees perfectly',
  params: {
    world: { type: 'path', default: 'runs/shapes-world', description: 'shapes world to copy (made by pipelines/shapes-world.ts)' },
    concurrency: { type: 'number', default: 4, min: 1, max: 64, integer: true, description: 'images written at once' },
  },
  async run(ctx) {
    const world = path.resolve(ctx.params.world);
    if (!(await isShapesWorld(world))) {
      throw new BadInputError(`${world} is not a shapes world (no ${SHAPES_WORLD_FILES.world})`, { file: world, fix: 'make one first: npx pipeline run pipelines/shapes-world.ts --out DIR' });
    }
    if (path.resolve(ctx.out) === world) throw new InvalidOptionError('out', 'must not be the world it copies', { fix: 'choose another --out' });
    // a copy made before loses its world.json first: until this one is whole, it is no world
    await rm(path.join(ctx.out, SHAPES_WORLD_FILES.world), { force: true });
    await cp(world, ctx.out, { recursive: true, filter: (src) => !NOT_COPIED.has(path.relative(world, src)) });
    const truth = [...(await loadShapesTruth(path.join(world, SHAPES_WORLD_FILES.ground_truth), { signal: ctx.signal })).values()];
    const bar = ctx.progress.start('oracle-world', { unit: 'images', total: truth.length });
    let written = 0;
    try {
      const dirs = new Set(truth.map((gt) => path.dirname(path.join(ctx.out, 'images', gt.image))));
      for (const d of dirs) await mkdir(d, { recursive: true });
      const pool = createTaskPool(ctx.params.concurrency);
      try {
        for (const gt of truth) {
          if (ctx.signal.aborted) throw ctx.signal.reason;
          await pool.add(async () => {
            await writeOracleImage(gt, path.join(ctx.out, 'images', gt.image));
            bar.update(++written);
          });
        }
        await pool.drain();
      } catch (err) {
        // let the writes under way end before the error leaves (their own failures are secondary)
        await pool.drain().catch(() => undefined);
        throw err;
      }
    } finally {
      bar.stop();
    }
    // world.json last: a copy cut short is not taken for a complete world
    await copyFile(path.join(world, SHAPES_WORLD_FILES.world), path.join(ctx.out, SHAPES_WORLD_FILES.world));
    ctx.log(`oracle-world: ${written} oracle images for the ${truth.length} ground-truth images of ${world}`);
    return { world, images: written, world_json: SHAPES_WORLD_FILES.world };
  },
});
