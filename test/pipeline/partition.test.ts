import test from 'ava';
import { checkPartition, inPartition, parsePartition, partitionTag } from '../../src/pipeline/partition.ts';

test('parses i/n', (t) => {
  t.deepEqual({ ...parsePartition('0/1') }, { index: 0, count: 1 });
  t.deepEqual({ ...parsePartition('3/4') }, { index: 3, count: 4 });
  t.deepEqual({ ...parsePartition(' 1 / 2 ') }, { index: 1, count: 2 });
});

test('rejects malformed and out-of-range partitions', (t) => {
  const cases: [string, RegExp][] = [
    ['1', /option "--partition": expected "i\/n" \(e\.g\. 0\/4\), got "1"/],
    ['a/b', /expected "i\/n"/],
    ['-1/2', /expected "i\/n"/],
    ['2/2', /option "--partition": index must be an integer in 0\.\.1, got 2.*0-based/],
    ['0/0', /count must be an integer >= 1, got 0/],
  ];
  for (const [text, re] of cases) {
    const e = t.throws(() => parsePartition(text), undefined, text);
    t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
    t.regex(e!.message, re, text);
  }
  t.throws(() => checkPartition({ index: 1.5, count: 2 }), { message: /index must be an integer/ });
});

test('inPartition splits keys into disjoint, covering, roughly even shares', (t) => {
  const n = 4;
  const counts = [0, 0, 0, 0];
  for (let k = 0; k < 4000; k++) {
    const owners = [0, 1, 2, 3].filter((i) => inPartition(`id-${k}`, { index: i, count: n }));
    t.is(owners.length, 1);
    counts[owners[0]!]!++;
  }
  for (const c of counts) t.true(c > 850 && c < 1150, String(counts));
  t.true(inPartition('anything', { index: 0, count: 1 }));
  t.is(partitionTag({ index: 1, count: 12 }), 'part-00001-of-00012');
});
