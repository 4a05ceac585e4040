/**
 * Records -> Parquet bytes with hyparquet-writer, one row group at a time.
 * Nested columns use the standard 3-level LIST (`<name> (LIST) { repeated group list
 * { element } }`), so DuckDB, pyarrow and HF `datasets` read `conversations` as
 * list<struct<from, value>>. No timestamps or random ids: the same records give the
 * same bytes.
 */
import * as zlib from 'node:zlib';
import { ByteWriter, ParquetWriter, type SchemaElement } from 'hyparquet-writer';
import type { CompressionCodec } from 'hyparquet';
import { SCHEMA_NAME_KEY, SCHEMA_VERSION_KEY } from '../schemas/arrow-schema.ts';
import type { FieldSpec, FieldType } from '../schemas/field.ts';
import { InvalidOptionError } from '../src/errors.ts';
import type { ShardEncoder, ShardEncoding } from './shard-sink.ts';

export type ParquetCodec = 'uncompressed' | 'snappy' | 'gzip' | 'brotli' | 'zstd';

/** zstd needs `zlib.zstdCompressSync` (Node >= 22.15); Node 20 has none. */
type ZstdZlib = { zstdCompressSync?: (input: Uint8Array) => Buffer };
const zstdCompress = (zlib as unknown as ZstdZlib).zstdCompressSync;

/** Codecs this Node can write. */
export const PARQUET_CODECS: readonly ParquetCodec[] = ['uncompressed', 'snappy', 'gzip', 'brotli', ...(zstdCompress ? (['zstd'] as const) : [])];

const CODEC_NAMES: Record<ParquetCodec, CompressionCodec> = {
  uncompressed: 'UNCOMPRESSED',
  snappy: 'SNAPPY',
  gzip: 'GZIP',
  brotli: 'BROTLI',
  zstd: 'ZSTD',
};

// Node's gzip header has mtime 0, so gzip output is deterministic like the others.
const COMPRESSORS = {
  GZIP: (input: Uint8Array): Uint8Array => zlib.gzipSync(input, { level: 6 }),
  BROTLI: (input: Uint8Array): Uint8Array => zlib.brotliCompressSync(input, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } }),
  ...(zstdCompress ? { ZSTD: (input: Uint8Array): Uint8Array => zstdCompress(input) } : {}),
};

/** Checks a codec option; unknown or unavailable codecs are an InvalidOptionError naming `option`. */
export function checkParquetCodec(codec: unknown, option = 'codec'): ParquetCodec {
  if (typeof codec === 'string' && (PARQUET_CODECS as readonly string[]).includes(codec)) return codec as ParquetCodec;
  const why = codec === 'zstd' ? ' (zstd needs Node >= 22.15; this Node has no zlib zstd)' : '';
  throw new InvalidOptionError(option, `unsupported Parquet codec ${JSON.stringify(codec)}${why}; use one of ${PARQUET_CODECS.join(', ')}`);
}

/** The Parquet schema (flattened SchemaElements, root first) of a field list. */
export function parquetSchemaElements(fields: readonly FieldSpec[]): SchemaElement[] {
  const out: SchemaElement[] = [{ name: 'root', num_children: fields.length }];
  for (const f of fields) pushElements(out, f.name, f.type, f.nullable ? 'OPTIONAL' : 'REQUIRED');
  return out;
}

function pushElements(out: SchemaElement[], name: string, type: FieldType, repetition: 'REQUIRED' | 'OPTIONAL'): void {
  if (typeof type === 'string') {
    out.push({ name, repetition_type: repetition, ...scalarElement(type) });
  } else if ('list' in type) {
    out.push({ name, repetition_type: repetition, converted_type: 'LIST', num_children: 1 });
    out.push({ name: 'list', repetition_type: 'REPEATED', num_children: 1 });
    pushElements(out, 'element', type.list, 'REQUIRED');
  } else {
    out.push({ name, repetition_type: repetition, num_children: type.struct.length });
    for (const f of type.struct) pushElements(out, f.name, f.type, f.nullable ? 'OPTIONAL' : 'REQUIRED');
  }
}

function scalarElement(type: Exclude<FieldType, object>): Pick<SchemaElement, 'type' | 'converted_type'> {
  switch (type) {
    case 'string': return { type: 'BYTE_ARRAY', converted_type: 'UTF8' };
    case 'bool': return { type: 'BOOLEAN' };
    case 'int8': return { type: 'INT32', converted_type: 'INT_8' };
    case 'int32': return { type: 'INT32' };
    case 'int64': return { type: 'INT64' };
    case 'float32': return { type: 'FLOAT' };
    case 'float64': return { type: 'DOUBLE' };
  }
}

/** Whether values of `type` may need rewriting for hyparquet-writer (int64 -> bigint, typed arrays -> arrays). */
function needsConversion(type: FieldType): boolean {
  if (typeof type === 'string') return type === 'int64';
  if ('list' in type) return true;
  return type.struct.some((f) => needsConversion(f.type));
}

/**
 * The value as hyparquet-writer expects it: lists as plain arrays, int64 as bigint.
 * Copies only what changes; records are never mutated.
 */
function toColumnValue(type: FieldType, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (typeof type === 'string') return type === 'int64' && typeof value === 'number' ? BigInt(value) : value;
  if ('list' in type) {
    const items = ArrayBuffer.isView(value) ? Array.from(value as unknown as ArrayLike<unknown>) : (value as unknown[]);
    const elem = type.list;
    return needsConversion(elem) ? items.map((v) => toColumnValue(elem, v)) : items;
  }
  if (!needsConversion(type)) return value;
  const rec = value as Record<string, unknown>;
  const obj: Record<string, unknown> = {};
  for (const f of type.struct) obj[f.name] = toColumnValue(f.type, rec[f.name]);
  return obj;
}

export interface ParquetEncoderOptions {
  fields: readonly FieldSpec[];
  schemaName: string;
  schemaVersion: number;
  /** Default `snappy`. */
  codec?: ParquetCodec;
}

/** A ShardEncoder writing Parquet; each `add` call becomes one row group. */
export function parquetEncoder(options: ParquetEncoderOptions): ShardEncoder {
  const codec = checkParquetCodec(options.codec ?? 'snappy');
  const schema = parquetSchemaElements(options.fields);
  const fields = options.fields;
  const kvMetadata = [
    { key: SCHEMA_NAME_KEY, value: options.schemaName },
    { key: SCHEMA_VERSION_KEY, value: String(options.schemaVersion) },
  ];
  return {
    format: 'parquet',
    ext: 'parquet',
    codec,
    open(): ShardEncoding {
      const writer = new ByteWriter(1 << 16);
      const pq = new ParquetWriter({
        writer,
        schema,
        codec: CODEC_NAMES[codec],
        compressors: COMPRESSORS,
        kvMetadata,
        createdBy: 'factflow',
      });
      // Hand back what the writer holds and restart its buffer; `offset` keeps counting
      // the file position for the footer (the same trick as hyparquet-writer's fileWriter).
      const drain = (): Uint8Array => {
        const bytes = writer.getBytes().slice();
        writer.index = 0;
        return bytes;
      };
      return {
        add(records: readonly unknown[]): Uint8Array {
          if (records.length === 0) return new Uint8Array(0);
          const columnData = fields.map((f) => {
            const convert = needsConversion(f.type);
            const data = new Array<unknown>(records.length);
            for (let i = 0; i < records.length; i++) {
              const v = (records[i] as Record<string, unknown>)[f.name];
              data[i] = convert ? toColumnValue(f.type, v) : v;
            }
            return { name: f.name, data };
          });
          const pending = pq.write({ columnData, rowGroupSize: records.length });
          if (pending) throw new Error('hyparquet-writer flushed asynchronously; the ByteWriter should be synchronous');
          return drain();
        },
        finish(): Uint8Array {
          void pq.finish();
          return drain();
        },
      };
    },
  };
}

/** Encodes records into one Parquet file in memory (tests, small outputs). */
export function encodeParquet(options: ParquetEncoderOptions & { records: readonly unknown[]; rowGroupRows?: number }): Uint8Array {
  const enc = parquetEncoder(options).open();
  const parts: Uint8Array[] = [];
  const step = options.rowGroupRows ?? 10_000;
  for (let i = 0; i < options.records.length; i += step) parts.push(enc.add(options.records.slice(i, i + step)));
  parts.push(enc.finish());
  return Buffer.concat(parts);
}
