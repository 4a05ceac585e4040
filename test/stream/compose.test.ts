import { join } from 'node:path';
import test from 'ava';
import { BadRecordError } from '../../src/errors.ts';
import { batch } from '../../src/stream/batch.ts';
import { compose } from '../../src/stream/compose.ts';
import { runFlow } from '../../src/stream/flow.ts';
import { map } from '../../src/stream/map.ts';
import { arraySource, collectSink, runStage, tempDir } from './helpers.ts';

test('compose folds stages into one, in order', async (t) => {
  const s = compose(map((x: number) => x + 1, { name: 'inc' }), map((x: number) => x * 2, { name: 'dbl' }), map((x: number) => `${x}`, { name: 'str' }));
  t.is(s.name, 'inc+dbl+str');
  t.deepEqual(await runStage(s, [1, 2, 3]), ['4', '6', '8']);
});

test('a composed stage works inside runFlow; inner rejections count against it', async (t) => {
  const inner = compose(
    map((x: number) => { if (x === 2) throw new BadRecordError('two'); return x; }, { name: 'no-two' }),
    map((x: number) => x * 10, { name: 'x10' }),
  );
  const res = await runFlow({ source: arraySource('s', [1, 2, 3]), stages: [{ ...inner, name: 'clean' }], sink: collectSink<number>() },
    { seed: 1, deadLetterPath: join(await tempDir(t), 'dl.jsonl') });
  t.deepEqual(res.result, [10, 30]);
  t.deepEqual(res.stages[1], { name: 'clean', in: 3, out: 2, rejected: 1 });
});

test('compose with a regrouping stage does not conserve counts; empty compose is an option error', (t) => {
  t.is(compose(map((x: number) => x), batch<number>(2)).conserves, false);
  t.is(compose(map((x: number) => x)).conserves, undefined);
  const err = t.throws(() => compose());
  t.regex(err!.message, /option "stages"/);
});
