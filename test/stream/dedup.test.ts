import test from 'ava';
import { canonicalDigest, dedup } from '../../src/stream/dedup.ts';
import { runStage, testContext } from './helpers.ts';

test('dedup by canonical JSON: key order does not matter, duplicates are rejected with the first position', async (t) => {
  const ctx = testContext();
  const items = [{ a: 1, b: 'x' }, { b: 'x', a: 1 }, { a: 2 }, { a: 1, b: 'x' }, { a: 2, c: undefined }];
  const out = await runStage(dedup(), items, ctx);
  t.deepEqual(out, [{ a: 1, b: 'x' }, { a: 2 }]);
  t.deepEqual(ctx.rejected.map((r) => r.reason), ['duplicate of record #0', 'duplicate of record #0', 'duplicate of record #2']);
  t.is(ctx.counts.rejected + out.length, items.length);
});

test('dedup by key', async (t) => {
  const ctx = testContext();
  const out = await runStage(dedup<{ id: string; v: number }>({ key: (r) => r.id }), [{ id: 'q1', v: 1 }, { id: 'q2', v: 2 }, { id: 'q1', v: 3 }], ctx);
  t.deepEqual(out.map((r) => r.v), [1, 2]);
  t.deepEqual(ctx.rejected, [{ record: { id: 'q1', v: 3 }, reason: 'duplicate of record #0' }]);
});

test('canonical digest distinguishes types and structure, hashes bytes', (t) => {
  t.not(canonicalDigest(['ab']), canonicalDigest(['a', 'b']));
  t.not(canonicalDigest('1'), canonicalDigest(1));
  t.not(canonicalDigest({ a: null }), canonicalDigest({}));
  t.is(canonicalDigest({ a: undefined }), canonicalDigest({}));
  t.is(canonicalDigest({ img: new Uint8Array([1, 2, 3]) }), canonicalDigest({ img: Buffer.from([1, 2, 3]) }));
  t.not(canonicalDigest({ img: new Uint8Array([1, 2, 3]) }), canonicalDigest({ img: new Uint8Array([1, 2, 4]) }));
  t.is(canonicalDigest(10n), canonicalDigest(10n));
  t.is(canonicalDigest(0), canonicalDigest(-0));
  t.is(canonicalDigest({ x: 1 }).length, 16);
});

test('dedup rejects a non-string key as a bad record', async (t) => {
  const ctx = testContext();
  const out = await runStage(dedup<{ id?: string }>({ key: (r) => r.id as string }), [{ id: 'a' }, {}], ctx);
  t.is(out.length, 1);
  t.regex(ctx.rejected[0]!.reason, /dedup key is undefined/);
});
