import test from 'ava';
import { holdout } from '../../transforms/holdout.ts';
import type { Source } from '../../src/stream/stage.ts';
import { runStage } from '../sources/harness.ts';

const records = Array.from({ length: 1000 }, (_, i) => ({ id: `conv-${i}` }));
const source: Source<{ id: string }> = { name: 'ids', async *read() { yield* records; } };

test('exact count: holds out exactly N of M; holdout and rest are complements, stable across seeds of the run', async (t) => {
  const held = await runStage(holdout({ take: 'holdout', count: 380, of: source }), records, { seed: 1 });
  const rest = await runStage(holdout({ take: 'rest', count: 380, of: source }), records, { seed: 99 });
  t.is(held.items.length, 380);
  t.is(rest.items.length, 620);
  const a = new Set(held.items.map((r) => r.id));
  t.true(rest.items.every((r) => !a.has(r.id)));
  // a different split seed gives a different set
  const other = await runStage(holdout({ take: 'holdout', count: 380, of: source, seed: 5 }), records);
  t.notDeepEqual(other.items.map((r) => r.id), held.items.map((r) => r.id));
  t.is(other.items.length, 380);
});

test('fraction: about that share; ids: an explicit list', async (t) => {
  const f = await runStage(holdout({ take: 'holdout', fraction: 0.3 }), records);
  t.true(f.items.length > 250 && f.items.length < 350, `${f.items.length}`);
  const stage = holdout<{ id: string }>({ take: 'rest', ids: ['conv-1', 'conv-2'] });
  const r = await runStage(stage, records.slice(0, 4));
  t.deepEqual(r.items.map((x) => x.id), ['conv-0', 'conv-3']);
  t.deepEqual(stage.report(), { seen: 4, held: 2, passed: 2 });
  t.deepEqual(r.notes, ['held out 2 of 4, passed 2 (rest)']);
});

test('options are checked at the factory', (t) => {
  t.throws(() => holdout({ take: 'both' as never, fraction: 0.1 }), { message: /option "take"/ });
  t.throws(() => holdout({ take: 'rest' }), { message: /exactly one of/ });
  t.throws(() => holdout({ take: 'rest', count: 5 }), { message: /option "of"/ });
  t.throws(() => holdout({ take: 'rest', fraction: 2 }), { message: /option "fraction"/ });
});
