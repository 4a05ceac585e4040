import path from 'node:path';
import { InvalidOptionError } from '../errors.ts';
import type { RecordAt } from '../inspect/read-records.ts';
import type { CliIo } from './io.ts';
import { formatBytes, formatHistogram, formatRecord, formatTable, labelled, sideBySide } from './format.ts';

export interface InspectFlags {
  n?: number | string;
  sort?: string;
  schema?: string;
  images?: string;
  to?: string;
  withBoxes?: boolean;
  json?: boolean;
}

const SUBCOMMANDS = ['schema', 'head', 'validate', 'render'] as const;
type Sub = (typeof SUBCOMMANDS)[number] | 'summary';
const SHARD_ROWS_SHOWN = 12;

function countFlag(v: InspectFlags['n'], fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidOptionError('-n', `expected a positive integer, got "${String(v)}"`);
  return n;
}

function parseArgs(args: readonly string[]): { sub: Sub; target: string } {
  if (args.length === 0) throw new InvalidOptionError('PATH', 'missing the shard folder or file to inspect', { fix: 'pipeline inspect [schema|head|validate|render] PATH' });
  const [first, second, ...rest] = args;
  if ((SUBCOMMANDS as readonly string[]).includes(first!) && second !== undefined) {
    if (rest.length) throw new InvalidOptionError('PATH', `expected one path, got ${args.length - 1}: ${args.slice(1).join(' ')}`);
    return { sub: first as Sub, target: second };
  }
  if (second !== undefined) {
    throw new InvalidOptionError('command', `unknown inspect command "${first}"`, { fix: `use one of: ${SUBCOMMANDS.join(', ')} (or just a PATH for the summary)` });
  }
  return { sub: 'summary', target: first! };
}

function where(at: RecordAt, target: string): string {
  const rel = path.relative(target, at.file);
  return `${rel && !rel.startsWith('..') ? rel : at.file}:${at.row}`;
}

/** `pipeline inspect ...`: maps flags to the inspect API and prints its reports. */
export async function inspectCommand(args: readonly string[], flags: InspectFlags, io: CliIo): Promise<number> {
  const { sub, target } = parseArgs(args);
  const width = io.columns;
  const json = (v: unknown) => io.out(JSON.stringify(v, null, 2));

  if (sub === 'summary') {
    const { inspectShards } = await import('../inspect/inspect-shards.ts');
    const r = await inspectShards(target, { schema: flags.schema });
    if (flags.json) return json(r), 0;
    const schema = r.schema ? `${r.schema.name} v${r.schema.version ?? '?'}` : 'unknown schema';
    const codecs = [...new Set(r.shards.map((s) => s.codec))].join(', ');
    io.out(`${r.path}: ${schema}, ${r.format ?? '?'} (${codecs}), ${r.total_rows} rows in ${r.shards.length} shard${r.shards.length === 1 ? '' : 's'}, ${formatBytes(r.bytes)}`);
    if (r.split !== null) {
      const params = Object.entries(r.params ?? {}).map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
      io.out(labelled(`split ${r.split}, seed ${r.seed}${params.length ? ', params ' : ''}`, params.join(' '), width));
    }
    const shown = r.shards.slice(0, SHARD_ROWS_SHOWN);
    io.out('\n' + formatTable(['shard', 'rows', 'size', 'codec', 'row groups'], shown.map((s) => [s.path, s.rows, formatBytes(s.bytes), s.codec, s.row_groups])));
    if (r.shards.length > shown.length) io.out(`... and ${r.shards.length - shown.length} more shards (--json lists all)`);
    if (r.rejected) io.out(`\nrejected: ${r.rejected.count}${r.rejected.count ? ` (${r.rejected.path})` : ''}`);
    if (r.unreadable) io.out(`unreadable rows: ${r.unreadable}`);
    if (r.sources) {
      const total = r.sources.reduce((a, s) => a + s.rows, 0) || 1;
      io.out('\nrows per source\n' + formatTable(['source', 'rows', 'share'], r.sources.map((s) => [s.source, s.rows, `${((100 * s.rows) / total).toFixed(1)}%`])));
    }
    for (const [title, h] of [['turns per conversation', r.turns_per_conversation], ['characters per turn', r.chars_per_turn]] as const) {
      if (!h) continue;
      io.out(`\n${title} (mean ${h.mean.toFixed(1)}, min ${h.min}, max ${h.max})`);
      io.out(formatHistogram(h.bins.map((b) => ({ label: b.label, count: b.count }))));
    }
    return 0;
  }

  if (sub === 'schema') {
    const { inspectSchema, fieldTypeText } = await import('../inspect/inspect-schema.ts');
    const r = await inspectSchema(target, { schema: flags.schema });
    if (flags.json) return json(r), 0;
    io.out(`${r.schema ? `${r.schema.name} v${r.schema.version ?? '?'} (from ${r.schema.from})` : 'unknown schema'}; ${r.format}, codec ${r.codec}; first shard ${r.file}`);
    if (r.fields) {
      if (r.registered_version !== null && r.schema?.version !== null && r.registered_version !== r.schema?.version) {
        io.out(`note: this factflow knows version ${r.registered_version}`);
      }
      io.out(formatTable(['field', 'type', 'nullable', 'in file'], r.fields.map((f) => [f.name, fieldTypeText(f.type), f.nullable ? 'yes' : 'no', r.columns.includes(f.name) ? 'yes' : 'MISSING'])));
      if (r.extra.length) io.out(`columns not in the schema: ${r.extra.join(', ')}`);
    } else {
      io.out(`columns: ${r.columns.join(', ')}`);
    }
    return r.missing.length ? 1 : 0;
  }

  if (sub === 'head') {
    const { headRecords } = await import('../inspect/head-records.ts');
    const r = await headRecords(target, { n: countFlag(flags.n, 3), sort: flags.sort, schema: flags.schema });
    if (flags.json) {
      const plain = (xs?: readonly RecordAt[]) => xs?.map((x) => ({ file: x.file, row: x.row, record: x.record }));
      return json({ schema: r.schema, records: plain(r.records), highest: plain(r.highest), lowest: plain(r.lowest), sort_key: r.sort_key }), 0;
    }
    const name = r.schema?.name;
    if (r.records) {
      for (const at of r.records) {
        io.out(`-- ${where(at, target)} ${'-'.repeat(Math.max(0, Math.min(width, 80) - where(at, target).length - 4))}`);
        io.out(formatRecord(name, at.record, width) + '\n');
      }
      return 0;
    }
    const hi = r.highest ?? [];
    const lo = r.lowest ?? [];
    const col = Math.floor((width - 3) / 2);
    const value = (at: RecordAt) => {
      const rec = at.record as Record<string, unknown>;
      const v = r.sort_key === 'reward' ? rec.reward_total ?? rec.reward_model ?? rec.reward : rec[r.sort_key!];
      return typeof v === 'number' ? v.toFixed(3) : String(v);
    };
    for (let i = 0; i < Math.max(hi.length, lo.length); i++) {
      const blocks = [hi[i], lo[i]].filter((x): x is RecordAt => x !== undefined).map((at, k) => ({
        title: `${k === 0 ? 'highest' : 'lowest'} #${i + 1}: ${r.sort_key} ${value(at)} (${where(at, target)})`,
        text: formatRecord(name, at.record, col),
      }));
      io.out(sideBySide(blocks, width) + '\n');
    }
    return 0;
  }

  if (sub === 'validate') {
    const { validateShards } = await import('../inspect/validate-shards.ts');
    const r = await validateShards(target, { schema: flags.schema, maxFailures: 10 });
    if (flags.json) return json(r), r.invalid ? 1 : 0;
    for (const w of r.warnings) io.err(`warning: ${w}`);
    if (r.invalid === 0) {
      io.out(`${r.schema.name}: ${r.rows} rows, all valid`);
      return 0;
    }
    io.out(`${r.schema.name}: ${r.invalid} of ${r.rows} rows invalid; first ${r.failures.length}:`);
    for (const f of r.failures) io.out(`  ${f.file} row ${f.row}: ${f.reason}`);
    return 1;
  }

  const { renderBoxes } = await import('../inspect/render-boxes.ts');
  if (!flags.images) throw new InvalidOptionError('--images', 'render needs the image root', { fix: 'pass --images DIR: the folder the records\' image paths are relative to' });
  if (!flags.to) throw new InvalidOptionError('--to', 'render needs an output folder', { fix: 'pass --to DIR' });
  const written = await renderBoxes(target, { n: countFlag(flags.n, 3), images: String(flags.images), to: String(flags.to), withBoxes: flags.withBoxes === true });
  if (flags.json) return json(written), 0;
  for (const w of written) {
    const boxes = w.phrases.reduce((a, p) => a + p.boxes.length, 0);
    io.out(`${w.file}  (${w.id}: ${boxes} box${boxes === 1 ? '' : 'es'} on ${w.image}, ${w.width}x${w.height})`);
  }
  if (written.length === 0) io.out('no records with an image');
  return 0;
}
