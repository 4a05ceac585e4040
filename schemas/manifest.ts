/**
 * The shard folder's table of contents. Only shards listed here exist for readers;
 * everything else in the folder (a `.partial/` of an unfinished run, stray files) is
 * invisible. Also the naming rules for shard and manifest files.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { BadInputError } from '../src/errors.ts';

export type ShardFormat = 'parquet' | 'arrow' | 'jsonl';

export const SHARD_FORMATS: readonly ShardFormat[] = ['parquet', 'arrow', 'jsonl'];

export interface ManifestShard {
  /** Relative to the manifest's folder. */
  path: string;
  rows: number;
  bytes: number;
  sha256: string;
}

export interface Manifest {
  format: ShardFormat;
  schema: string;
  schema_version: number;
  split: string;
  total_rows: number;
  shards: ManifestShard[];
  /** Records the run rejected; `path` is the dead-letter file relative to the folder. */
  rejected: { count: number; path: string };
  params: Record<string, unknown>;
  seed: number;
  inputs: { path: string; bytes: number; sha256: string }[];
  /** Present on a partition manifest (`--partition i/n`) until merge combines them. */
  partition?: { index: number; count: number };
}

export const MANIFEST_FILE = 'manifest.json';

const pad5 = (n: number): string => String(n).padStart(5, '0');

/** `<split>-<i:05d>-of-<n:05d>.<ext>`: the final name of shard `i` of `n`. */
export function shardFileName(split: string, i: number, n: number, ext: string): string {
  return `${split}-${pad5(i)}-of-${pad5(n)}.${ext}`;
}

/** `<split>-part<p:05d>-<k:05d>.<ext>`: shard `k` of partition `p`, renamed by merge. */
export function partitionShardFileName(split: string, partition: number, k: number, ext: string): string {
  return `${split}-part${pad5(partition)}-${pad5(k)}.${ext}`;
}

/** `manifest.part-<i:05d>-of-<n:05d>.json`: the manifest one partition writes. */
export function partitionManifestName(index: number, count: number): string {
  return `manifest.part-${pad5(index)}-of-${pad5(count)}.json`;
}

/** The file extension of a format. */
export function formatExtension(format: ShardFormat): string {
  return format;
}

/** Reads and checks `<dir>/<fileName>`; a missing or malformed manifest is a BadInputError naming it. */
export async function readManifest(dir: string, fileName = MANIFEST_FILE): Promise<Manifest> {
  const file = path.join(dir, fileName);
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    let fix: string | undefined;
    if (missing) {
      const names = await fsp.readdir(dir).catch(() => [] as string[]);
      fix = names.some((n) => /^manifest\.part-\d{5}-of-\d{5}\.json$/.test(n))
        ? 'this folder holds partition runs; combine them with `pipeline merge` first'
        : 'point at a folder written by a shard sink (it has manifest.json), or finish/rerun the run that writes it';
    }
    throw new BadInputError(missing ? 'no shard manifest here' : 'cannot read the shard manifest', { file, cause, fix });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new BadInputError('the shard manifest is not valid JSON', { file, cause, fix: 'rerun the run that wrote this folder' });
  }
  const reason = checkManifest(value);
  if (reason) throw new BadInputError(`invalid shard manifest: ${reason}`, { file, fix: 'rerun the run that wrote this folder' });
  return value as Manifest;
}

function checkManifest(m: unknown): string | null {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return 'it is not a JSON object.';
  const r = m as Record<string, unknown>;
  if (!SHARD_FORMATS.includes(r.format as ShardFormat)) return `"format" must be one of ${SHARD_FORMATS.join(', ')}.`;
  if (typeof r.schema !== 'string' || r.schema === '') return '"schema" must be a non-empty string.';
  if (!Number.isInteger(r.schema_version)) return '"schema_version" must be an integer.';
  if (typeof r.split !== 'string' || r.split === '') return '"split" must be a non-empty string.';
  if (!isCount(r.total_rows)) return '"total_rows" must be a non-negative integer.';
  if (!Array.isArray(r.shards)) return '"shards" must be a list.';
  let sum = 0;
  for (let i = 0; i < r.shards.length; i++) {
    const s = r.shards[i] as Record<string, unknown> | null;
    if (typeof s !== 'object' || s === null) return `shards[${i}] must be an object.`;
    if (typeof s.path !== 'string' || s.path === '' || path.isAbsolute(s.path) || s.path.split(/[/\\]/).includes('..')) {
      return `shards[${i}].path must be a relative path inside the folder.`;
    }
    if (!isCount(s.rows) || !isCount(s.bytes)) return `shards[${i}] needs non-negative integer "rows" and "bytes".`;
    if (typeof s.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(s.sha256)) return `shards[${i}].sha256 must be 64 hex digits.`;
    sum += s.rows as number;
  }
  if (sum !== r.total_rows) return `"total_rows" is ${String(r.total_rows)} but the shards hold ${sum} rows.`;
  const rej = r.rejected as Record<string, unknown> | undefined;
  if (typeof rej !== 'object' || rej === null || !isCount(rej.count) || typeof rej.path !== 'string') return '"rejected" must be {count, path}.';
  if (typeof r.params !== 'object' || r.params === null) return '"params" must be an object.';
  if (typeof r.seed !== 'number') return '"seed" must be a number.';
  if (!Array.isArray(r.inputs)) return '"inputs" must be a list.';
  if (r.partition !== undefined) {
    const p = r.partition as Record<string, unknown>;
    if (!isCount(p.index) || !isCount(p.count) || (p.index as number) >= (p.count as number)) return '"partition" must be {index, count} with index < count.';
  }
  return null;
}

function isCount(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** Writes JSON to a temporary name, fsyncs and renames, so readers never see half a file. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await fsp.open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(value, null, 2) + '\n', 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, file);
}

/** Writes `<dir>/<fileName>` atomically (temporary name + rename). */
export async function writeManifestAtomic(dir: string, manifest: Manifest, fileName = MANIFEST_FILE): Promise<void> {
  await writeJsonAtomic(path.join(dir, fileName), manifest);
}
