/**
 * POPE evaluation: accuracy, precision, recall, F1 and yes-ratio per split, written to
 * `<out>/report.json` as `{splits: {NAME: {accuracy, precision, recall, f1, yes_ratio, n}}, mean}`,
 * with the answered questions as eval shards beside it (`npx pipeline inspect <out>`).
 *
 *   npx pipeline run pipelines/eval-pope.ts --set answers=ans/{split}.jsonl           # the shapes world's 3 splits
 *   npx pipeline run pipelines/eval-pope.ts --set questions=coco_pope_random.json --set answers=random.jsonl
 *   npx pipeline run pipelines/eval-pope.ts --set policy=runs/ppo --set images=val2014
 *
 * `questions` and `answers` take comma-separated lists (one answers file per question
 * file, same order), or `answers` may hold `{split}` (replaced by random, popular, ...).
 * Answers files are JSON Lines of `{question_id, text}` (the reference's answer files).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { InvalidOptionError } from '../src/errors.ts';
import type { Answerer } from '../src/eval/answerer.ts';
import { popeSplitName } from '../src/eval/pope.ts';
import { definePipeline } from '../src/pipeline/define-pipeline.ts';
import { SHAPES_WORLD_FILES } from '../sources/shapes-world.ts';
import { evaluatePope } from '../transforms/evaluate-pope.ts';
import { DEFAULT_VQA_SUFFIX } from '../transforms/vqav2-multiround.ts';

function list(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

export default definePipeline({
  name: 'eval-pope',
  description: 'POPE metrics per split (accuracy, precision, recall, F1, yes-ratio) of an answers file or a policy; defaults to the shapes world',
  params: {
    questions: { type: 'path', default: '', description: 'POPE question file(s), comma-separated; empty: the shapes world\'s random, popular and adversarial splits' },
    answers: { type: 'path', default: '', description: 'answers to score (JSON Lines {question_id, text}): one per question file, comma-separated, or a path with {split}' },
    policy: { type: 'path', default: '', description: 'policy checkpoint folder that answers the questions (instead of answers)' },
    images: { type: 'path', default: '', description: 'image folder for policy answering (POPE image names are relative to it); empty: the shapes world\'s images/coco/val2014' },
    prompt_suffix: { type: 'string', default: DEFAULT_VQA_SUFFIX, description: 'added on a new line after each question when the policy answers ("": none)' },
    max_new_tokens: { type: 'number', default: 48, min: 1, max: 4096, integer: true, description: 'longest answer the policy may give (evidence-first answers need ~30)' },
    batch_size: { type: 'number', default: 8, min: 1, max: 4096, integer: true, description: 'questions per policy call' },
    world: { type: 'path', default: 'runs/shapes-world', description: 'shapes world folder, generated if missing (used for inputs left empty)' },
    format: { type: 'enum', default: 'parquet', values: ['parquet', 'arrow', 'jsonl'], description: 'eval shard format' },
  },
  async run(ctx) {
    const p = ctx.params;
    if (ctx.partition.count > 1) {
      throw new InvalidOptionError('partition', 'POPE metrics need every answer of a split', { fix: 'run eval-pope without --partition' });
    }
    if ((p.answers === '') === (p.policy === '')) {
      throw new InvalidOptionError('params.answers', p.answers === '' ? 'give answers=FILE (answers to score) or policy=DIR (a model to answer)' : 'give answers= or policy=, not both');
    }
    let world: string | undefined;
    const fromWorld = async (rel: string): Promise<string> => {
      // an existing world is used as it is (whatever its params: it is the one the models
      // were trained on); only a missing one is generated
      world ??= existsSync(path.resolve(p.world, SHAPES_WORLD_FILES.world)) ? path.resolve(p.world) : (await ctx.ensure('shapes-world', p.world)).out;
      return path.join(world, rel);
    };
    const questions = p.questions !== ''
      ? list(p.questions)
      : await Promise.all([SHAPES_WORLD_FILES.pope_random, SHAPES_WORLD_FILES.pope_popular, SHAPES_WORLD_FILES.pope_adversarial].map(fromWorld));
    const splits = questions.map((q) => popeSplitName(q));

    let answers: Map<string, string> | undefined;
    if (p.answers !== '') {
      const files = p.answers.includes('{split}') ? splits.map((s) => p.answers.split('{split}').join(s)) : list(p.answers);
      if (files.length !== questions.length) {
        throw new InvalidOptionError('params.answers', `names ${files.length} answers file(s) for ${questions.length} question file(s) (${splits.join(', ')})`, {
          fix: 'give one answers file per question file, comma-separated in the same order, or one path with {split}',
        });
      }
      answers = new Map(splits.map((s, i) => [s, files[i]!]));
    }

    let answerer: Answerer | undefined;
    if (p.policy !== '') {
      const images = p.images !== '' ? p.images : p.questions === '' ? await fromWorld('images/coco/val2014') : '';
      if (images === '') throw new InvalidOptionError('params.images', 'policy answering needs the image folder of these questions', { fix: 'set images=DIR (e.g. COCO val2014)' });
      // loaded only when asked for: it pulls in the model (tfjs)
      const { loadPolicyAnswerer } = await import('../src/model/policy-answerer.ts');
      answerer = await loadPolicyAnswerer(p.policy, { backend: ctx.backend, imageRoot: path.resolve(images), maxNewTokens: p.max_new_tokens });
    }

    const report = await evaluatePope({
      questions,
      splits,
      answers,
      answerer,
      promptSuffix: p.prompt_suffix === '' ? '' : `\n${p.prompt_suffix}`,
      batchSize: p.batch_size,
      out: ctx.out,
      format: p.format as 'parquet' | 'arrow' | 'jsonl',
      flow: (spec, options) => ctx.flow(spec, options),
    });
    for (const [name, m] of Object.entries(report.splits)) {
      ctx.log(`pope ${name}: accuracy ${m.accuracy.toFixed(4)}, precision ${m.precision.toFixed(4)}, recall ${m.recall.toFixed(4)}, F1 ${m.f1.toFixed(4)}, yes ${m.yes_ratio.toFixed(4)} (n=${m.n})`);
    }
    return report;
  },
});
