import path from 'node:path';
import { mergeManifests } from '../pipeline/merge.ts';
import type { CliIo } from './io.ts';

/** `pipeline merge OUT DIR...`: combines partition runs into one shard set. */
export async function mergeCommand(out: string, dirs: readonly string[], flags: { json?: boolean }, io: CliIo): Promise<number> {
  const result = await mergeManifests(dirs, out);
  if (flags.json) {
    io.out(JSON.stringify({ out: result.out, partitions: result.partitions, manifest: result.manifest }, null, 2));
    return 0;
  }
  const m = result.manifest;
  const r = path.relative(process.cwd(), result.out);
  const rel = r === '' ? '.' : r.startsWith('..') ? result.out : r;
  io.out(`merged ${result.partitions} partitions: ${m.total_rows} rows in ${m.shards.length} shards, ${m.rejected.count} rejected -> ${rel}/manifest.json`);
  return 0;
}
