import { stat } from 'node:fs/promises';
import path from 'node:path';
import { BadInputError, InvalidOptionError } from '../errors.ts';
import { originOf } from '../stream/origin.ts';
import type { SourceContext } from '../stream/stage.ts';
import type { RecordSchema } from '../../schemas/field.ts';
import { MANIFEST_FILE, readManifest, type Manifest } from '../../schemas/manifest.ts';
import { SCHEMAS, schemaByName } from '../../schemas/registry.ts';
import { listShardFiles, shardFileInfo, shardSource } from '../../sources/shards.ts';

/** One record with where it is: the shard file and its 0-based row in that file. */
export interface RecordAt {
  readonly record: unknown;
  readonly file: string;
  readonly row: number;
}

/** A row that could not even be read as a record (a JSONL line that is not JSON). */
export interface UnreadableRow {
  readonly file: string;
  readonly row: number;
  readonly line?: number;
  readonly reason: string;
}

export interface ReadRecordsOptions {
  signal?: AbortSignal;
  /** Called for unreadable rows; default: they are skipped. */
  onUnreadable?: (row: UnreadableRow) => void;
}

/** The manifest of a folder, when it has `manifest.json`. */
export async function folderManifest(target: string): Promise<Manifest | undefined> {
  let isDir = false;
  try {
    isDir = (await stat(target)).isDirectory();
  } catch (cause) {
    throw new BadInputError('no such shard folder or file', { file: target, cause, fix: 'give a shard folder (with manifest.json) or a .parquet/.arrow/.jsonl file' });
  }
  if (!isDir) return undefined;
  try {
    await stat(path.join(target, MANIFEST_FILE));
  } catch {
    return undefined;
  }
  return readManifest(target);
}

/**
 * Streams every record behind `target` (a shard folder through its manifest, or one
 * .parquet/.arrow/.jsonl file), one shard at a time, with its file and row.
 */
export async function* readRecords(target: string, options: ReadRecordsOptions = {}): AsyncGenerator<RecordAt> {
  const files = await listShardFiles(target);
  if (files.length === 0) {
    throw new BadInputError('no shard files here', { file: target, fix: 'give a folder written by a shard sink, or a .parquet/.arrow/.jsonl file' });
  }
  const signal = options.signal ?? new AbortController().signal;
  for (const file of files) {
    const source = shardSource<unknown>({ path: file });
    const ctx: SourceContext = {
      name: 'inspect',
      signal,
      seed: 0,
      partition: { index: 0, count: 1 },
      counts: { in: 0, out: 0, rejected: 0 },
      reject: (_record, reason, origin) => {
        const text = reason instanceof Error ? ((reason as { detail?: string }).detail ?? reason.message) : reason;
        options.onUnreadable?.({ file, row: origin?.index ?? -1, line: origin?.line, reason: text });
      },
      setTotal: () => {},
      note: () => {},
    };
    let row = 0;
    for await (const record of source.read(ctx)) {
      const at = originOf(record)?.index ?? row;
      row = at + 1;
      yield { record, file, row: at };
    }
  }
}

/** The name and version of the records behind `target`, from its manifest, file metadata, or `override`. */
export interface SchemaId {
  readonly name: string;
  readonly version: number | null;
  /** Where the name came from. */
  readonly from: 'manifest' | 'file' | 'option' | 'guess';
}

/**
 * Finds the schema of `target`: `--schema` wins, then the manifest, then the first shard's
 * metadata, then (JSONL without a manifest) the first registered schema the first record fits.
 */
export async function detectSchema(target: string, override?: string): Promise<SchemaId | null> {
  if (override !== undefined) {
    const s = schemaByName(override);
    if (!s) throw new InvalidOptionError('--schema', `unknown schema "${override}"; known: ${SCHEMAS.map((x) => x.name).join(', ')}`);
    return { name: s.name, version: s.version, from: 'option' };
  }
  const manifest = await folderManifest(target);
  if (manifest) return { name: manifest.schema, version: manifest.schema_version, from: 'manifest' };
  const files = await listShardFiles(target);
  if (files.length === 0) return null;
  const info = await shardFileInfo(files[0]!);
  if (info.schemaName) return { name: info.schemaName, version: info.schemaVersion, from: 'file' };
  for await (const { record } of readRecords(files[0]!)) {
    const fits = SCHEMAS.find((s) => s.validate(record) === null);
    return fits ? { name: fits.name, version: fits.version, from: 'guess' } : null;
  }
  return null;
}

/** The registered schema for an id, or a clear error. */
export function schemaFor(id: SchemaId | null, target: string): RecordSchema<unknown> {
  if (!id) {
    throw new BadInputError('cannot tell which schema these records have', { file: target, fix: `pass --schema NAME (one of ${SCHEMAS.map((s) => s.name).join(', ')})` });
  }
  const s = schemaByName(id.name);
  if (!s) throw new BadInputError(`the records are of schema "${id.name}", which this factflow does not know`, { file: target, fix: `known schemas: ${SCHEMAS.map((x) => x.name).join(', ')}` });
  return s;
}
