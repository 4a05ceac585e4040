/**
 * The LLaVA-SFT+ data mix as conversation shards. This first version converts VQA-v2 only
 * (multi-round yes/no QA, as the paper's 83k); A-OKVQA, Flickr30k and LLaVA instruct join later.
 *
 *   npx pipeline run pipelines/sft-mix.ts                          # on the generated shapes world
 *   npx pipeline run pipelines/sft-mix.ts --set vqav2=data/vqa-v2  # on the real files
 */
import path from 'node:path';
import { definePipeline } from '../src/pipeline/define-pipeline.ts';
import { InvalidOptionError } from '../src/errors.ts';
import { vqav2Source } from '../sources/vqav2.ts';
import { vqav2Multiround } from '../transforms/vqav2-multiround.ts';
import { shardSink } from '../sinks/shard-sink.ts';
import { conversationSchema } from '../schemas/conversation.ts';
import { VQA_ANSWER_TYPES } from '../schemas/vqav2-item.ts';

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

export default definePipeline({
  name: 'sft-mix',
  description: 'SFT conversation shards from VQA-v2 (multi-round QA); defaults to the generated shapes world',
  params: {
    vqav2: { type: 'path', default: '', description: 'folder with the VQA-v2 questions + annotations JSON files; empty: the shapes world\'s <world>/vqav2' },
    world: { type: 'path', default: 'runs/shapes-world', description: 'shapes world folder, generated if missing (used when vqav2 is empty)' },
    max_rounds: { type: 'number', default: 10, min: 1, integer: true, description: 'most question/answer rounds per VQA-v2 conversation' },
    answer_types: { type: 'string', default: 'yes/no', description: 'VQA-v2 answer types to keep: comma-separated yes/no,number,other, or all' },
    format: { type: 'enum', default: 'parquet', values: ['parquet', 'arrow', 'jsonl'], description: 'shard format' },
    max_rows: { type: 'number', default: 100000, min: 1, integer: true, description: 'rows per shard' },
  },
  async run(ctx) {
    const p = ctx.params;
    // checked before any work (and before generating the shapes world)
    const answerTypes = parseAnswerTypes(p.answer_types);
    const stage = vqav2Multiround({ maxRounds: p.max_rounds });
    const format = p.format as 'parquet' | 'arrow' | 'jsonl';

    let dir: string;
    if (p.vqav2 !== '') dir = path.resolve(p.vqav2);
    else {
      const world = await ctx.ensure('shapes-world', p.world);
      dir = path.join(world.out, 'vqav2');
    }
    const source = vqav2Source({ dir, answerTypes });
    const flow = await ctx.flow(
      { source, stages: [stage], sink: shardSink({ dir: ctx.out, schema: conversationSchema, format, maxRows: p.max_rows }) },
      { name: 'vqav2' },
    );
    const stats = source.stats();
    ctx.log(`vqav2: ${stats.emitted} questions kept as ${flow.stages.at(-1)?.out ?? 0} conversations; ${stats.filtered} filtered by answer type, ${stats.rejected} rejected`);
    return {
      vqav2: {
        dir,
        answer_types: answerTypes,
        questions: stats.questions,
        annotations: stats.annotations,
        kept: stats.emitted,
        filtered: stats.filtered,
        filtered_by_type: stats.filteredByType,
        rejected: stats.rejected,
        skipped_files: stats.skippedFiles,
      },
    };
  },
});
