/**
 * `npx pipeline run pipelines/shapes-world.ts --out W`: writes the embedded default data,
 * "the shapes world" (small images of coloured shapes plus raw annotation files in the
 * real formats of VQA-v2, A-OKVQA, COCO captions, Flickr30k Entities, LLaVA instructions,
 * LLaVA-RLHF preferences, POPE and MMHal-Bench) into the run folder.
 */
import path from 'node:path';
import { definePipeline, type PipelineContext } from '../src/pipeline/define-pipeline.ts';
import { readRunSummary } from '../src/pipeline/run-pipeline.ts';
import { InvalidOptionError } from '../src/errors.ts';
import { generateShapesWorld, isShapesWorld } from '../sources/shapes-world.ts';

const shapesWorldPipeline = definePipeline({
  name: 'shapes-world',
  // 2: LLaVA "No" answers say what the image holds; length-neutral preference pairs
  // 3: LLaVA yes/no answers state the evidence first ("The image shows ..., so no, ...")
  // 4: objects on a 16-px grid by default (layout=grid), one whole object per patch
  // 5: LLaVA yes/no evidence is the shapes of the asked colour ("The red shapes in the image: ..."),
  //    and every LLaVA conversation asks one such existence question
  // 6: VQA-v2 yes/no questions also ask "Is there a red circle in the image?" (POPE's wording), with
  //    colour-and-shape questions as often "yes" as "no"
  // 7: LLaVA conversations also ask about absent shapes, relations, sizes compared and the highest
  //    shape (the question kinds MMHal-Bench asks, in other wordings)
  version: 7,
  description: 'Generate the shapes world: seeded images and raw dataset files in the real formats, for every converter and stage',
  params: {
    images: { type: 'number', default: 300, min: 1, max: 500_000, integer: true, description: 'train COCO-style images (SFT + held-out)' },
    flickr_images: { type: 'number', default: -1, min: -1, max: 500_000, integer: true, description: 'Flickr30k-style images (-1: images / 5)' },
    eval_images: { type: 'number', default: -1, min: -1, max: 100_000, integer: true, description: 'evaluation images for POPE and MMHal (-1: max(20, images / 6))' },
    heldout_fraction: { type: 'number', default: 0.25, min: 0, max: 0.9, description: 'share of train images kept out of SFT for preference and RL' },
    hallucination_rate: { type: 'number', default: 0.3, min: 0, max: 1, description: 'share of LLaVA detailed descriptions that also name an absent, co-occurring object' },
    annotator_noise: { type: 'number', default: 0.05, min: 0, max: 0.5, description: 'share of preference labels the simulated annotator flips' },
    color_elsewhere: { type: 'number', default: 0, min: 0, max: 1, description: 'share of the absent kinds VQA-v2 and LLaVA yes/no questions ask about whose colour is in the image on another shape (0: as drawn, about 22% of the "no"s)' },
    max_objects: { type: 'number', default: 4, min: 1, max: 6, integer: true, description: 'objects per image, 1..max_objects' },
    layout: { type: 'enum', default: 'grid', values: ['grid', 'free'], description: 'object placement: grid (each object inside one 16-px cell, a large one in a 2x2 block: what 16-px patches see whole) or free' },
    preference_per_image: { type: 'number', default: 2, min: 0, max: 20, integer: true, description: 'preference pairs per held-out image' },
    mmhal_per_type: { type: 'number', default: 12, min: 0, max: 1000, integer: true, description: 'MMHal-Bench questions per question type (8 types)' },
    concurrency: { type: 'number', default: 4, min: 1, max: 64, integer: true, description: 'images rendered at once' },
  },
  async run(ctx) {
    const p = ctx.params;
    if (ctx.partition.count > 1) {
      // ids, splits and POPE statistics span the whole world: it cannot be made in shares
      throw new InvalidOptionError('partition', 'the shapes world is generated whole', { fix: 'run shapes-world without --partition' });
    }
    const bar = ctx.progress.start('shapes-world', { unit: 'images' });
    try {
      const result = await generateShapesWorld({
        out: ctx.out,
        seed: ctx.seed,
        images: p.images,
        flickrImages: p.flickr_images < 0 ? undefined : p.flickr_images,
        evalImages: p.eval_images < 0 ? undefined : p.eval_images,
        heldoutFraction: p.heldout_fraction,
        hallucinationRate: p.hallucination_rate,
        annotatorNoise: p.annotator_noise,
        colorElsewhere: p.color_elsewhere,
        maxObjects: p.max_objects,
        layout: p.layout,
        preferencePerImage: p.preference_per_image,
        mmhalPerType: p.mmhal_per_type,
        concurrency: p.concurrency,
        signal: ctx.signal,
        onProgress: (done, total) => {
          bar.setTotal(total);
          bar.update(done);
        },
      });
      ctx.log(`shapes world: ${result.counts.images.total} images in ${result.elapsed_s.toFixed(1)} s (${result.images_per_s.toFixed(0)} images/s)`);
      return { world: 'world.json', counts: result.counts, images_per_s: result.images_per_s };
    } finally {
      bar.stop();
    }
  },
});

export default shapesWorldPipeline;

/**
 * The world folder a pipeline reads. A complete world there is used with the params and seed it
 * was made with, whatever they were (every stage of a recipe then sees the same world), but made
 * again, with those params, when an older version of this pipeline made it. A world without a run
 * summary (copied by hand) is taken as it is; a missing one is made with `params`.
 */
/** `dir`: absolute, as path params arrive. */
export async function shapesWorldFor(ctx: Pick<PipelineContext<unknown>, 'ensure'>, dir: string, params: Record<string, unknown> = {}, seed?: number): Promise<string> {
  if (await isShapesWorld(dir)) {
    const done = await readRunSummary(dir);
    if (!done || done.pipeline !== shapesWorldPipeline.name) return path.resolve(dir);
    return (await ctx.ensure(shapesWorldPipeline, dir, { ...done.params }, { seed: done.seed })).out;
  }
  return (await ctx.ensure(shapesWorldPipeline, dir, params, seed === undefined ? undefined : { seed })).out;
}
