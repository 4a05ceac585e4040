/**
 * Reads our own shards back: a folder through its manifest (only listed shards exist),
 * or one .parquet / .arrow / .jsonl file. Parquet streams one row group at a time and
 * Arrow one record batch at a time, so memory stays bounded by a row group.
 */
import { createHash } from 'node:crypto';
import { createReadStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import * as zlib from 'node:zlib';
import { RecordBatchReader, tableFromIPC, type Schema as ArrowSchema } from 'apache-arrow';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema, type Compressors, type FileMetaData } from 'hyparquet';
import { SCHEMA_NAME_KEY, SCHEMA_VERSION_KEY, arrowToPlain } from '../schemas/arrow-schema.ts';
import type { RecordSchema } from '../schemas/field.ts';
import { MANIFEST_FILE, readManifest, type Manifest, type ShardFormat } from '../schemas/manifest.ts';
import { BadInputError, BadRecordError, InvalidOptionError, SchemaMismatchError } from '../src/errors.ts';
import { withOrigin } from '../src/stream/origin.ts';
import type { InputFingerprint, Source, SourceContext } from '../src/stream/stage.ts';

export interface ShardSourceOptions<T> {
  /** A shard folder (with manifest.json) or one .parquet/.arrow/.jsonl file. */
  path: string;
  /** When given, every file's schema name must match (SchemaMismatchError otherwise). */
  schema?: RecordSchema<T>;
  /** When given, the folder's manifest must be of this split. */
  split?: string;
  /** Also check each shard's sha256 against the manifest (sizes are always checked). */
  verify?: boolean;
  /** Source name in the flow; default `read-shards`. */
  name?: string;
}

interface ShardFile {
  file: string;
  rows?: number;
  bytes?: number;
  sha256?: string;
}

interface Resolved {
  format: ShardFormat;
  files: ShardFile[];
  manifest?: Manifest;
  manifestFile?: string;
}

type ZstdZlib = { zstdDecompressSync?: (input: Uint8Array) => Buffer };
const zstdDecompress = (zlib as unknown as ZstdZlib).zstdDecompressSync;

/** Decompressors for codecs hyparquet has no built-in for (it has snappy). */
export const PARQUET_DECOMPRESSORS: Compressors = {
  GZIP: (input) => zlib.gunzipSync(input),
  BROTLI: (input) => zlib.brotliDecompressSync(input),
  ...(zstdDecompress ? { ZSTD: (input: Uint8Array) => zstdDecompress(input) } : {}),
};

export function shardSource<T>(options: ShardSourceOptions<T>): Source<T> {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'expected an object');
  if (typeof options.path !== 'string' || options.path === '') throw new InvalidOptionError('path', 'expected a shard folder or a .parquet/.arrow/.jsonl file');
  const { schema, split } = options;
  if (schema !== undefined && (typeof schema.name !== 'string' || !Array.isArray(schema.fields))) {
    throw new InvalidOptionError('schema', 'expected a RecordSchema');
  }
  if (split !== undefined && (typeof split !== 'string' || split === '')) throw new InvalidOptionError('split', 'expected a non-empty string');
  if (options.verify !== undefined && typeof options.verify !== 'boolean') throw new InvalidOptionError('verify', 'expected true or false');
  const verify = options.verify ?? false;

  let resolved: Promise<Resolved> | undefined;
  const resolve = (): Promise<Resolved> => (resolved ??= resolveShards(options.path, schema, split));

  return {
    name: options.name ?? 'read-shards',
    async inputs(): Promise<InputFingerprint[]> {
      const r = await resolve();
      const out: InputFingerprint[] = [];
      for (const f of r.files) {
        out.push({ path: f.file, bytes: f.bytes ?? (await fsp.stat(f.file)).size, sha256: f.sha256 ?? (await sha256File(f.file)) });
      }
      return out;
    },
    async *read(ctx: SourceContext): AsyncIterable<T> {
      const r = await resolve();
      for (const f of r.files) await checkFile(f, verify);
      // Rows of each file, to give this partition a contiguous range of the whole input.
      const counts: number[] = [];
      for (const f of r.files) counts.push(f.rows ?? (await countRows(f.file, r.format)));
      const total = counts.reduce((a, b) => a + b, 0);
      const { index, count } = ctx.partition;
      const lo = Math.floor((index * total) / count);
      const hi = Math.floor(((index + 1) * total) / count);
      ctx.setTotal(hi - lo);
      let base = 0;
      for (let i = 0; i < r.files.length; i++) {
        const f = r.files[i]!;
        const rows = counts[i]!;
        const start = Math.max(lo - base, 0);
        const end = Math.min(hi - base, rows);
        base += rows;
        if (start >= end) continue;
        if (r.format === 'parquet') yield* readParquet(f.file, start, end, schema, ctx.signal) as AsyncIterable<T>;
        else if (r.format === 'arrow') yield* readArrow(f.file, start, end, schema, ctx.signal) as AsyncIterable<T>;
        else yield* readJsonl(f.file, start, end, ctx) as AsyncIterable<T>;
      }
    },
  };
}

async function resolveShards(p: string, schema: RecordSchema<unknown> | undefined, split: string | undefined): Promise<Resolved> {
  let stat;
  try {
    stat = await fsp.stat(p);
  } catch (cause) {
    throw new BadInputError('no such shard folder or file', { file: p, cause, fix: 'check the path; shard folders hold a manifest.json' });
  }
  if (stat.isDirectory()) {
    const manifest = await readManifest(p);
    const manifestFile = path.join(p, MANIFEST_FILE);
    if (schema && manifest.schema !== schema.name) {
      throw new SchemaMismatchError(`the manifest lists "${manifest.schema}" records but "${schema.name}" records were expected`, {
        file: manifestFile,
        fix: `read this folder with the ${manifest.schema} schema, or point at a folder of ${schema.name} shards`,
      });
    }
    if (split !== undefined && manifest.split !== split) {
      throw new BadInputError(`the manifest is of split "${manifest.split}" but split "${split}" was asked for`, { file: manifestFile });
    }
    return {
      format: manifest.format,
      manifest,
      manifestFile,
      files: manifest.shards.map((s) => ({ file: path.join(p, s.path), rows: s.rows, bytes: s.bytes, sha256: s.sha256 })),
    };
  }
  const format = formatOfFile(p);
  if (!format) throw new BadInputError('not a shard file (expected .parquet, .arrow or .jsonl)', { file: p });
  return { format, files: [{ file: p }] };
}

function formatOfFile(file: string): ShardFormat | null {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.parquet') return 'parquet';
  if (ext === '.arrow' || ext === '.feather' || ext === '.ipc') return 'arrow';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  return null;
}

async function checkFile(f: ShardFile, verify: boolean): Promise<void> {
  let size: number;
  try {
    size = (await fsp.stat(f.file)).size;
  } catch (cause) {
    throw new BadInputError('a shard listed in the manifest is missing', { file: f.file, cause, fix: 'rerun the run that wrote this folder' });
  }
  if (f.bytes !== undefined && size !== f.bytes) {
    throw new BadInputError(`the shard has ${size} bytes but the manifest says ${f.bytes} (truncated or replaced)`, {
      file: f.file,
      fix: 'rerun the run that wrote this folder',
    });
  }
  if (verify && f.sha256 !== undefined) {
    const actual = await sha256File(f.file);
    if (actual !== f.sha256) {
      throw new BadInputError(`the shard's sha256 is ${actual} but the manifest says ${f.sha256}`, { file: f.file, fix: 'rerun the run that wrote this folder' });
    }
  }
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function checkSchemaName(file: string, found: string | undefined, schema: RecordSchema<unknown> | undefined, columns: readonly string[]): void {
  if (!schema) return;
  if (found !== undefined) {
    if (found !== schema.name) {
      throw new SchemaMismatchError(`the file holds "${found}" records but "${schema.name}" records were expected`, {
        file,
        fix: `read it with the ${found} schema, or point at ${schema.name} shards`,
      });
    }
    return;
  }
  // A file written elsewhere (no factflow metadata) is accepted when it has every column.
  const missing = schema.fields.filter((f) => !columns.includes(f.name)).map((f) => f.name);
  if (missing.length > 0) {
    throw new SchemaMismatchError(`the file has no "${SCHEMA_NAME_KEY}" metadata and lacks the ${schema.name} column(s) ${missing.join(', ')}`, { file });
  }
}

async function openParquet(file: string): Promise<{ buffer: Awaited<ReturnType<typeof asyncBufferFromFile>>; metadata: FileMetaData }> {
  const buffer = await asyncBufferFromFile(file);
  try {
    return { buffer, metadata: await parquetMetadataAsync(buffer) };
  } catch (cause) {
    throw new BadInputError('not a readable Parquet file', { file, cause, fix: 'rerun the run that wrote it' });
  }
}

function kv(metadata: FileMetaData, key: string): string | undefined {
  return metadata.key_value_metadata?.find((e) => e.key === key)?.value;
}

function topLevelColumns(metadata: FileMetaData): string[] {
  return parquetSchema(metadata).children.map((c) => c.element.name);
}

/** Parquet can hand back typed arrays for lists; records hold plain arrays. */
function normalizeRow(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'object') return value;
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<unknown>);
  if (Array.isArray(value)) return value.map(normalizeRow);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = normalizeRow(v);
  return out;
}

async function* readParquet(file: string, start: number, end: number, schema: RecordSchema<unknown> | undefined, signal: AbortSignal): AsyncIterable<unknown> {
  const { buffer, metadata } = await openParquet(file);
  checkSchemaName(file, kv(metadata, SCHEMA_NAME_KEY), schema, topLevelColumns(metadata));
  let groupStart = 0;
  for (const group of metadata.row_groups) {
    const groupEnd = groupStart + Number(group.num_rows);
    const from = Math.max(start, groupStart);
    const to = Math.min(end, groupEnd);
    if (from < to) {
      signal.throwIfAborted();
      const rows = await parquetReadObjects({ file: buffer, metadata, rowStart: from, rowEnd: to, compressors: PARQUET_DECOMPRESSORS });
      for (let i = 0; i < rows.length; i++) yield withOrigin(normalizeRow(rows[i]), { file, index: from + i });
    }
    groupStart = groupEnd;
    if (groupStart >= end) break;
  }
}

function arrowSchemaName(s: ArrowSchema): string | undefined {
  return s.metadata.get(SCHEMA_NAME_KEY);
}

async function* readArrow(file: string, start: number, end: number, schema: RecordSchema<unknown> | undefined, signal: AbortSignal): AsyncIterable<unknown> {
  let reader;
  try {
    reader = await RecordBatchReader.from(createReadStream(file));
    await reader.open();
  } catch (cause) {
    throw new BadInputError('not a readable Arrow IPC file', { file, cause });
  }
  checkSchemaName(file, arrowSchemaName(reader.schema), schema, reader.schema.fields.map((f) => f.name));
  let base = 0;
  try {
    for await (const batch of reader) {
      const from = Math.max(start, base);
      const to = Math.min(end, base + batch.numRows);
      for (let i = from; i < to; i++) yield withOrigin(arrowToPlain(batch.get(i - base)), { file, index: i });
      base += batch.numRows;
      if (base >= end) break;
      signal.throwIfAborted();
    }
  } finally {
    await reader.return();
  }
}

async function* readJsonl(file: string, start: number, end: number, ctx: SourceContext): AsyncIterable<unknown> {
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  let index = -1;
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      index++;
      if (index < start) continue;
      if (index >= end) break;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch (cause) {
        ctx.reject(line, new BadRecordError('the line is not valid JSON', { file, line: lineNo, recordIndex: index, cause }), { file, line: lineNo, index });
        continue;
      }
      yield withOrigin(record, { file, line: lineNo, index });
    }
  } finally {
    lines.close();
  }
}

async function countRows(file: string, format: ShardFormat): Promise<number> {
  if (format === 'parquet') return Number((await openParquet(file)).metadata.num_rows);
  if (format === 'arrow') return (await shardFileInfo(file)).rows;
  let n = 0;
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) if (line.trim() !== '') n++;
  return n;
}

/** What `pipeline inspect` shows about one shard file. */
export interface ShardFileInfo {
  file: string;
  format: ShardFormat;
  rows: number;
  bytes: number;
  /** Parquet codec of the first column chunk, lower case (`snappy`, `gzip`, ...); `uncompressed` for Arrow/JSONL. */
  codec: string;
  schemaName: string | null;
  schemaVersion: number | null;
  columns: string[];
  /** Parquet row groups / Arrow record batches / 0 for JSONL. */
  rowGroups: number;
}

export async function shardFileInfo(file: string): Promise<ShardFileInfo> {
  const format = formatOfFile(file);
  if (!format) throw new BadInputError('not a shard file (expected .parquet, .arrow or .jsonl)', { file });
  let bytes: number;
  try {
    bytes = (await fsp.stat(file)).size;
  } catch (cause) {
    throw new BadInputError('no such shard file', { file, cause });
  }
  if (format === 'parquet') {
    const { metadata } = await openParquet(file);
    const version = kv(metadata, SCHEMA_VERSION_KEY);
    return {
      file,
      format,
      rows: Number(metadata.num_rows),
      bytes,
      codec: (metadata.row_groups[0]?.columns[0]?.meta_data?.codec ?? 'UNCOMPRESSED').toLowerCase(),
      schemaName: kv(metadata, SCHEMA_NAME_KEY) ?? null,
      schemaVersion: version === undefined ? null : Number(version),
      columns: topLevelColumns(metadata),
      rowGroups: metadata.row_groups.length,
    };
  }
  if (format === 'arrow') {
    let table;
    try {
      table = tableFromIPC(await fsp.readFile(file));
    } catch (cause) {
      throw new BadInputError('not a readable Arrow IPC file', { file, cause });
    }
    const version = table.schema.metadata.get(SCHEMA_VERSION_KEY);
    return {
      file,
      format,
      rows: table.numRows,
      bytes,
      codec: 'uncompressed',
      schemaName: arrowSchemaName(table.schema) ?? null,
      schemaVersion: version === undefined ? null : Number(version),
      columns: table.schema.fields.map((f) => f.name),
      rowGroups: table.batches.length,
    };
  }
  // JSONL carries no metadata: take the schema from a manifest beside it that lists it.
  let rows = 0;
  let columns: string[] = [];
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === '') continue;
    if (rows === 0) {
      try {
        const first = JSON.parse(line) as unknown;
        if (first && typeof first === 'object') columns = Object.keys(first);
      } catch {
        // columns stay unknown
      }
    }
    rows++;
  }
  let schemaName: string | null = null;
  let schemaVersion: number | null = null;
  try {
    const m = await readManifest(path.dirname(file));
    if (m.shards.some((s) => path.join(path.dirname(file), s.path) === path.normalize(file))) {
      schemaName = m.schema;
      schemaVersion = m.schema_version;
    }
  } catch {
    // no manifest beside it
  }
  return { file, format, rows, bytes, codec: 'uncompressed', schemaName, schemaVersion, columns, rowGroups: 0 };
}

/** The shard files behind a path: a folder's manifest-listed shards (else its shard files by name), or the file itself. */
export async function listShardFiles(pathOrDir: string): Promise<string[]> {
  let stat;
  try {
    stat = await fsp.stat(pathOrDir);
  } catch (cause) {
    throw new BadInputError('no such shard folder or file', { file: pathOrDir, cause });
  }
  if (!stat.isDirectory()) return [pathOrDir];
  try {
    await fsp.access(path.join(pathOrDir, MANIFEST_FILE));
  } catch {
    const names = (await fsp.readdir(pathOrDir)).filter((n) => formatOfFile(n) !== null).sort();
    return names.map((n) => path.join(pathOrDir, n));
  }
  const manifest = await readManifest(pathOrDir);
  return manifest.shards.map((s) => path.join(pathOrDir, s.path));
}
