import test from 'ava';
import { channel } from '../../src/stream/channel.ts';
import { tee } from '../../src/stream/tee.ts';
import { runStage, sleep, testContext } from './helpers.ts';

test('channel buffers up to highWaterMark, then push waits for the reader', async (t) => {
  const ch = channel<number>({ highWaterMark: 2 });
  await ch.push(1);
  await ch.push(2);
  let third = false;
  const p = ch.push(3).then(() => { third = true; });
  await sleep(5);
  t.false(third);
  t.is(ch.size, 2);
  const it = ch[Symbol.asyncIterator]();
  t.deepEqual(await it.next(), { done: false, value: 1 });
  await p;
  t.true(third);
  ch.close();
  t.deepEqual(await it.next(), { done: false, value: 2 });
  t.deepEqual(await it.next(), { done: false, value: 3 });
  t.deepEqual(await it.next(), { done: true, value: undefined });
});

test('channel error reaches the reader and pending pushes; cancel drops or rejects pushes', async (t) => {
  const ch = channel<number>({ highWaterMark: 1 });
  await ch.push(1);
  const pending = ch.push(2);
  ch.error(new Error('broken'));
  await t.throwsAsync(pending, { message: 'broken' });
  await t.throwsAsync(ch[Symbol.asyncIterator]().next(), { message: 'broken' });

  const c2 = channel<number>({ highWaterMark: 1 });
  c2.cancel();
  await t.notThrowsAsync(c2.push(1));
  const c3 = channel<number>({ highWaterMark: 1 });
  c3.cancel(new Error('reader failed'));
  await t.throwsAsync(c3.push(1), { message: 'reader failed' });
  const err = t.throws(() => channel({ highWaterMark: 0 }));
  t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
});

test('tee passes records through and the side gets all of them, finishing before the stage ends', async (t) => {
  const side: number[] = [];
  let sideDone = false;
  const stage = tee<number>(async (input) => {
    for await (const x of input) { side.push(x); await sleep(0); }
    await sleep(10);
    sideDone = true;
  }, { highWaterMark: 3 });
  const out = await runStage(stage, [1, 2, 3, 4, 5, 6, 7]);
  t.deepEqual(out, [1, 2, 3, 4, 5, 6, 7]);
  t.deepEqual(side, [1, 2, 3, 4, 5, 6, 7]);
  t.true(sideDone);
});

test('tee backpressure: a slow side keeps the producer at most highWaterMark (+1 in hand) ahead', async (t) => {
  let produced = 0;
  let maxAhead = 0;
  async function* src(): AsyncGenerator<number> { for (let i = 0; i < 40; i++) { produced++; yield i; } }
  let consumed = 0;
  const hwm = 4;
  const stage = tee<number>(async (input) => {
    for await (const _ of input) {
      consumed++;
      maxAhead = Math.max(maxAhead, produced - consumed);
      await sleep(1);
    }
  }, { highWaterMark: hwm });
  let out = 0;
  for await (const _ of stage.run(src(), testContext())) out++;
  t.is(out, 40);
  t.is(consumed, 40);
  t.true(maxAhead <= hwm + 1, `maxAhead ${maxAhead}`);
  t.true(maxAhead >= hwm - 1, `the buffer was used: ${maxAhead}`);
});

test('tee: the side\'s error fails the stage', async (t) => {
  const stage = tee<number>(async (input) => {
    for await (const x of input) if (x === 3) throw new Error('shard writer failed');
  }, { highWaterMark: 2 });
  await t.throwsAsync(runStage(stage, Array.from({ length: 100 }, (_, i) => i)), { message: 'shard writer failed' });
});

test('tee: a side that stops reading early does not block the main path', async (t) => {
  const stage = tee<number>(async (input) => { for await (const x of input) if (x === 2) break; }, { highWaterMark: 1 });
  t.deepEqual(await runStage(stage, [0, 1, 2, 3, 4, 5]), [0, 1, 2, 3, 4, 5]);
});

test('tee checks options', (t) => {
  const err = t.throws(() => tee(async () => {}, { highWaterMark: 0 }));
  t.regex(err!.message, /option "highWaterMark"/);
});
