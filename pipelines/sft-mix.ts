/**
 * The LLaVA-SFT+ data mix as conversation shards: LLaVA instruct (minus the RL/preference
 * holdout) + VQA-v2 multi-round yes/no QA + A-OKVQA multiple choice + Flickr30k spotting
 * captions, each converted and capped, interleaved by a seeded weighted mix, then
 * [image check], token-length limit, dedup, shuffle, shards. The result has a summary per
 * source (read, rejected, converted, taken by the mix).
 *
 * Default caps reproduce the paper's proportions when the inputs are large enough: VQA-v2
 * 83k, A-OKVQA 16k, Flickr30k 23k conversations, and all of LLaVA instruct's 158k minus the
 * 60k held out. A cap takes the first records of a source in input order (the shuffle spreads
 * them); mix weights are the caps, so a source smaller than its cap ends early and the rest
 * interleave on.
 *
 *   npx pipeline run pipelines/sft-mix.ts                          # on the generated shapes world
 *   npx pipeline run pipelines/sft-mix.ts --set vqav2=data/vqa-v2 --set aokvqa=data/aokvqa \
 *       --set flickr30k=data/flickr30k_entities --set llava=data/llava_instruct_150k.json --set images=data/images
 * Any input set to "none" is left out.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { shapesWorldFor } from './shapes-world.ts';
import { definePipeline } from '../src/pipeline/define-pipeline.ts';
import { InvalidOptionError } from '../src/errors.ts';
import { mixSources } from '../src/stream/mix.ts';
import { dedup } from '../src/stream/dedup.ts';
import { shuffle } from '../src/stream/shuffle.ts';
import type { Stage } from '../src/stream/stage.ts';
import { vqav2Source, type Vqav2Source } from '../sources/vqav2.ts';
import { aokvqaSource } from '../sources/aokvqa.ts';
import { flickr30kEntitiesSource } from '../sources/flickr30k-entities.ts';
import { llavaInstructSource } from '../sources/llava-instruct.ts';
import { convertedSource } from '../sources/converted-source.ts';
import { vqav2Multiround } from '../transforms/vqav2-multiround.ts';
import { aokvqaMultichoice, DEFAULT_AOKVQA_IMAGE_PATH, type AokvqaMode } from '../transforms/aokvqa-multichoice.ts';
import { flickr30kSpotting } from '../transforms/flickr30k-spotting.ts';
import { holdout } from '../transforms/holdout.ts';
import { imageCheck } from '../transforms/image-check.ts';
import { tokenLength } from '../transforms/token-length.ts';
import { shardSink } from '../sinks/shard-sink.ts';
import { conversationSchema, type Conversation } from '../schemas/conversation.ts';
import { VQA_ANSWER_TYPES } from '../schemas/vqav2-item.ts';
import { LLAVA_HOLDOUT_FRACTION } from './rl-prompts.ts';

/** `yes/no,number` -> ['yes/no', 'number']; `all` -> every type. */
function parseAnswerTypes(text: string): string[] {
  const list = text.split(',').map((t) => t.trim()).filter((t) => t !== '');
  if (list.length === 1 && list[0] === 'all') return [...VQA_ANSWER_TYPES];
  if (list.length === 0) throw new InvalidOptionError('params.answer_types', 'is empty; give e.g. "yes/no", "yes/no,number" or "all"');
  for (const t of list) {
    if (!(VQA_ANSWER_TYPES as readonly string[]).includes(t)) {
      throw new InvalidOptionError('params.answer_types', `unknown answer type ${JSON.stringify(t)}; use a comma-separated list of ${VQA_ANSWER_TYPES.join(', ')}, or "all"`);
    }
  }
  return list;
}

/** Same identity for the same image and turns, whatever the id (dedup across sources). */
function contentKey(c: Conversation): string {
  return `${c.image ?? ''}\u0000${c.conversations.map((t) => `${t.from}\u0001${t.value}`).join('\u0002')}`;
}

export default definePipeline({
  name: 'sft-mix',
  description: 'LLaVA-SFT+ conversation shards: LLaVA instruct (minus holdout) + VQA-v2 + A-OKVQA + Flickr30k; defaults to the generated shapes world',
  params: {
    vqav2: { type: 'path', default: '', description: 'folder with the VQA-v2 questions + annotations JSON files; empty: the shapes world\'s <world>/vqav2; "none": leave out' },
    aokvqa: { type: 'path', default: '', description: 'folder (or base URL) with aokvqa_v1p0_<split>.json; empty: the shapes world\'s; "none": leave out' },
    flickr30k: { type: 'path', default: '', description: 'folder holding Sentences/ and Annotations/ (and train.txt); empty: the shapes world\'s; "none": leave out' },
    llava: { type: 'path', default: '', description: 'LLaVA instruct JSON (path or URL); empty: the shapes world\'s; "none": leave out' },
    images: { type: 'path', default: '', description: 'image root the records\' image paths are relative to (for image_check)' },
    image_check: { type: 'enum', default: 'auto', values: ['auto', 'reject', 'keep', 'off'], description: 'check images with sharp: auto = reject when images is given, off when not' },
    world: { type: 'path', default: 'runs/shapes-world', description: 'shapes world folder, generated if missing (used for inputs left empty)' },
    max_rounds: { type: 'number', default: 10, min: 1, integer: true, description: 'most question/answer rounds per VQA-v2 conversation' },
    answer_types: { type: 'string', default: 'yes/no', description: 'VQA-v2 answer types to keep: comma-separated yes/no,number,other, or all' },
    vqav2_max: { type: 'number', default: 83000, min: 0, integer: true, description: 'most VQA-v2 conversations (paper: 83k)' },
    aokvqa_max: { type: 'number', default: 16000, min: 0, integer: true, description: 'most A-OKVQA conversations (paper: 16k)' },
    flickr30k_max: { type: 'number', default: 23000, min: 0, integer: true, description: 'most Flickr30k conversations (paper: 23k)' },
    llava_max: { type: 'number', default: 0, min: 0, integer: true, description: 'most LLaVA conversations; 0: all not held out' },
    aokvqa_split: { type: 'enum', default: 'train', values: ['train', 'val', 'all'], description: 'A-OKVQA files to read (rl-prompts uses val)' },
    aokvqa_mode: { type: 'enum', default: 'reasoning', values: ['direct', 'reasoning', 'mixed'], description: 'A-OKVQA answers: the letter, a rationale then "So the correct option is X.", or each question one of the two (seeded)' },
    aokvqa_rounds: { type: 'number', default: 1, min: 1, integer: true, description: 'A-OKVQA questions of one image per conversation' },
    aokvqa_image_path: { type: 'string', default: '', description: `A-OKVQA image path template; empty: ${DEFAULT_AOKVQA_IMAGE_PATH} (the shapes world: coco/train2017/{image_id:012}.jpg)` },
    flickr30k_captions: { type: 'enum', default: 'first', values: ['first', 'all'], description: 'Flickr30k captions per image: the first that converts, or all five' },
    flickr30k_ids: { type: 'string', default: 'train.txt', description: 'id list inside the flickr30k folder (used when it exists); empty: every Sentences file' },
    holdout_fraction: { type: 'number', default: LLAVA_HOLDOUT_FRACTION, min: 0, max: 1, description: 'share of LLaVA conversations held out for preference/RL (60k/158k); must match rl-prompts' },
    holdout_count: { type: 'number', default: 0, min: 0, integer: true, description: 'exact number held out instead (reads the LLaVA file twice); 0: use holdout_fraction' },
    holdout_seed: { type: 'number', default: 0, integer: true, description: 'seed of the holdout split (independent of the run seed); must match rl-prompts' },
    tokenizer: { type: 'path', default: '', description: 'tokenizer.json for token counts; empty: a whitespace-word estimate' },
    max_tokens: { type: 'number', default: 1280, min: 1, integer: true, description: 'conversations with more tokens are dropped (paper: 1280)' },
    shuffle: { type: 'boolean', default: true, description: 'shuffle the mixed records (seeded buffer shuffle)' },
    shuffle_buffer: { type: 'number', default: 10000, min: 1, integer: true, description: 'records held by the shuffle' },
    format: { type: 'enum', default: 'parquet', values: ['parquet', 'arrow', 'jsonl'], description: 'shard format' },
    max_rows: { type: 'number', default: 100000, min: 1, integer: true, description: 'rows per shard' },
  },
  async run(ctx) {
    const p = ctx.params;
    // checked before any work (and before generating the shapes world)
    const answerTypes = parseAnswerTypes(p.answer_types);
    const check = p.image_check === 'auto' ? (p.images === '' ? 'off' : 'reject') : p.image_check;
    if (check !== 'off' && p.images === '') throw new InvalidOptionError('params.image_check', `is "${check}" but no image root is given`, { fix: 'set images=DIR, or image_check=off' });
    const format = p.format as 'parquet' | 'arrow' | 'jsonl';

    let world: string | undefined;
    const input = async (value: string, rel: string): Promise<string | undefined> => {
      if (value === 'none') return undefined;
      if (value !== '') return /^https?:\/\//.test(value) ? value : path.resolve(value);
      // a complete world (world.json written last) is used as it is, whatever it was made with
      world ??= await shapesWorldFor(ctx, p.world);
      return path.join(world, rel);
    };
    const vqaDir = await input(p.vqav2, 'vqav2');
    const aokvqaDir = await input(p.aokvqa, 'aokvqa');
    const flickrDir = await input(p.flickr30k, 'flickr30k_entities');
    const llava = await input(p.llava, 'llava/llava_instruct_150k.json');

    type Entry = { name: string; source: ReturnType<typeof convertedSource<Conversation>>; weight: number; cap: number };
    const entries: Entry[] = [];
    const add = (name: string, cap: number, source: Entry['source']): void => {
      entries.push({ name, source, cap, weight: cap > 0 ? cap : 100_000 });
    };
    let vqa: Vqav2Source | undefined;
    if (vqaDir && p.vqav2_max > 0) {
      vqa = vqav2Source({ dir: vqaDir, answerTypes });
      add('vqav2', p.vqav2_max, convertedSource<Conversation>({
        name: 'vqav2', source: vqa, limit: p.vqav2_max, stages: [vqav2Multiround({ maxRounds: p.max_rounds })] as Stage<never, unknown>[],
      }));
    }
    if (aokvqaDir && p.aokvqa_max > 0) {
      const splits = p.aokvqa_split === 'all' ? ['train', 'val'] : [p.aokvqa_split];
      const files = splits.map((s) => (/^https?:/.test(aokvqaDir) ? `${aokvqaDir.replace(/\/+$/, '')}/aokvqa_v1p0_${s}.json` : path.join(aokvqaDir, `aokvqa_v1p0_${s}.json`)));
      // The shapes world keeps every train image (A-OKVQA val included) in coco/train2017.
      const imagePath = p.aokvqa_image_path !== '' ? p.aokvqa_image_path : p.aokvqa === '' ? 'coco/train2017/{image_id:012}.jpg' : DEFAULT_AOKVQA_IMAGE_PATH;
      add('aokvqa', p.aokvqa_max, convertedSource<Conversation>({
        name: 'aokvqa', source: aokvqaSource({ file: files }), limit: p.aokvqa_max,
        stages: [aokvqaMultichoice({ mode: p.aokvqa_mode as AokvqaMode, maxRounds: p.aokvqa_rounds, imagePath })] as Stage<never, unknown>[],
      }));
    }
    if (flickrDir && p.flickr30k_max > 0) {
      let ids: string | undefined;
      if (p.flickr30k_ids !== '') {
        const remote = /^https?:/.test(flickrDir);
        const list = remote ? `${flickrDir.replace(/\/+$/, '')}/${p.flickr30k_ids}` : path.join(flickrDir, p.flickr30k_ids);
        // A local folder without the list converts every Sentences file.
        if (remote || (await stat(list).then(() => true, () => false))) ids = list;
      }
      add('flickr30k', p.flickr30k_max, convertedSource<Conversation>({
        name: 'flickr30k', source: flickr30kEntitiesSource({ dir: flickrDir, ids }), limit: p.flickr30k_max,
        stages: [flickr30kSpotting({ captionsPerImage: p.flickr30k_captions as 'first' | 'all' })] as Stage<never, unknown>[],
      }));
    }
    if (llava) {
      const file = llava;
      const rest = p.holdout_count > 0
        ? holdout<Conversation>({ take: 'rest', count: p.holdout_count, of: llavaInstructSource({ file }), seed: p.holdout_seed })
        : holdout<Conversation>({ take: 'rest', fraction: p.holdout_fraction, seed: p.holdout_seed });
      add('llava', p.llava_max, convertedSource<Conversation>({
        name: 'llava', source: llavaInstructSource({ file }), limit: p.llava_max > 0 ? p.llava_max : undefined,
        stages: [rest] as Stage<never, unknown>[],
      }));
    }
    if (entries.length === 0) throw new InvalidOptionError('params.vqav2', 'every input is "none" or capped at 0: nothing to mix');

    const mix = mixSources<Conversation>(entries.map(({ name, source, weight }) => ({ name, source, weight })), { name: 'mix' });
    const stages: Stage<never, unknown>[] = [];
    const checker = check === 'off' ? undefined : imageCheck<Conversation>({ root: path.resolve(p.images), policy: check as 'reject' | 'keep' });
    if (checker) stages.push(checker as Stage<never, unknown>);
    const lengths = tokenLength<Conversation>({ tokenizer: p.tokenizer === '' ? undefined : p.tokenizer, maxTokens: p.max_tokens });
    stages.push(lengths as Stage<never, unknown>);
    stages.push(dedup<Conversation>({ key: contentKey }) as Stage<never, unknown>);
    if (p.shuffle) stages.push(shuffle<Conversation>({ bufferSize: p.shuffle_buffer }) as Stage<never, unknown>);
    const flow = await ctx.flow(
      { source: mix, stages, sink: shardSink({ dir: ctx.out, schema: conversationSchema, format, maxRows: p.max_rows }) },
      { name: 'sft-mix' },
    );

    const taken = mix.counts();
    const perSource = Object.fromEntries(entries.map((e) => [e.name, { ...e.source.stats(), cap: e.cap, taken: taken[e.name] ?? 0 }]));
    const written = flow.stages.at(-1)?.out ?? 0;
    ctx.log(`sft-mix: ${entries.map((e) => `${e.name} ${taken[e.name] ?? 0}`).join(', ')}; ${written} written, ${flow.rejected} rejected`);
    const result: Record<string, unknown> = {
      per_source: perSource,
      written,
      rejected: flow.rejected,
      tokens: lengths.report(),
      image_check: checker ? checker.report() : 'off',
    };
    if (vqa && vqaDir) {
      const stats = vqa.stats();
      result['vqav2'] = {
        dir: vqaDir,
        answer_types: answerTypes,
        questions: stats.questions,
        annotations: stats.annotations,
        kept: stats.emitted,
        filtered: stats.filtered,
        filtered_by_type: stats.filteredByType,
        rejected: stats.rejected,
        skipped_files: stats.skippedFiles,
      };
    }
    return result;
  },
});
