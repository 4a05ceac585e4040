import test from 'ava';
import { formatSummaryTable } from '../../src/stream/summary-table.ts';

test('summary table aligns columns and checks in = out + rejected', (t) => {
  const text = formatSummaryTable([
    { name: 'vqav2', in: 1000, out: 1000, rejected: 0 },
    { name: 'dedup', in: 1000, out: 990, rejected: 10 },
    { name: 'shards', in: 990, out: 990, rejected: 0 },
  ]);
  t.is(text, [
    'stage     in   out  rejected',
    'vqav2   1000  1000         0',
    'dedup   1000   990        10',
    'shards   990   990         0',
    'in = out + rejected: ok',
  ].join('\n'));
});

test('summary table reports a mismatch and skips regrouping rows', (t) => {
  const text = formatSummaryTable([
    { name: 'src', in: 10, out: 10, rejected: 0 },
    { name: 'lossy', in: 10, out: 7, rejected: 1 },
    { name: 'batch(4)', in: 7, out: 2, rejected: 0, conserves: false },
  ]);
  t.regex(text, /in = out \+ rejected: MISMATCH at lossy \(10 != 7 \+ 1, 2 unaccounted\)/);
  t.regex(text, /batch\(4\) \*/);
  t.regex(text, /not checked: batch\(4\)$/);
});
