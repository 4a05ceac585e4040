import test from 'ava';
import { BadRecordError } from '../../src/errors.ts';
import { map } from '../../src/stream/map.ts';
import { filter } from '../../src/stream/filter.ts';
import { withOrigin } from '../../src/stream/origin.ts';
import { Rng } from '../../src/stream/random.ts';
import { runStage, sleep, testContext } from './helpers.ts';

test('map keeps input order under concurrency with random delays', async (t) => {
  const rng = new Rng(7);
  const delays = Array.from({ length: 60 }, () => rng.int(6));
  const items = delays.map((_, i) => i);
  const out = await runStage(map(async (x: number) => { await sleep(delays[x]!); return x * 10; }, { concurrency: 6 }), items);
  t.deepEqual(out, items.map((x) => x * 10));
});

test('map never runs more than `concurrency` calls at once, and reaches it', async (t) => {
  let active = 0;
  let peak = 0;
  const rng = new Rng(3);
  const stage = map(async (x: number) => {
    active++;
    peak = Math.max(peak, active);
    await sleep(rng.int(4));
    active--;
    return x;
  }, { concurrency: 4 });
  const out = await runStage(stage, Array.from({ length: 40 }, (_, i) => i));
  t.is(out.length, 40);
  t.is(peak, 4);
});

test('map passes index and a signal to fn', async (t) => {
  const seen: number[] = [];
  await runStage(map((x: string, o) => { seen.push(o.index); t.true(o.signal instanceof AbortSignal); return x; }), ['a', 'b', 'c']);
  t.deepEqual(seen, [0, 1, 2]);
});

for (const concurrency of [1, 3]) {
  test(`map (concurrency ${concurrency}) rejects records on BadRecordError, in order, and skips them`, async (t) => {
    const ctx = testContext();
    const out = await runStage(map(async (x: number) => {
      await sleep(x % 2 ? 3 : 0);
      if (x % 3 === 0) throw new BadRecordError(`bad ${x}`);
      return x;
    }, { concurrency }), [0, 1, 2, 3, 4, 5, 6], ctx);
    t.deepEqual(out, [1, 2, 4, 5]);
    t.deepEqual(ctx.rejected.map((r) => r.record), [0, 3, 6]);
    t.regex(ctx.rejected[1]!.reason, /bad 3/);
  });

  test(`map (concurrency ${concurrency}) fails on other errors, with the record's origin`, async (t) => {
    const items = [0, 1, 2].map((i) => withOrigin({ i }, { file: 'data.jsonl', line: i + 1, index: i }));
    const err = await t.throwsAsync(runStage(map((x: { i: number }) => {
      if (x.i === 2) throw new TypeError('boom');
      return x;
    }, { concurrency }), items));
    t.is((err as { code?: string }).code, 'FF_ERR');
    t.regex(err!.message, /data\.jsonl:3, record #2: boom/);
    t.true((err as Error).cause instanceof TypeError);
  });
}

test('map fails fast: a later error does not wait for an earlier slow record', async (t) => {
  const started = Date.now();
  await t.throwsAsync(runStage(map(async (x: number) => {
    if (x === 0) await sleep(1000);
    if (x === 2) throw new Error('fast failure');
    return x;
  }, { concurrency: 4 }), [0, 1, 2, 3]), { message: /fast failure/ });
  t.true(Date.now() - started < 500);
});

test('map checks options eagerly', (t) => {
  for (const concurrency of [0, -1, 1.5, Number.NaN]) {
    const err = t.throws(() => map((x) => x, { concurrency }));
    t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
    t.regex(err!.message, /option "concurrency"/);
  }
});

test('map pulls at most `concurrency` records ahead of a stopped consumer', async (t) => {
  let produced = 0;
  async function* src(): AsyncGenerator<number> { for (let i = 0; i < 1000; i++) { produced++; yield i; } }
  const it = map(async (x: number) => x, { concurrency: 5 }).run(src(), testContext())[Symbol.asyncIterator]();
  await it.next();
  await sleep(20);
  t.true(produced <= 6, `produced ${produced}`);
  await it.return?.();
});

test('filter keeps matching records in order and is built on map', async (t) => {
  const f = filter(async (x: number) => { await sleep(x % 3); return x % 2 === 0; }, { concurrency: 3, name: 'even' });
  t.is(f.name, 'even');
  t.is(f.conserves, false);
  t.deepEqual(await runStage(f, [1, 2, 3, 4, 5, 6, 8]), [2, 4, 6, 8]);
});

test('map used on its own stops with FF_ERR_ABORTED when its context aborts', async (t) => {
  const ac = new AbortController();
  const ctx = { ...testContext(), signal: ac.signal };
  async function* src(): AsyncGenerator<number> { for (let i = 0; ; i++) { await sleep(1); yield i; } }
  const seen: number[] = [];
  const err = await t.throwsAsync((async () => {
    for await (const x of map((v: number) => v).run(src(), ctx)) { seen.push(x); if (x === 3) ac.abort('enough'); }
  })());
  t.is((err as { code?: string }).code, 'FF_ERR_ABORTED');
  t.is((err as Error).cause, 'enough');
  t.deepEqual(seen, [0, 1, 2, 3]);
});
