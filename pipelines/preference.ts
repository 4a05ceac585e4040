/**
 * Human preference pairs as `preference` shards with facts, for the (factually augmented)
 * reward model: LLaVA-RLHF's preference JSON -> [image check] -> COCO captions attached
 * by image -> shards.
 *
 *   npx pipeline run pipelines/preference.ts                      # on the generated shapes world
 *   npx pipeline run pipelines/preference.ts --set preference=llava_7b_v1_preference.json \
 *       --set coco=annotations/captions_train2014.json --set images=data/images
 */
import path from 'node:path';
import { shapesWorldFor } from './shapes-world.ts';
import { definePipeline } from '../src/pipeline/define-pipeline.ts';
import { InvalidOptionError } from '../src/errors.ts';
import type { Stage } from '../src/stream/stage.ts';
import { preferenceJsonSource } from '../sources/preference-json.ts';
import { cocoCaptionsSource } from '../sources/coco-captions.ts';
import { cocoCaptionFacts } from '../transforms/attach-facts.ts';
import { imageCheck } from '../transforms/image-check.ts';
import { toPreference } from '../transforms/to-preference.ts';
import { shardSink } from '../sinks/shard-sink.ts';
import { preferenceSchema, type Preference } from '../schemas/preference.ts';

export default definePipeline({
  name: 'preference',
  description: 'Preference shards (two responses, the human choice, hallucination flag, COCO-caption facts); defaults to the shapes world',
  params: {
    preference: { type: 'path', default: '', description: 'LLaVA-RLHF preference JSON (path or URL); empty: the shapes world\'s llava/llava_7b_v1_preference.json' },
    coco: { type: 'path', default: '', description: 'COCO captions JSON for facts (path or URL); empty: the shapes world\'s captions; "none": no facts' },
    images: { type: 'path', default: '', description: 'image root the records\' image paths are relative to (for image_check)' },
    image_check: { type: 'enum', default: 'auto', values: ['auto', 'reject', 'keep', 'off'], description: 'check images with sharp: auto = reject when images is given, off when not' },
    image_prefix: { type: 'string', default: 'coco/train2017/', description: 'prefix added to each item\'s image file name' },
    facts_missing: { type: 'enum', default: 'keep', values: ['keep', 'reject'], description: 'a pair whose image has no facts: keep it (facts = []) or reject it' },
    world: { type: 'path', default: 'runs/shapes-world', description: 'shapes world folder, generated if missing (used for inputs left empty)' },
    format: { type: 'enum', default: 'parquet', values: ['parquet', 'arrow', 'jsonl'], description: 'shard format' },
    max_rows: { type: 'number', default: 100000, min: 1, integer: true, description: 'rows per shard' },
  },
  async run(ctx) {
    const p = ctx.params;
    const check = p.image_check === 'auto' ? (p.images === '' ? 'off' : 'reject') : p.image_check;
    if (check !== 'off' && p.images === '') {
      throw new InvalidOptionError('params.image_check', `is "${check}" but no image root is given`, { fix: 'set images=DIR, or image_check=off' });
    }
    let world: string | undefined;
    const fromWorld = async (rel: string): Promise<string> => {
      // a complete world (world.json written last) is used as it is, whatever it was made with
      world ??= await shapesWorldFor(ctx, p.world);
      return path.join(world, rel);
    };
    const preference = p.preference !== '' ? p.preference : await fromWorld('llava/llava_7b_v1_preference.json');
    const coco = p.coco === 'none' ? undefined : p.coco !== '' ? p.coco : await fromWorld('coco/annotations/captions_train2014.json');

    const stages: Stage<never, unknown>[] = [];
    const checker = check === 'off' ? undefined : imageCheck<Preference>({ root: path.resolve(p.images), policy: check as 'reject' | 'keep' });
    if (checker) stages.push(checker as Stage<never, unknown>);
    const facts = toPreference({ facts: coco ? [cocoCaptionFacts(cocoCaptionsSource({ file: coco }))] : [], missing: p.facts_missing as 'keep' | 'reject' });
    stages.push(facts as Stage<never, unknown>);
    const source = preferenceJsonSource({ file: preference, imagePrefix: p.image_prefix });
    const flow = await ctx.flow(
      { source, stages, sink: shardSink({ dir: ctx.out, schema: preferenceSchema, format: p.format as 'parquet' | 'arrow' | 'jsonl', maxRows: p.max_rows }) },
      { name: 'preference' },
    );
    const f = facts.report();
    const read = flow.stages[0]!;
    ctx.log(`preference: ${read.out} pairs read, ${read.rejected} rejected; ${f.withFacts} of ${f.records} with facts`);
    return {
      preference: { file: preference, read: read.out, rejected_at_source: read.rejected, written: flow.stages.at(-1)?.out ?? 0, rejected: flow.rejected },
      facts: { coco: coco ?? null, ...f },
      image_check: checker ? checker.report() : 'off',
    };
  },
});
