/**
 * PPO prompts as `rl-prompt` shards, after LLaVA-RLHF's `llava_ppo50k-aokvqa12k-vqa10k`:
 * held-out LLaVA instruct conversations (their first human turn, caption type 1), A-OKVQA
 * multiple-choice questions (caption type 2-5 = the correct option A-D, rationales and answer as
 * facts) and VQA-v2 yes/no questions (6 = "No", 7 = "Yes"), each capped, interleaved by a seeded
 * mix, [image check], COCO-caption facts joined by image, deduplicated by id, shuffled.
 *
 * The LLaVA holdout is the same seeded split `sft-mix` removes from SFT (same
 * holdout_fraction / holdout_count / holdout_seed in both pipelines => complementary sets).
 *
 *   npx pipeline run pipelines/rl-prompts.ts                       # on the generated shapes world
 *   npx pipeline run pipelines/rl-prompts.ts --set llava=llava_instruct_150k.json --set aokvqa=data/aokvqa \
 *       --set vqav2=data/vqa-v2 --set coco=annotations/captions_train2014.json --set images=data/images
 */
import path from 'node:path';
import { shapesWorldFor } from './shapes-world.ts';
import { definePipeline } from '../src/pipeline/define-pipeline.ts';
import { InvalidOptionError } from '../src/errors.ts';
import { mixSources } from '../src/stream/mix.ts';
import { dedup } from '../src/stream/dedup.ts';
import { shuffle } from '../src/stream/shuffle.ts';
import type { Stage } from '../src/stream/stage.ts';
import { llavaInstructSource } from '../sources/llava-instruct.ts';
import { aokvqaSource } from '../sources/aokvqa.ts';
import { vqav2Source } from '../sources/vqav2.ts';
import { cocoCaptionsSource } from '../sources/coco-captions.ts';
import { convertedSource } from '../sources/converted-source.ts';
import { aokvqaMultichoice, DEFAULT_AOKVQA_IMAGE_PATH, type AokvqaMode } from '../transforms/aokvqa-multichoice.ts';
import { vqav2Multiround } from '../transforms/vqav2-multiround.ts';
import { holdout } from '../transforms/holdout.ts';
import { toRlPrompt } from '../transforms/to-rl-prompt.ts';
import { attachFacts, cocoCaptionFacts } from '../transforms/attach-facts.ts';
import { imageCheck } from '../transforms/image-check.ts';
import { shardSink } from '../sinks/shard-sink.ts';
import { rlPromptSchema, type RlPrompt } from '../schemas/rl-prompt.ts';
import type { Conversation } from '../schemas/conversation.ts';

/** The paper's split: 60k of LLaVA's 158k conversations held out for preference and RL. */
export const LLAVA_HOLDOUT_FRACTION = 60_000 / 158_000;

export default definePipeline({
  name: 'rl-prompts',
  description: 'PPO prompt shards (held-out LLaVA prompts + A-OKVQA + VQA-v2 yes/no) with caption_type, length_bonus and facts; defaults to the shapes world',
  params: {
    llava: { type: 'path', default: '', description: 'LLaVA instruct JSON (path or URL); empty: the shapes world\'s; "none": skip' },
    aokvqa: { type: 'path', default: '', description: 'folder with aokvqa_v1p0_<split>.json; empty: the shapes world\'s; "none": skip' },
    vqav2: { type: 'path', default: '', description: 'folder with VQA-v2 questions + annotations; empty: the shapes world\'s; "none": skip' },
    coco: { type: 'path', default: '', description: 'COCO captions JSON for facts; empty: the shapes world\'s; "none": no caption facts' },
    images: { type: 'path', default: '', description: 'image root (for image_check)' },
    image_check: { type: 'enum', default: 'auto', values: ['auto', 'reject', 'keep', 'off'], description: 'auto = reject when images is given, off when not' },
    world: { type: 'path', default: 'runs/shapes-world', description: 'shapes world folder, generated if missing (used for inputs left empty)' },
    holdout_fraction: { type: 'number', default: LLAVA_HOLDOUT_FRACTION, min: 0, max: 1, description: 'share of LLaVA conversations held out (60k/158k); must match sft-mix' },
    holdout_count: { type: 'number', default: 0, min: 0, integer: true, description: 'exact number held out instead of the fraction (reads the LLaVA file twice); 0: use holdout_fraction' },
    holdout_seed: { type: 'number', default: 0, integer: true, description: 'seed of the holdout split (independent of the run seed); must match sft-mix' },
    llava_prompts: { type: 'number', default: 50000, min: 0, integer: true, description: 'most LLaVA prompts (LLaVA-RLHF: 50k)' },
    aokvqa_prompts: { type: 'number', default: 12000, min: 0, integer: true, description: 'most A-OKVQA prompts (12k)' },
    vqav2_prompts: { type: 'number', default: 10000, min: 0, integer: true, description: 'most VQA-v2 yes/no prompts (10k)' },
    aokvqa_split: { type: 'enum', default: 'val', values: ['train', 'val', 'all'], description: 'A-OKVQA files to read (val is disjoint from sft-mix\'s train)' },
    aokvqa_mode: { type: 'enum', default: 'reasoning', values: ['direct', 'reasoning'], description: 'A-OKVQA prompt instruction (reasoning answers end in "So the correct option is X.")' },
    aokvqa_image_path: { type: 'string', default: '', description: `A-OKVQA image path template; empty: ${DEFAULT_AOKVQA_IMAGE_PATH} (the shapes world: coco/train2017/{image_id:012}.jpg)` },
    length_bonus_llava: { type: 'number', default: 1, min: 0, description: 'length_bonus of LLaVA prompts' },
    length_bonus_aokvqa: { type: 'number', default: 1, min: 0, description: 'length_bonus of A-OKVQA prompts' },
    length_bonus_vqav2: { type: 'number', default: 1, min: 0, description: 'length_bonus of VQA-v2 prompts' },
    shuffle_buffer: { type: 'number', default: 10000, min: 1, integer: true, description: 'records held by the shuffle' },
    format: { type: 'enum', default: 'parquet', values: ['parquet', 'arrow', 'jsonl'], description: 'shard format' },
    max_rows: { type: 'number', default: 100000, min: 1, integer: true, description: 'rows per shard' },
  },
  async run(ctx) {
    const p = ctx.params;
    const check = p.image_check === 'auto' ? (p.images === '' ? 'off' : 'reject') : p.image_check;
    if (check !== 'off' && p.images === '') throw new InvalidOptionError('params.image_check', `is "${check}" but no image root is given`, { fix: 'set images=DIR, or image_check=off' });
    for (const k of ['length_bonus_llava', 'length_bonus_aokvqa', 'length_bonus_vqav2'] as const) {
      if (!(p[k] > 0)) throw new InvalidOptionError(`params.${k}`, `must be > 0, got ${p[k]}`);
    }
    let world: string | undefined;
    const usesWorld = [p.llava, p.aokvqa, p.vqav2, p.coco].some((v) => v === '');
    const fromWorld = async (rel: string): Promise<string> => {
      // a complete world (world.json written last) is used as it is, whatever it was made with
      world ??= await shapesWorldFor(ctx, p.world);
      return path.join(world, rel);
    };
    const input = async (value: string, rel: string): Promise<string | undefined> => (value === 'none' ? undefined : value !== '' ? value : fromWorld(rel));
    const llava = await input(p.llava, 'llava/llava_instruct_150k.json');
    const aokvqaDir = await input(p.aokvqa, 'aokvqa');
    const vqaDir = await input(p.vqav2, 'vqav2');
    const coco = await input(p.coco, 'coco/annotations/captions_train2014.json');
    // The shapes world keeps every train image (A-OKVQA val included) in coco/train2017.
    const aokvqaImagePath = p.aokvqa_image_path !== '' ? p.aokvqa_image_path : p.aokvqa === '' ? 'coco/train2017/{image_id:012}.jpg' : DEFAULT_AOKVQA_IMAGE_PATH;

    const entries: { name: string; source: ReturnType<typeof convertedSource<RlPrompt>>; weight: number }[] = [];
    if (llava && p.llava_prompts > 0) {
      const file = llava;
      const split = p.holdout_count > 0
        ? holdout<Conversation>({ take: 'holdout', count: p.holdout_count, of: llavaInstructSource({ file }), seed: p.holdout_seed })
        : holdout<Conversation>({ take: 'holdout', fraction: p.holdout_fraction, seed: p.holdout_seed });
      entries.push({
        name: 'llava',
        weight: p.llava_prompts,
        source: convertedSource<RlPrompt>({
          name: 'llava', source: llavaInstructSource({ file }), limit: p.llava_prompts,
          stages: [split, toRlPrompt({ lengthBonus: p.length_bonus_llava, name: 'llava-to-rl-prompt' })] as Stage<never, unknown>[],
        }),
      });
    }
    if (aokvqaDir && p.aokvqa_prompts > 0) {
      const splits = p.aokvqa_split === 'all' ? ['train', 'val'] : [p.aokvqa_split];
      const files = splits.map((s) => (/^https?:/.test(aokvqaDir) ? `${aokvqaDir.replace(/\/+$/, '')}/aokvqa_v1p0_${s}.json` : path.join(aokvqaDir, `aokvqa_v1p0_${s}.json`)));
      entries.push({
        name: 'aokvqa',
        weight: p.aokvqa_prompts,
        source: convertedSource<RlPrompt>({
          name: 'aokvqa', source: aokvqaSource({ file: files }), limit: p.aokvqa_prompts,
          stages: [
            aokvqaMultichoice({ mode: p.aokvqa_mode as AokvqaMode, imagePath: aokvqaImagePath }),
            toRlPrompt({ lengthBonus: p.length_bonus_aokvqa, name: 'aokvqa-to-rl-prompt' }),
          ] as Stage<never, unknown>[],
        }),
      });
    }
    if (vqaDir && p.vqav2_prompts > 0) {
      entries.push({
        name: 'vqav2',
        weight: p.vqav2_prompts,
        source: convertedSource<RlPrompt>({
          name: 'vqav2', source: vqav2Source({ dir: vqaDir, answerTypes: ['yes/no'] }), limit: p.vqav2_prompts,
          stages: [vqav2Multiround({ maxRounds: 1 }), toRlPrompt({ lengthBonus: p.length_bonus_vqav2, name: 'vqav2-to-rl-prompt' })] as Stage<never, unknown>[],
        }),
      });
    }
    if (entries.length === 0) throw new InvalidOptionError('params.llava', 'every prompt source is "none" or capped at 0: nothing to make');

    const mix = mixSources<RlPrompt>(entries, { name: 'rl-prompt-mix' });
    const stages: Stage<never, unknown>[] = [];
    const checker = check === 'off' ? undefined : imageCheck<RlPrompt>({ root: path.resolve(p.images), policy: check as 'reject' | 'keep' });
    if (checker) stages.push(checker as Stage<never, unknown>);
    const facts = attachFacts<RlPrompt>({ from: coco ? [cocoCaptionFacts(cocoCaptionsSource({ file: coco }))] : [] });
    stages.push(facts as Stage<never, unknown>);
    stages.push(dedup<RlPrompt>({ key: (r) => r.id, name: 'dedup-id' }) as Stage<never, unknown>);
    stages.push(shuffle<RlPrompt>({ bufferSize: p.shuffle_buffer }) as Stage<never, unknown>);
    const flow = await ctx.flow(
      { source: mix, stages, sink: shardSink({ dir: ctx.out, schema: rlPromptSchema, format: p.format as 'parquet' | 'arrow' | 'jsonl', maxRows: p.max_rows }) },
      { name: 'rl-prompts' },
    );
    const perSource = Object.fromEntries(entries.map((e) => [e.name, { ...e.source.stats(), taken: mix.counts()[e.name] ?? 0, cap: e.weight }]));
    ctx.log(`rl-prompts: ${Object.entries(perSource).map(([k, v]) => `${k} ${v.taken}`).join(', ')}; ${flow.stages.at(-1)?.out ?? 0} written`);
    return {
      inputs: { llava: llava ?? null, aokvqa: aokvqaDir ?? null, vqav2: vqaDir ?? null, coco: coco ?? null, world: usesWorld ? world ?? null : null },
      per_source: perSource,
      facts: facts.report(),
      image_check: checker ? checker.report() : 'off',
      written: flow.stages.at(-1)?.out ?? 0,
      rejected: flow.rejected,
    };
  },
});
