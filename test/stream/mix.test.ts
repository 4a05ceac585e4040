import test from 'ava';
import { mixSources } from '../../src/stream/mix.ts';
import type { Source, SourceContext } from '../../src/stream/stage.ts';
import { arraySource } from './helpers.ts';

function ctxFor(seed = 1): SourceContext & { notes: string[]; totals: number[] } {
  const notes: string[] = [];
  const totals: number[] = [];
  return {
    name: 'mix', signal: new AbortController().signal, seed, partition: { index: 0, count: 1 },
    counts: { in: 0, out: 0, rejected: 0 }, reject() {}, setTotal: (n) => totals.push(n), note: (s) => notes.push(s), notes, totals,
  };
}

async function drain<T>(src: Source<T>, ctx = ctxFor()): Promise<T[]> {
  const out: T[] = [];
  for await (const x of src.read(ctx)) out.push(x);
  return out;
}

const tagged = (tag: string, n: number): { tag: string; i: number }[] => Array.from({ length: n }, (_, i) => ({ tag, i }));

test('mix by weights follows the ratio (first-exhausted) and keeps each source in order', async (t) => {
  const mix = mixSources([
    { name: 'a', source: arraySource('a', tagged('a', 5000)), weight: 3 },
    { name: 'b', source: arraySource('b', tagged('b', 5000)), weight: 1 },
  ], { seed: 11, stopOn: 'first-exhausted' });
  const out = await drain(mix);
  const c = mix.counts();
  t.is(c.a, 5000); // a (75%) runs out first
  t.true(Math.abs(c.b! / (c.a! + c.b!) - 0.25) < 0.02, `share of b ${c.b! / (c.a! + c.b!)}`);
  const bs = out.filter((r) => r.tag === 'b').map((r) => r.i);
  t.deepEqual(bs, Array.from({ length: bs.length }, (_, i) => i));
  // ratio also holds in every window of 1000 within tolerance
  const firstK = out.slice(0, 1000).filter((r) => r.tag === 'a').length;
  t.true(Math.abs(firstK - 750) < 60, `first 1000: ${firstK} from a`);
});

test('mix without replacement, all-exhausted: every record exactly once, total announced', async (t) => {
  const ctx = ctxFor();
  const mix = mixSources([
    { name: 'a', source: arraySource('a', tagged('a', 300)), weight: 1 },
    { name: 'b', source: arraySource('b', tagged('b', 50)), weight: 5 },
    { name: 'c', source: arraySource('c', tagged('c', 0)) },
  ], { seed: 2 });
  const out = await drain(mix, ctx);
  t.is(out.length, 350);
  t.deepEqual(mix.counts(), { a: 300, b: 50, c: 0 });
  t.deepEqual(ctx.totals.at(-1), 350);
  t.is(ctx.notes.at(-1), 'a 300, b 50, c 0');
});

test('mix by counts takes exactly count of each, randomly interleaved, deterministic per seed', async (t) => {
  const make = (seed: number) => mixSources([
    { name: 'a', source: arraySource('a', tagged('a', 1000)), count: 100 },
    { name: 'b', source: arraySource('b', tagged('b', 1000)), count: 300 },
  ], { seed });
  const m1 = make(5);
  const out1 = await drain(m1);
  t.is(out1.length, 400);
  t.deepEqual(m1.counts(), { a: 100, b: 300 });
  t.is(out1.filter((r) => r.tag === 'a').length, 100);
  // interleaved, not concatenated: a appears in both halves
  t.true(out1.slice(0, 200).some((r) => r.tag === 'a') && out1.slice(200).some((r) => r.tag === 'a'));
  const out2 = await drain(make(5));
  t.deepEqual(out2, out1);
  const out3 = await drain(make(6));
  t.notDeepEqual(out3, out1);
});

test('mix by counts: a short source is a BadInputError without replacement, re-read with it', async (t) => {
  const short = arraySource('s', tagged('s', 3));
  const err = await t.throwsAsync(drain(mixSources([{ name: 's', source: short, count: 5 }], { seed: 1 })));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(err!.message, /"s" has only 3 records but its count is 5/);

  const again = arraySource('s', tagged('s', 3));
  const out = await drain(mixSources([{ name: 's', source: again, count: 7 }], { seed: 1, replacement: true }));
  t.deepEqual(out.map((r) => r.i), [0, 1, 2, 0, 1, 2, 0]);
  t.is(again.reads, 3);
});

test('mix with replacement cycles the small source until every source ended once', async (t) => {
  const small = arraySource('small', tagged('small', 10));
  const mix = mixSources([
    { name: 'big', source: arraySource('big', tagged('big', 400)), weight: 1 },
    { name: 'small', source: small, weight: 1 },
  ], { seed: 9, replacement: true });
  await drain(mix);
  const c = mix.counts();
  t.is(c.big, 400);
  t.true(c.small! > 300 && c.small! < 500, `small ${c.small}`);
  t.true(small.reads > 30);
});

test('mix is pull-based: sources are read only as far as needed', async (t) => {
  const a = arraySource('a', tagged('a', 1000));
  const b = arraySource('b', tagged('b', 1000));
  const it = mixSources([{ name: 'a', source: a }, { name: 'b', source: b }], { seed: 1 }).read(ctxFor())[Symbol.asyncIterator]();
  for (let i = 0; i < 10; i++) await it.next();
  t.is(a.produced + b.produced, 10);
  await it.return?.();
});

test('mix options are checked', (t) => {
  const s = arraySource('a', [1]);
  const cases: [() => unknown, RegExp][] = [
    [() => mixSources([], {}), /option "entries"/],
    [() => mixSources([{ name: 'a', source: s, count: 1 }, { name: 'b', source: s }]), /option "entries"/],
    [() => mixSources([{ name: 'a', source: s }, { name: 'a', source: s }]), /option "entries\[1\]\.name"/],
    [() => mixSources([{ name: 'a', source: s, weight: -1 }]), /option "entries\[0\]\.weight"/],
    [() => mixSources([{ name: 'a', source: s, count: 1.5 }]), /option "entries\[0\]\.count"/],
    [() => mixSources([{ name: 'a', source: s }], { stopOn: 'never' as 'all-exhausted' }), /option "stopOn"/],
  ];
  for (const [fn, re] of cases) {
    const err = t.throws(fn);
    t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
    t.regex(err!.message, re);
  }
});

test('mix gathers the inputs of every entry', async (t) => {
  const withInputs = (p: string): Source<number> => ({ name: p, inputs: async () => [{ path: p, bytes: 1, sha256: 'x' }], async *read() {} });
  const mix = mixSources([{ name: 'a', source: withInputs('a.json') }, { name: 'b', source: withInputs('b.json') }]);
  t.deepEqual((await mix.inputs!()).map((f) => f.path), ['a.json', 'b.json']);
});
