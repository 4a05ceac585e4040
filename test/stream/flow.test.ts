import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { BadRecordError } from '../../src/errors.ts';
import { dedup } from '../../src/stream/dedup.ts';
import { runFlow } from '../../src/stream/flow.ts';
import { map } from '../../src/stream/map.ts';
import { batch } from '../../src/stream/batch.ts';
import { tee } from '../../src/stream/tee.ts';
import { withOrigin } from '../../src/stream/origin.ts';
import type { ProgressSink } from '../../src/stream/progress.ts';
import type { Source, Stage } from '../../src/stream/stage.ts';
import { arraySource, collectSink, sleep, tempDir } from './helpers.ts';

type Rec = { id: number; text: string };
const records = (n: number): Rec[] => Array.from({ length: n }, (_, i) => ({ id: i, text: `t${i % 7}` }));

const rejectOdd: Stage<Rec, Rec> = map((r: Rec) => {
  if (r.id % 5 === 1) throw new BadRecordError(`id ${r.id} is unlucky`);
  return r;
}, { name: 'unlucky' });

test('runFlow counts every stage: in = out + rejected, dead letters carry the origin', async (t) => {
  const dir = await tempDir(t);
  const deadLetterPath = join(dir, 'dl', 'dead-letters.jsonl');
  const sink = collectSink<Rec>('shards');
  const res = await runFlow({
    source: arraySource('vqav2', records(20)),
    stages: [rejectOdd, dedup<Rec>({ key: (r) => r.text, name: 'dedup' })],
    sink,
  }, { seed: 1, deadLetterPath, params: { ratio: 0.5 } });

  t.deepEqual(res.stages.map((s) => s.name), ['vqav2', 'unlucky', 'dedup', 'shards']);
  for (const s of res.stages) t.is(s.in, s.out + s.rejected, s.name);
  t.deepEqual(res.stages[0], { name: 'vqav2', in: 20, out: 20, rejected: 0 });
  t.deepEqual(res.stages[1], { name: 'unlucky', in: 20, out: 16, rejected: 4 });
  // 16 records left, 7 distinct texts t0..t6
  t.deepEqual(res.stages[2], { name: 'dedup', in: 16, out: 7, rejected: 9 });
  t.is(res.stages[3]!.in, res.stages[2]!.out);
  t.is(res.result.length, res.stages[3]!.out);
  t.is(res.rejected, 4 + res.stages[2]!.rejected);
  t.is(res.deadLetterPath, deadLetterPath);
  t.deepEqual(sink.ctx!.params, { ratio: 0.5 });
  t.is(sink.ctx!.deadLetters.path, deadLetterPath);
  t.is(sink.ctx!.deadLetters.count(), res.rejected);

  const lines = (await readFile(deadLetterPath, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
  t.is(lines.length, res.rejected);
  t.deepEqual(lines[0], { stage: 'unlucky', file: 'vqav2.jsonl', line: 2, byteOffset: null, index: 1, reason: 'id 1 is unlucky', record: { id: 1, text: 't1' } });
  const dup = lines.find((l) => l.stage === 'dedup');
  t.regex(dup.reason, /^duplicate of record #\d+$/);
  t.is(dup.file, 'vqav2.jsonl');
});

test('runFlow creates an empty dead-letter file when nothing is rejected; no stages is fine', async (t) => {
  const dir = await tempDir(t);
  const res = await runFlow({ source: arraySource('s', [1, 2, 3]), sink: collectSink<number>() }, { seed: 0, deadLetterPath: join(dir, 'dl.jsonl') });
  t.deepEqual(res.result, [1, 2, 3]);
  t.is((await stat(res.deadLetterPath)).size, 0);
  t.is(res.rejected, 0);
  t.deepEqual(res.stages, [{ name: 's', in: 3, out: 3, rejected: 0 }, { name: 'collect', in: 3, out: 3, rejected: 0 }]);
});

test('source rejections count on the source row (in = out + rejected)', async (t) => {
  const dir = await tempDir(t);
  const source: Source<number> = {
    name: 'raw',
    async *read(ctx) {
      for (let i = 0; i < 10; i++) {
        if (i % 4 === 0) ctx.reject({ line: i }, 'unparseable', { file: 'raw.json', byteOffset: i * 100, index: i });
        else yield i;
      }
    },
  };
  const res = await runFlow({ source, sink: collectSink<number>() }, { seed: 0, deadLetterPath: join(dir, 'dl.jsonl') });
  t.deepEqual(res.stages[0], { name: 'raw', in: 10, out: 7, rejected: 3 });
  const first = JSON.parse((await readFile(res.deadLetterPath, 'utf8')).split('\n')[0]!);
  t.like(first, { stage: 'raw', file: 'raw.json', byteOffset: 0, line: null, reason: 'unparseable' });
});

test('policy fail: a rejection throws BadRecordError naming stage and position', async (t) => {
  const dir = await tempDir(t);
  const err = await t.throwsAsync(runFlow({
    source: arraySource('vqav2', records(20)),
    stages: [rejectOdd],
    sink: collectSink<Rec>(),
  }, { seed: 1, policy: 'fail', deadLetterPath: join(dir, 'dl.jsonl') }));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.regex(err!.message, /vqav2\.jsonl:2, record #1, stage "unlucky": id 1 is unlucky/);
  t.like(err, { stage: 'unlucky', file: 'vqav2.jsonl', line: 2, recordIndex: 1 });
});

test('policy fail via ctx.reject with a string reason', async (t) => {
  const dir = await tempDir(t);
  const stage: Stage<Rec, Rec> = {
    name: 'checker',
    async *run(input, ctx) {
      for await (const r of input) {
        if (r.id === 3) { ctx.reject(r, 'text too long'); continue; }
        yield r;
      }
    },
  };
  const err = await t.throwsAsync(runFlow({ source: arraySource('s', records(5)), stages: [stage], sink: collectSink<Rec>() },
    { seed: 1, policy: 'fail', deadLetterPath: join(dir, 'dl.jsonl') }));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.regex(err!.message, /s\.jsonl:4, record #3, stage "checker": record rejected: text too long/);
});

test('a non-factflow error is wrapped with the stage name and kept as cause', async (t) => {
  const dir = await tempDir(t);
  const stage: Stage<Rec, Rec> = { name: 'explode', async *run(input) { for await (const r of input) { if (r.id === 2) throw new RangeError('nope'); yield r; } } };
  const err = await t.throwsAsync(runFlow({ source: arraySource('s', records(5)), stages: [stage, map((r: Rec) => r, { name: 'after' })], sink: collectSink<Rec>() },
    { seed: 1, deadLetterPath: join(dir, 'dl.jsonl') }));
  t.is((err as { code?: string }).code, 'FF_ERR');
  t.is((err as { stage?: string }).stage, 'explode');
  t.regex(err!.message, /stage "explode": stage failed: nope/);
  t.true((err as Error).cause instanceof RangeError);
});

function endless(name: string, counter: { produced: number }, delayMs = 0): Source<Rec> {
  return {
    name,
    async *read(ctx) {
      for (let i = 0; ; i++) {
        if (delayMs) await sleep(delayMs);
        counter.produced++;
        yield withOrigin({ id: i, text: '' }, { file: `${name}.jsonl`, line: i + 1, index: i });
        if (ctx.signal.aborted) return;
      }
    },
  };
}

test('the first error aborts the other stages (a tee side and the source stop)', async (t) => {
  const dir = await tempDir(t);
  const counter = { produced: 0 };
  let sideSawAbort = false;
  let sideRead = 0;
  const side = tee<Rec>(async (input, signal) => {
    signal.addEventListener('abort', () => { sideSawAbort = true; });
    try { for await (const _ of input) { sideRead++; await sleep(1); } } catch { /* stopped */ }
  }, { name: 'side', highWaterMark: 4 });
  const boom = map((r: Rec) => { if (r.id === 10) throw new Error('stage boom failed'); return r; }, { name: 'boom' });
  const err = await t.throwsAsync(runFlow({ source: endless('gen', counter), stages: [side, boom], sink: collectSink<Rec>() },
    { seed: 1, deadLetterPath: join(dir, 'dl.jsonl') }));
  t.regex(err!.message, /stage boom failed/);
  t.is((err as { stage?: string }).stage, 'boom');
  t.true(sideSawAbort);
  const produced = counter.produced;
  await sleep(30);
  t.is(counter.produced, produced, 'source stopped');
  t.true(produced < 30, `produced ${produced}`);
  t.true(sideRead <= 11);
});

test('a failing sink aborts the stages upstream', async (t) => {
  const dir = await tempDir(t);
  const counter = { produced: 0 };
  let stageSignal: AbortSignal | undefined;
  const spy = map((r: Rec, o) => { stageSignal = o.signal; return r; }, { name: 'spy', concurrency: 2 });
  const err = await t.throwsAsync(runFlow({
    source: endless('gen', counter),
    stages: [spy],
    sink: { name: 'bad-sink', async write(input) { for await (const r of input as AsyncIterable<Rec>) if (r.id === 5) throw new BadRecordError('sink says no'); } },
  }, { seed: 1, deadLetterPath: join(dir, 'dl.jsonl') }));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_RECORD');
  t.is((err as { stage?: string }).stage, 'bad-sink');
  t.true(stageSignal!.aborted);
});

test('aborting through options.signal gives FF_ERR_ABORTED with the reason as cause', async (t) => {
  const dir = await tempDir(t);
  const counter = { produced: 0 };
  const ac = new AbortController();
  const reason = new Error('user pressed ctrl-c');
  setTimeout(() => ac.abort(reason), 30);
  const err = await t.throwsAsync(runFlow({
    source: endless('gen', counter, 1),
    stages: [map(async (r: Rec) => { await sleep(1); return r; }, { concurrency: 3, name: 'slow' })],
    sink: collectSink<Rec>(),
  }, { seed: 1, signal: ac.signal, deadLetterPath: join(dir, 'dl.jsonl') }));
  t.is((err as { code?: string }).code, 'FF_ERR_ABORTED');
  t.is((err as Error).cause, reason);
  const produced = counter.produced;
  await sleep(30);
  t.is(counter.produced, produced);
});

test('an already aborted signal rejects at once', async (t) => {
  const err = await t.throwsAsync(runFlow({ source: arraySource('s', [1]), sink: collectSink() },
    { seed: 1, signal: AbortSignal.abort('stop'), deadLetterPath: join(await tempDir(t), 'dl.jsonl') }));
  t.is((err as { code?: string }).code, 'FF_ERR_ABORTED');
  t.is((err as Error).cause, 'stop');
});

test('a slow sink keeps the source only a few records ahead (pull-based)', async (t) => {
  const dir = await tempDir(t);
  const src = arraySource('s', records(60));
  let maxAhead = 0;
  let consumed = 0;
  await runFlow({
    source: src,
    stages: [map((r: Rec) => r, { name: 'a' }), map(async (r: Rec) => r, { name: 'b', concurrency: 4 })],
    sink: { name: 'slow', async write(input) { for await (const _ of input) { consumed++; maxAhead = Math.max(maxAhead, src.produced - consumed); await sleep(1); } } },
  }, { seed: 1, deadLetterPath: join(dir, 'dl.jsonl') });
  t.is(consumed, 60);
  // concurrency 4 in flight + one record held by each serial stage/tap at most
  t.true(maxAhead <= 6, `maxAhead ${maxAhead}`);
});

test('options and stage names are checked', async (t) => {
  const dl = join(await tempDir(t), 'dl.jsonl');
  const same = map((x) => x, { name: 'x' });
  let err = await t.throwsAsync(runFlow({ source: arraySource('s', [1]), stages: [same, same], sink: collectSink() }, { seed: 1, deadLetterPath: dl }));
  t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(err!.message, /option "stages\[1\]\.name"/);
  err = await t.throwsAsync(runFlow({ source: arraySource('s', [1]), sink: collectSink() }, { seed: 1.5, deadLetterPath: dl }));
  t.regex(err!.message, /option "seed"/);
  err = await t.throwsAsync(runFlow({ source: arraySource('s', [1]), sink: collectSink() }, { seed: 1, deadLetterPath: dl, policy: 'retry' as 'skip' }));
  t.regex(err!.message, /option "policy"/);
  err = await t.throwsAsync(runFlow({ source: arraySource('s', [1]), sink: collectSink() }, { seed: 1, deadLetterPath: dl, partition: { index: 2, count: 2 } }));
  t.regex(err!.message, /option "partition"/);
});

test('contexts carry seed, partition and the sources\' input fingerprints', async (t) => {
  const dir = await tempDir(t);
  let seen: unknown;
  const source: Source<number> = {
    name: 'fp',
    inputs: async () => [{ path: 'a.json', bytes: 3, sha256: 'abc' }],
    async *read(ctx) { seen = { seed: ctx.seed, partition: ctx.partition }; yield 1; },
  };
  const sink = collectSink<number>();
  await runFlow({ source, sink }, { seed: 42, partition: { index: 1, count: 3 }, deadLetterPath: join(dir, 'dl.jsonl') });
  t.deepEqual(seen, { seed: 42, partition: { index: 1, count: 3 } });
  t.deepEqual(await sink.ctx!.inputs(), [{ path: 'a.json', bytes: 3, sha256: 'abc' }]);
  t.is(sink.ctx!.seed, 42);
});

test('runFlow reports source and sink counts to the progress sink; batch rows are marked', async (t) => {
  const dir = await tempDir(t);
  const events: string[] = [];
  const progress: ProgressSink = {
    start(name, o) {
      events.push(`start ${name} ${o?.unit}`);
      return { update: (d) => events.push(`${name} ${d}`), setTotal: (n) => events.push(`${name} total ${n}`), stop: () => events.push(`stop ${name}`) };
    },
  };
  const res = await runFlow({ source: arraySource('src', records(10)), stages: [batch<Rec>(4)], sink: collectSink<Rec[]>() },
    { seed: 1, progress, name: 'mixflow', deadLetterPath: join(dir, 'dl.jsonl') });
  t.true(events.includes('start mixflow: src records'));
  t.true(events.includes('mixflow: src total 10'));
  t.true(events.includes('mixflow: src 10'));
  t.true(events.includes('mixflow: collect 3'));
  t.true(events.includes('stop mixflow: collect'));
  t.deepEqual(res.stages[1], { name: 'batch(4)', in: 10, out: 3, rejected: 0, conserves: false });
});

test('a stage whose run() throws synchronously fails with its own name; a sink that swallows errors does not hide them', async (t) => {
  const dl = join(await tempDir(t), 'dl.jsonl');
  const broken: Stage<number, number> = { name: 'broken', run() { throw new TypeError('no iterable'); } };
  let err = await t.throwsAsync(runFlow({ source: arraySource('s', [1, 2]), stages: [broken], sink: collectSink<number>() }, { seed: 1, deadLetterPath: dl }));
  t.is((err as { stage?: string }).stage, 'broken');

  const boom = map((x: number) => { if (x === 2) throw new Error('lost?'); return x; }, { name: 'boom' });
  err = await t.throwsAsync(runFlow({
    source: arraySource('s', [1, 2, 3]), stages: [boom],
    sink: { name: 'lenient', async write(input) { try { for await (const _ of input); } catch { /* swallowed */ } return 0; } },
  }, { seed: 1, deadLetterPath: dl }));
  t.regex(err!.message, /stage "boom".*lost\?/);
});

test('a sink that stops early: counts are exact for what crossed each boundary', async (t) => {
  const dir = await tempDir(t);
  const src = arraySource('s', records(100));
  const res = await runFlow({
    source: src,
    stages: [map((r: Rec) => r, { name: 'a' }), map((r: Rec) => r, { name: 'b' })],
    sink: { name: 'first5', async write(input) { let n = 0; for await (const _ of input) if (++n === 5) break; return n; } },
  }, { seed: 1, deadLetterPath: join(dir, 'dl.jsonl') });
  t.is(res.result, 5);
  t.deepEqual(res.stages.map((s) => [s.in, s.out]), [[5, 5], [5, 5], [5, 5], [5, 5]]);
  t.is(src.produced, 5);
});

test('counts are exact across many records and a batching stage', async (t) => {
  const dir = await tempDir(t);
  const res = await runFlow({
    source: arraySource('s', records(10_000)),
    stages: [rejectOdd, batch<Rec>(64), map((xs: Rec[]) => xs, { name: 'arrays', concurrency: 3 })],
    sink: collectSink<Rec[]>(),
  }, { seed: 1, deadLetterPath: join(dir, 'dl.jsonl') });
  t.deepEqual(res.stages.map((s) => [s.name, s.in, s.out, s.rejected]), [
    ['s', 10_000, 10_000, 0],
    ['unlucky', 10_000, 8000, 2000],
    ['batch(64)', 8000, 125, 0],
    ['arrays', 125, 125, 0],
    ['collect', 125, 125, 0],
  ]);
});
