/**
 * Type tests for the published pipeline API: compiled by test/types/define-pipeline.test.ts
 * with `tsc --noEmit`. Every `@ts-expect-error` line must fail to compile, or tsc reports
 * the directive as unused.
 */
import { definePipeline, type ParamValues, type PipelineConfig, type ParamSpecs, type RunSummary } from '../../src/pipeline/define-pipeline.ts';
import { resolveParams, resolvePipeline } from '../../src/pipeline/resolve-params.ts';
import { runPipeline } from '../../src/pipeline/run-pipeline.ts';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(_ok?: T): void {}

const specs = {
  rounds: { type: 'number', default: 3, integer: true, description: 'rounds' },
  reasoning: { type: 'boolean', default: false, description: 'rationales' },
  format: { type: 'enum', default: 'parquet', values: ['parquet', 'arrow'], description: 'shard format' },
  root: { type: 'path', default: 'data', description: 'input root' },
  suffix: { type: 'string', default: '', description: 'question suffix' },
} as const;

// param values get their types from the specs; enums become the union of their values
expectType<Equal<ParamValues<typeof specs>, {
  readonly rounds: number;
  readonly reasoning: boolean;
  readonly format: 'parquet' | 'arrow';
  readonly root: string;
  readonly suffix: string;
}>>();

const good = definePipeline({
  name: 'good',
  description: 'typed params',
  params: {
    n: { type: 'number', default: 2, description: 'n' },
    dry: { type: 'boolean', default: true, description: 'dry run' },
    mode: { type: 'enum', default: 'fast', values: ['fast', 'slow'], description: 'mode' },
  },
  async run(ctx) {
    const n: number = ctx.params.n;
    const dry: boolean = ctx.params.dry;
    const mode: 'fast' | 'slow' = ctx.params.mode;
    // @ts-expect-error: an unknown parameter does not exist on ctx.params
    ctx.params.nope;
    // @ts-expect-error: parameters are readonly
    ctx.params.n = 3;
    // @ts-expect-error: a number parameter is not a string
    const s: string = ctx.params.n;
    // @ts-expect-error: an enum parameter is only one of its values
    const other: 'medium' = ctx.params.mode;
    const seed: number = ctx.seed;
    const out: string = ctx.out;
    return { n, dry, mode, s, other, seed, out };
  },
});

// definePipeline returns its argument unchanged, typed
expectType<Equal<typeof good.params.n.default, 2>>();

definePipeline({
  name: 'bad-default',
  description: '',
  // @ts-expect-error: a number parameter needs a number default
  params: { n: { type: 'number', default: 'two', description: 'n' } },
  async run() {},
});

definePipeline({
  name: 'bad-type',
  description: '',
  // @ts-expect-error: "date" is not a parameter type
  params: { when: { type: 'date', default: '2024', description: 'when' } },
  async run() {},
});

definePipeline({
  name: 'enum-without-values',
  description: '',
  // @ts-expect-error: an enum parameter lists its values
  params: { mode: { type: 'enum', default: 'a', description: 'mode' } },
  async run() {},
});

definePipeline({
  name: 'no-description',
  description: '',
  // @ts-expect-error: every parameter has a description (shown by `pipeline list`)
  params: { n: { type: 'number', default: 1 } },
  async run() {},
});

// @ts-expect-error: run must return a promise
definePipeline({ name: 'sync', description: '', params: {}, run() { return 1; } });

// @ts-expect-error: a pipeline needs a description
definePipeline({ name: 'undescribed', params: {}, async run() {} });

// resolveParams is typed by the specs and readonly
const values = resolveParams(specs, ['rounds=4']);
const rounds: number = values.rounds;
const format: 'parquet' | 'arrow' = values.format;
// @ts-expect-error: resolved params are readonly
values.rounds = 5;
// @ts-expect-error: --set values are strings, not numbers
resolveParams(specs, [4]);

const resolved = resolvePipeline(good, { params: { n: 3 }, seed: 2, partition: '0/2' });
expectType<Equal<typeof resolved.params.mode, 'fast' | 'slow'>>();
// @ts-expect-error: the resolved pipeline is readonly
resolved.seed = 3;
// @ts-expect-error: unknown backend names are rejected at compile time too
resolvePipeline(good, { backend: 'cuda' });
// @ts-expect-error: the policy is skip or fail
resolvePipeline(good, { policy: 'ignore' });

// runPipeline takes a config or a file, and resolves to a RunSummary
const summary: Promise<RunSummary> = runPipeline(good, { out: '/tmp/x', params: ['n=3'] });
const byFile: Promise<RunSummary> = runPipeline('pipelines/sft-mix.ts');
const anyConfig: PipelineConfig<ParamSpecs> = good;

export { rounds, format, summary, byFile, anyConfig };
