import path from 'node:path';
import type { ParamSpec } from '../pipeline/define-pipeline.ts';
import { listPipelines } from '../pipeline/list-pipelines.ts';
import type { CliIo } from './io.ts';
import { labelled, wrap } from './format.ts';

/** The widest the `--set key=default` column grows; longer entries put their description on the next line. */
const MAX_LEFT = 36;
const INDENT = '    ';

/**
 * A default as it would be typed after `key=`: plain when it is one word, JSON-quoted when it is
 * empty or holds whitespace, quotes or control characters (a newline would break the layout).
 */
export function formatDefault(value: unknown): string {
  if (typeof value !== 'string') return String(value);
  return value === '' || /[\s"'\\\p{Cc}]/u.test(value) ? JSON.stringify(value) : value;
}

/**
 * `--set key=default   kind: description` lines for one pipeline's parameters. The left column
 * is as wide as its longest entry up to MAX_LEFT; a longer entry stands alone on its line (cut
 * with … if even that is too narrow) and its description follows, wrapped, under the column.
 */
export function formatParams(params: Readonly<Record<string, ParamSpec>>, columns: number): string[] {
  const entries = Object.entries(params).map(([key, spec]) => {
    const kind = spec.type === 'enum' ? spec.values.join('|') : spec.type;
    return { left: `--set ${key}=${formatDefault(spec.default)}`, text: `${kind}: ${spec.description}` };
  });
  if (entries.length === 0) return [];
  const cap = Math.min(MAX_LEFT, Math.floor(columns / 2));
  const width = Math.max(...entries.map((e) => e.left.length).filter((n) => n <= cap), 0) || cap;
  const pad = ' '.repeat(INDENT.length + width + 2);
  const lines: string[] = [];
  for (const { left, text } of entries) {
    if (left.length <= width) {
      lines.push(labelled(`${INDENT}${left.padEnd(width)}  `, text, columns));
      continue;
    }
    const room = columns - INDENT.length;
    lines.push(INDENT + (left.length > room ? `${left.slice(0, room - 1)}…` : left));
    for (const l of wrap(text, columns - pad.length)) lines.push(pad + l);
  }
  return lines;
}

/** `pipeline list`: every definition in ./pipelines with its description and parameters. */
export async function listCommand(flags: { dir?: string; json?: boolean }, io: CliIo): Promise<number> {
  const entries = await listPipelines({ dir: flags.dir });
  if (flags.json) {
    io.out(JSON.stringify(entries.map((e) => ({ ...e, file: path.relative(process.cwd(), e.file) })), null, 2));
    return entries.some((e) => e.error) ? 1 : 0;
  }
  if (entries.length === 0) io.out('no pipeline definitions found');
  let paths = false;
  for (const e of entries) {
    io.out(`${e.name}  (${path.relative(process.cwd(), e.file)})`);
    if (e.error) {
      io.out(`  cannot load: ${e.error.code}: ${e.error.message}`);
      continue;
    }
    for (const line of wrap(e.description, io.columns - 2)) io.out(`  ${line}`);
    for (const line of formatParams(e.params, io.columns)) io.out(line);
    paths ||= Object.values(e.params).some((s) => s.type === 'path');
    io.out('');
  }
  if (paths) {
    for (const line of wrap('path parameters: a relative path is taken from the folder the command runs in; http(s) URLs, "" and "none" are kept as written.', io.columns)) io.out(line);
  }
  return entries.some((e) => e.error) ? 1 : 0;
}
