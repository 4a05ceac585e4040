import test, { type ExecutionContext } from 'ava';
import * as path from 'node:path';
import { repeatEpochs } from '../../sources/repeat-epochs.ts';
import { runFlow } from '../../src/stream/flow.ts';
import type { Sink, Source } from '../../src/stream/stage.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const numbers = (n: number): Source<{ i: number }> => ({
  name: 'numbers',
  inputs: async () => [{ path: 'n.txt', bytes: n, sha256: 'x' }],
  async *read(ctx) { ctx.setTotal(n); for (let i = 0; i < n; i++) yield { i }; },
});
const collect: Sink<{ i: number }, number[]> = { name: 'collect', async write(input) { const out: number[] = []; for await (const r of input) out.push(r.i); return out; } };

async function run(t: ExecutionContext, source: Source<{ i: number }>, seed = 1): Promise<number[]> {
  const dir = await tempDir(t, 'ff-epochs-');
  return (await runFlow({ source, sink: collect }, { seed, deadLetterPath: path.join(dir, 'rejected.jsonl') })).result;
}

test('every record once per epoch, each epoch in its own seeded order', async (t) => {
  const out = await run(t, repeatEpochs({ source: numbers(20), epochs: 3 }));
  t.is(out.length, 60);
  const epochs = [out.slice(0, 20), out.slice(20, 40), out.slice(40)];
  for (const e of epochs) t.deepEqual([...e].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
  t.notDeepEqual(epochs[0], epochs[1]);
  t.deepEqual(await run(t, repeatEpochs({ source: numbers(20), epochs: 3 })), out, 'same seed, same order');
  t.notDeepEqual(await run(t, repeatEpochs({ source: numbers(20), epochs: 3 }), 2), out, 'another seed, another order');
});

test('shuffleBuffer 0 keeps the source order; inputs pass through', async (t) => {
  const src = repeatEpochs({ source: numbers(5), epochs: 2, shuffleBuffer: 0 });
  t.deepEqual(await run(t, src), [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
  t.deepEqual(await src.inputs!(), [{ path: 'n.txt', bytes: 5, sha256: 'x' }]);
});

test('the progress total is every epoch, or expectedRecords when that is smaller', async (t) => {
  const totals = async (src: Source<{ i: number }>) => {
    const seen: number[] = [];
    const ctx = { name: 'x', seed: 1, signal: new AbortController().signal, note: () => {}, setTotal: (n: number) => seen.push(n) };
    for await (const _ of src.read(ctx as never)) { /* drain */ }
    return seen;
  };
  t.deepEqual(await totals(repeatEpochs({ source: numbers(5), epochs: 3 })), [15, 15, 15]);
  t.deepEqual(await totals(repeatEpochs({ source: numbers(5), epochs: 3, expectedRecords: 7 })), [7, 7, 7]);
  t.deepEqual(await totals(repeatEpochs({ source: numbers(5), epochs: 1, expectedRecords: 70 })), [5]);
  t.throws(() => repeatEpochs({ source: numbers(1), epochs: 1, expectedRecords: 0 }), { code: 'FF_ERR_INVALID_OPTION', message: /"expectedRecords"/ });
});

test('options are checked at the factory', (t) => {
  t.throws(() => repeatEpochs({ source: numbers(1), epochs: 0 }), { code: 'FF_ERR_INVALID_OPTION', message: /"epochs"/ });
  t.throws(() => repeatEpochs({ source: numbers(1), epochs: 1, shuffleBuffer: -1 }), { code: 'FF_ERR_INVALID_OPTION', message: /"shuffleBuffer"/ });
});
