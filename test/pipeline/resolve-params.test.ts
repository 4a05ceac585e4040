import test from 'ava';
import path from 'node:path';
import { definePipeline } from '../../src/pipeline/define-pipeline.ts';
import { checkPipelineConfig, resolveParams, resolvePathParam, resolvePipeline } from '../../src/pipeline/resolve-params.ts';

const specs = {
  max_rounds: { type: 'number', default: 3, integer: true, min: 1, max: 10, description: 'rounds' },
  ratio: { type: 'number', default: 0.5, description: 'a ratio' },
  reasoning: { type: 'boolean', default: false, description: 'rationale variant' },
  answers: { type: 'enum', default: 'yes/no', values: ['yes/no', 'all'], description: 'answer types' },
  world: { type: 'path', default: 'runs/world', description: 'world folder' },
  suffix: { type: 'string', default: 'Answer briefly.', description: 'question suffix' },
} as const;

test('defaults fill every parameter and the result is frozen', (t) => {
  const v = resolveParams(specs, []);
  t.deepEqual({ ...v }, { max_rounds: 3, ratio: 0.5, reasoning: false, answers: 'yes/no', world: 'runs/world', suffix: 'Answer briefly.' });
  t.true(Object.isFrozen(v));
});

test('--set strings are parsed to each type', (t) => {
  const v = resolveParams(specs, ['max_rounds=5', 'ratio=0.25', 'reasoning=true', 'answers=all', 'world=/tmp/w', 'suffix=a=b c']);
  t.is(v.max_rounds, 5);
  t.is(v.ratio, 0.25);
  t.is(v.reasoning, true);
  t.is(v.answers, 'all');
  t.is(v.world, '/tmp/w');
  t.is(v.suffix, 'a=b c'); // only the first "=" splits
  t.is(resolveParams(specs, ['reasoning=no']).reasoning, false);
  t.is(resolveParams(specs, ['max_rounds=2', 'max_rounds=4']).max_rounds, 4); // last one wins
});

test('a record of values is checked (strings parsed, typed values kept)', (t) => {
  const v = resolveParams(specs, { max_rounds: 7, reasoning: 'yes', ratio: '1e-1' });
  t.is(v.max_rounds, 7);
  t.is(v.reasoning, true);
  t.is(v.ratio, 0.1);
  const e = t.throws(() => resolveParams(specs, { max_rounds: 'x' }));
  t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e!.message, /option "params\.max_rounds": expected an integer >= 1 and <= 10, got "x"/);
  const e2 = t.throws(() => resolveParams(specs, { reasoning: 3 }));
  t.regex(e2!.message, /params\.reasoning.*expected a boolean/);
});

test('unknown key names --set key and lists the known params', (t) => {
  const e = t.throws(() => resolveParams(specs, ['max_round=4'], { pipeline: 'sft-mix' }));
  t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.is((e as { option?: string }).option, '--set max_round');
  t.regex(e!.message, /option "--set max_round": unknown parameter "max_round" of pipeline "sft-mix"/);
  t.regex(e!.message, /max_rounds \(number, default 3\), ratio \(number, default 0\.5\), reasoning \(boolean, default false\)/);
  const e2 = t.throws(() => resolveParams(specs, { nope: 1 }));
  t.is((e2 as { option?: string }).option, 'params.nope');
});

test('bad number, integer, range, boolean and enum values name the expected type', (t) => {
  const cases: [string, RegExp][] = [
    ['max_rounds=abc', /"--set max_rounds": expected an integer >= 1 and <= 10, got "abc"/],
    ['max_rounds=', /"--set max_rounds": expected an integer/],
    ['max_rounds=2.5', /"--set max_rounds": expected an integer >= 1 and <= 10, got 2\.5/],
    ['max_rounds=11', /expected an integer >= 1 and <= 10, got 11/],
    ['ratio=NaN', /"--set ratio": expected a number, got "NaN"/],
    ['reasoning=maybe', /"--set reasoning": expected a boolean \(true\|false\), got "maybe"/],
    ['answers=some', /"--set answers": expected one of yes\/no\|all, got "some"/],
  ];
  for (const [set, re] of cases) {
    const e = t.throws(() => resolveParams(specs, [set]), undefined, set);
    t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION', set);
    t.regex(e!.message, re, set);
  }
});

test('a --set without "=" is rejected', (t) => {
  const e = t.throws(() => resolveParams(specs, ['max_rounds']));
  t.is((e as { option?: string }).option, '--set');
  t.regex(e!.message, /expected key=value, got "max_rounds"/);
});

test('a pipeline whose default breaks its own spec is rejected', (t) => {
  const e = t.throws(() => resolveParams({ k: { type: 'enum', default: 'c', values: ['a', 'b'], description: '' } }, []));
  t.regex(e!.message, /option "params\.k\.default": expected one of a\|b, got "c"/);
  const e2 = t.throws(() => resolveParams({ k: { type: 'number', default: 0, min: 1, description: '' } }, []));
  t.regex(e2!.message, /params\.k\.default/);
  const e3 = t.throws(() => resolveParams({ k: { type: 'date', default: 0, description: '' } } as never, []));
  t.regex(e3!.message, /params\.k\.type/);
});

const tiny = definePipeline({
  name: 'tiny',
  description: 'test',
  params: { n: { type: 'number', default: 2, description: 'n' } },
  async run() {},
});

test('resolvePipeline fills defaults, resolves out and freezes', (t) => {
  const r = resolvePipeline(tiny, { cwd: '/tmp/x', params: ['n=4'] });
  t.is(r.out, path.resolve('/tmp/x/runs/tiny'));
  t.is(r.seed, 1);
  t.deepEqual(r.partition, { index: 0, count: 1 });
  t.is(r.policy, 'skip');
  t.is(r.backend, 'auto');
  t.is(r.params.n, 4);
  t.true(Object.isFrozen(r));
  const r2 = resolvePipeline(tiny, { cwd: '/tmp/x', out: 'o', seed: 7, partition: '1/3', policy: 'fail', backend: 'wasm' });
  t.is(r2.out, '/tmp/x/o');
  t.deepEqual({ ...r2.partition }, { index: 1, count: 3 });
});

test('resolvePipeline rejects bad seed, partition, backend and policy', (t) => {
  const bad: [object, RegExp][] = [
    [{ seed: -1 }, /option "seed": expected an integer in 0\.\.4294967295/],
    [{ seed: 1.5 }, /option "seed"/],
    [{ partition: '2/2' }, /option "partition": index must be an integer in 0\.\.1, got 2/],
    [{ backend: 'cuda' }, /option "backend": expected one of auto\|webgpu\|tensorflow\|wasm\|cpu, got "cuda"/],
    [{ policy: 'ignore' }, /option "policy": expected one of skip\|fail/],
    [{ out: '' }, /option "out"/],
  ];
  for (const [opts, re] of bad) {
    const e = t.throws(() => resolvePipeline(tiny, opts as never));
    t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
    t.regex(e!.message, re);
  }
});

test('checkPipelineConfig names the file and the bad field', (t) => {
  const e = t.throws(() => checkPipelineConfig({ name: 'x', description: 'd', params: {} }, '/p/x.ts'));
  t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e!.message, /^\/p\/x\.ts: option "pipeline\.run": expected a function/);
  const e2 = t.throws(() => checkPipelineConfig({ name: 'bad name', description: 'd', params: {}, run() {} }, '/p/y.ts'));
  t.regex(e2!.message, /\/p\/y\.ts: option "pipeline\.name"/);
  const e3 = t.throws(() => checkPipelineConfig(42));
  t.regex(e3!.message, /option "pipeline": expected a pipeline definition object, got number/);
});

test('resolvePathParam: relative paths against cwd; "", "none", URLs and absolute paths kept; comma lists item by item', (t) => {
  const cwd = '/home/u/proj';
  t.is(resolvePathParam('data/aokvqa', cwd), '/home/u/proj/data/aokvqa');
  t.is(resolvePathParam('../x.json', cwd), '/home/u/x.json');
  t.is(resolvePathParam('ans/{split}.jsonl', cwd), '/home/u/proj/ans/{split}.jsonl');
  for (const kept of ['', 'none', '/abs/file.json', 'https://example.org/a.json', 'http://h/x', 'file:///tmp/x']) t.is(resolvePathParam(kept, cwd), kept);
  t.is(resolvePathParam('a.json, /b.json,https://h/c.json', cwd), '/home/u/proj/a.json,/b.json,https://h/c.json');
});

test('resolvePipeline makes path parameters (given or default) absolute against its cwd', (t) => {
  const p = definePipeline({ name: 'paths', description: 'd', params: { world: specs.world, data: { type: 'path', default: '', description: 'data' }, suffix: specs.suffix }, run: async () => undefined });
  const cwd = path.join(path.sep, 'somewhere', 'else');
  const a = resolvePipeline(p, { cwd, params: ['data=in/a.json,in/b.json', 'suffix=x y'] });
  t.is(a.params.world, path.join(cwd, 'runs', 'world'));
  t.is(a.params.data, `${path.join(cwd, 'in', 'a.json')},${path.join(cwd, 'in', 'b.json')}`);
  t.is(a.params.suffix, 'x y'); // strings are not paths
  t.is(resolvePipeline(p, { cwd }).params.data, '');
  t.is(resolvePipeline(p, { cwd, params: { data: 'none' } }).params.data, 'none');
  // without a cwd, resolveParams leaves paths as given (the caller decides the folder)
  t.is(resolveParams(p.params, ['data=rel']).data, 'rel');
});
