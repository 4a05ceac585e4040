import path from 'node:path';
import { listPipelines } from '../pipeline/list-pipelines.ts';
import type { CliIo } from './io.ts';
import { labelled, wrap } from './format.ts';

/** `pipeline list`: every definition in ./pipelines with its description and parameters. */
export async function listCommand(flags: { dir?: string; json?: boolean }, io: CliIo): Promise<number> {
  const entries = await listPipelines({ dir: flags.dir });
  if (flags.json) {
    io.out(JSON.stringify(entries.map((e) => ({ ...e, file: path.relative(process.cwd(), e.file) })), null, 2));
    return entries.some((e) => e.error) ? 1 : 0;
  }
  if (entries.length === 0) io.out('no pipeline definitions found');
  for (const e of entries) {
    io.out(`${e.name}  (${path.relative(process.cwd(), e.file)})`);
    if (e.error) {
      io.out(`  cannot load: ${e.error.code}: ${e.error.message}`);
      continue;
    }
    for (const line of wrap(e.description, io.columns - 2)) io.out(`  ${line}`);
    const params = Object.entries(e.params);
    if (params.length) {
      const width = Math.max(...params.map(([k, s]) => `${k}=${String(s.default)}`.length));
      for (const [key, spec] of params) {
        const kind = spec.type === 'enum' ? spec.values.join('|') : spec.type;
        io.out(labelled(`    --set ${`${key}=${String(spec.default)}`.padEnd(width)}  `, `${kind}: ${spec.description}`, io.columns));
      }
    }
    io.out('');
  }
  return entries.some((e) => e.error) ? 1 : 0;
}
