import test from 'ava';
import { formatDefault, formatParams } from '../../src/cli/list.ts';
import type { ParamSpecs } from '../../src/pipeline/define-pipeline.ts';

test('formatDefault: one-word values plain; empty, whitespace, newlines and quotes JSON-quoted', (t) => {
  t.is(formatDefault(20), '20');
  t.is(formatDefault(true), 'true');
  t.is(formatDefault('runs/shapes-world'), 'runs/shapes-world');
  t.is(formatDefault(''), '""');
  t.is(formatDefault('\nAnswer the question.'), '"\\nAnswer the question."');
  t.is(formatDefault('yes/no'), 'yes/no');
  t.is(formatDefault('a"b'), '"a\\"b"');
});

test('formatParams: bounded left column; a long default stands alone and its description wraps under the column', (t) => {
  const params: ParamSpecs = {
    n: { type: 'number', default: 20, description: 'records to generate' },
    prompt_suffix: { type: 'string', default: '\nAnswer the question using a single word or phrase.', description: 'added on a new line after each question when the policy answers ("": none); a long description that has to wrap' },
    format: { type: 'enum', default: 'parquet', values: ['parquet', 'arrow', 'jsonl'], description: 'shard format' },
    images: { type: 'path', default: '', description: 'image root' },
  };
  const lines = formatParams(params, 80).join('\n').split('\n');
  t.true(lines.every((l) => l.length <= 80), lines.join('\n'));
  t.false(lines.some((l) => l.trim() === 'Answer the question using a single word or phrase."'), 'the default newline is escaped');
  // the short entries share one column, as wide as the longest short entry
  const col = '    --set format=parquet  '.length;
  t.is(lines[0], '    --set n=20'.padEnd(col) + 'number: records to generate');
  t.is(lines[1], '    --set prompt_suffix="\\nAnswer the question using a single word or phrase."');
  t.true(lines[2]!.startsWith(' '.repeat(col) + 'string: added on a new line'));
  t.true(lines[3]!.startsWith(' '.repeat(col)), 'the description wraps under the column');
  t.true(lines.includes('    --set format=parquet  parquet|arrow|jsonl: shard format'));
  t.true(lines.includes('    --set images=""'.padEnd(col) + 'path: image root'));
  // a default longer than the whole width is cut
  const long = formatParams({ s: { type: 'string', default: 'x y '.repeat(40), description: 'd' } }, 60);
  t.true(long[0]!.endsWith('…'));
  t.is(long[0]!.length, 60);
});
