import path from 'node:path';
import { listShardFiles, shardFileInfo } from '../../sources/shards.ts';
import { IntCounter, type Histogram } from './histogram.ts';
import { detectSchema, folderManifest, readRecords, type SchemaId } from './read-records.ts';

export interface ShardSummary {
  /** Relative to the inspected folder (the file itself for a single file). */
  readonly path: string;
  readonly format: string;
  readonly rows: number;
  readonly bytes: number;
  readonly codec: string;
  readonly row_groups: number;
}

export interface ShardsReport {
  readonly path: string;
  readonly kind: 'folder' | 'file';
  readonly schema: SchemaId | null;
  readonly format: string | null;
  readonly total_rows: number;
  readonly bytes: number;
  readonly shards: readonly ShardSummary[];
  /** From the manifest (folders only). */
  readonly rejected: { readonly count: number; readonly path: string } | null;
  readonly split: string | null;
  readonly seed: number | null;
  readonly params: Readonly<Record<string, unknown>> | null;
  /** Rows per `source` value, most first, when the records have a `source` column. */
  readonly sources: readonly { readonly source: string; readonly rows: number }[] | null;
  /** Turns per conversation, when the records have `conversations`. */
  readonly turns_per_conversation: Histogram | null;
  /** Characters per turn, when the records have `conversations`. */
  readonly chars_per_turn: Histogram | null;
  /** Rows that could not be read (JSONL lines that are not JSON). */
  readonly unreadable: number;
}

export interface InspectOptions {
  /** Schema for files that do not name one. */
  schema?: string;
  signal?: AbortSignal;
}

/**
 * Summarises a shard folder or one .parquet/.arrow/.jsonl file: schema, rows, shards with
 * sizes and codec, and (scanning every row once, in bounded memory) per-source counts and
 * conversation shape histograms.
 */
export async function inspectShards(target: string, options: InspectOptions = {}): Promise<ShardsReport> {
  const manifest = await folderManifest(target);
  const files = await listShardFiles(target);
  const isFolder = files.length !== 1 || path.resolve(files[0]!) !== path.resolve(target);
  const shards: ShardSummary[] = [];
  for (const file of files) {
    const info = await shardFileInfo(file);
    shards.push({
      path: isFolder ? path.relative(target, file) : file,
      format: info.format,
      rows: info.rows,
      bytes: info.bytes,
      codec: info.codec,
      row_groups: info.rowGroups,
    });
  }
  const schema = await detectSchema(target, options.schema);

  const sources = new Map<string, number>();
  let hasSource = false;
  let hasTurns = false;
  const turns = new IntCounter();
  const chars = new IntCounter();
  let unreadable = 0;
  for await (const { record } of readRecords(target, { signal: options.signal, onUnreadable: () => void unreadable++ })) {
    if (typeof record !== 'object' || record === null) continue;
    const r = record as Record<string, unknown>;
    if (typeof r.source === 'string') {
      hasSource = true;
      sources.set(r.source, (sources.get(r.source) ?? 0) + 1);
    }
    if (Array.isArray(r.conversations)) {
      hasTurns = true;
      turns.add(r.conversations.length);
      for (const t of r.conversations as { value?: unknown }[]) if (typeof t?.value === 'string') chars.add(t.value.length);
    }
  }

  return {
    path: target,
    kind: isFolder ? 'folder' : 'file',
    schema,
    format: manifest?.format ?? shards[0]?.format ?? null,
    total_rows: shards.reduce((a, s) => a + s.rows, 0),
    bytes: shards.reduce((a, s) => a + s.bytes, 0),
    shards,
    rejected: manifest ? { ...manifest.rejected } : null,
    split: manifest?.split ?? null,
    seed: manifest?.seed ?? null,
    params: manifest?.params ?? null,
    sources: hasSource ? [...sources.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([source, rows]) => ({ source, rows })) : null,
    turns_per_conversation: hasTurns ? turns.histogram(16) : null,
    chars_per_turn: hasTurns ? chars.histogram(0) : null,
    unreadable,
  };
}
