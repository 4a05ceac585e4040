/**
 * MMHal-Bench evaluation: every answer judged on the 0-6 rubric, written to
 * `<out>/report.json` as `{average_score, hallucination_rate, n, by_type: {TYPE: average}, ...}`,
 * with the judged answers as eval shards beside it (`npx pipeline inspect <out>`: question,
 * answer and verdict side by side).
 *
 *   npx pipeline run pipelines/eval-mmhal.ts --set answers=filled_template.json        # rule judge, shapes world
 *   FACTFLOW_JUDGE_API_KEY=... npx pipeline run pipelines/eval-mmhal.ts --set answers=response.json \
 *       --set judge=openai --set judge_url=https://api.openai.com/v1 --set judge_model=gpt-4-0314
 *   npx pipeline run pipelines/eval-mmhal.ts --set policy=runs/ppo
 *
 * Judges: `rule` knows the shapes world's ground truth (`truth`, default the world's
 * ground_truth.jsonl); `openai` asks any OpenAI-compatible chat completions API, its key
 * read from the environment variable FACTFLOW_JUDGE_API_KEY (never a parameter, so it is
 * never written to run.json or summary.json), its replies cached under `judge_cache`.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { InvalidOptionError } from '../src/errors.ts';
import type { Answerer } from '../src/eval/answerer.ts';
import type { Judge } from '../src/eval/judge.ts';
import { openaiJudge } from '../src/eval/openai-judge.ts';
import { ruleJudge } from '../src/eval/rule-judge.ts';
import { definePipeline } from '../src/pipeline/define-pipeline.ts';
import { SHAPES_WORLD_FILES } from '../sources/shapes-world.ts';
import { loadShapesTruth } from '../sources/shapes-truth.ts';
import { evaluateMmhal } from '../transforms/evaluate-mmhal.ts';

export default definePipeline({
  name: 'eval-mmhal',
  description: 'MMHal-Bench score, hallucination rate and per-type averages of an answers file or a policy, by the rule judge or an OpenAI-compatible judge',
  params: {
    questions: { type: 'path', default: '', description: 'MMHal response_template.json the policy answers; empty: the shapes world\'s' },
    answers: { type: 'path', default: '', description: 'the template with model_answer filled, to score (instead of policy)' },
    policy: { type: 'path', default: '', description: 'policy checkpoint folder that answers the questions (instead of answers)' },
    images: { type: 'path', default: '', description: 'image root for policy answering; empty: the shapes world\'s images' },
    judge: { type: 'enum', default: 'rule', values: ['rule', 'openai'], description: 'rule (shapes world ground truth) or openai (an OpenAI-compatible chat API)' },
    judge_url: { type: 'string', default: 'https://api.openai.com/v1', description: 'base URL of the OpenAI-compatible API (judge=openai); key from env FACTFLOW_JUDGE_API_KEY' },
    judge_model: { type: 'string', default: 'gpt-4-0314', description: 'judge model name (judge=openai)' },
    judge_concurrency: { type: 'number', default: 4, min: 1, max: 256, integer: true, description: 'judge requests at once (judge=openai)' },
    judge_cache: { type: 'path', default: '', description: 'folder caching judge replies (judge=openai); empty: <out>/judge-cache; "none": no cache' },
    judge_batch: { type: 'number', default: 16, min: 1, max: 4096, integer: true, description: 'answers per judge call' },
    truth: { type: 'path', default: '', description: 'shapes world ground_truth.jsonl (judge=rule); empty: the world\'s' },
    max_new_tokens: { type: 'number', default: 128, min: 1, max: 4096, integer: true, description: 'longest answer the policy may give' },
    batch_size: { type: 'number', default: 8, min: 1, max: 4096, integer: true, description: 'questions per policy call' },
    world: { type: 'path', default: 'runs/shapes-world', description: 'shapes world folder, generated if missing (used for inputs left empty)' },
    format: { type: 'enum', default: 'parquet', values: ['parquet', 'arrow', 'jsonl'], description: 'eval shard format' },
  },
  async run(ctx) {
    const p = ctx.params;
    if (ctx.partition.count > 1) {
      throw new InvalidOptionError('partition', 'MMHal metrics need every answer', { fix: 'run eval-mmhal without --partition' });
    }
    if ((p.answers === '') === (p.policy === '')) {
      throw new InvalidOptionError('params.answers', p.answers === '' ? 'give answers=FILE (a filled template to score) or policy=DIR (a model to answer)' : 'give answers= or policy=, not both');
    }
    // checked before any work: a bad judge URL or model fails here
    let judge: Judge;
    if (p.judge === 'openai') {
      const cacheDir = p.judge_cache === 'none' ? undefined : p.judge_cache !== '' ? p.judge_cache : path.join(ctx.out, 'judge-cache');
      judge = openaiJudge({ baseUrl: p.judge_url, model: p.judge_model, concurrency: p.judge_concurrency, cacheDir, log: (line) => ctx.log(line) });
    } else {
      judge = ruleJudge();
    }
    let world: string | undefined;
    const fromWorld = async (rel: string): Promise<string> => {
      // an existing world is used as it is (whatever its params: it is the one the models
      // were trained on); only a missing one is generated
      world ??= existsSync(path.resolve(p.world, SHAPES_WORLD_FILES.world)) ? path.resolve(p.world) : (await ctx.ensure('shapes-world', p.world)).out;
      return path.join(world, rel);
    };
    if (p.answers !== '' && p.questions !== '') ctx.log('eval-mmhal: scoring the answers file; questions= is not used');
    const questions = p.answers !== '' ? p.answers : p.questions !== '' ? p.questions : await fromWorld(SHAPES_WORLD_FILES.mmhal);
    const truthFile = p.judge !== 'rule' ? undefined : p.truth !== '' ? p.truth : await fromWorld(SHAPES_WORLD_FILES.ground_truth);
    const truth = truthFile ? await loadShapesTruth(truthFile, { signal: ctx.signal }) : undefined;

    let answerer: Answerer | undefined;
    if (p.policy !== '') {
      const images = p.images !== '' ? p.images : p.questions === '' ? await fromWorld('images') : '';
      if (images === '') throw new InvalidOptionError('params.images', 'policy answering needs the image root of these questions', { fix: 'set images=DIR (MMHal: the folder of its images)' });
      // loaded only when asked for: it pulls in the model (tfjs)
      const { loadPolicyAnswerer } = await import('../src/model/policy-answerer.ts');
      answerer = await loadPolicyAnswerer(p.policy, { backend: ctx.backend, imageRoot: path.resolve(images), maxNewTokens: p.max_new_tokens });
    }

    const report = await evaluateMmhal({
      questions,
      answerer,
      batchSize: p.batch_size,
      judge,
      truth,
      judgeBatch: p.judge_batch,
      out: ctx.out,
      format: p.format as 'parquet' | 'arrow' | 'jsonl',
      flow: (spec, options) => ctx.flow(spec, options),
    });
    ctx.log(`mmhal (${report.judge}): average score ${report.average_score.toFixed(3)}, hallucination rate ${report.hallucination_rate.toFixed(3)} (n=${report.n})`);
    return report;
  },
});
