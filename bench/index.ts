/**
 * `npm run bench [-- --quick] [-- suite...]`: runs every bench file and prints one table.
 * Ratios compare against a baseline measured in the same run (the machines are shared and noisy).
 */
import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import type { BenchFn, BenchRow } from './types.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.filter((a) => !a.startsWith('--'));

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 1e6) return n.toExponential(2);
  if (a >= 100) return n.toFixed(0);
  if (a >= 1) return n.toFixed(2);
  return n.toPrecision(3);
}

function table(rows: BenchRow[]): string {
  const head = ['suite', 'case', 'value', 'unit', 'ratio', 'baseline', 'note'];
  const body = rows.map((r) => [r.suite, r.case, fmt(r.value), r.unit, r.ratio === undefined ? '' : r.ratio.toFixed(2), r.baseline ?? '', r.note ?? '']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [line(head), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...body.map(line)].join('\n');
}

const files = (await readdir(here)).filter((f) => f.endsWith('.ts') && !['index.ts', 'types.ts', 'gpu.ts'].includes(f)).sort();
const rows: BenchRow[] = [];
for (const file of files) {
  const suite = file.replace(/\.ts$/, '');
  if (only.length > 0 && !only.includes(suite)) continue;
  process.stderr.write(`bench: ${suite}...\n`);
  const mod = (await import(pathToFileURL(path.join(here, file)).href)) as { bench?: BenchFn };
  if (typeof mod.bench !== 'function') continue;
  try {
    rows.push(...(await mod.bench({ quick })));
  } catch (err) {
    rows.push({ suite, case: 'FAILED', value: Number.NaN, unit: '', note: err instanceof Error ? err.message.slice(0, 120) : String(err) });
  }
}
process.stdout.write(table(rows) + '\n');
