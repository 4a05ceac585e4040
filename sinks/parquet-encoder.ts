/**
 * Records -> Parquet bytes, one row group at a time, on top of hyparquet-writer.
 * Nested columns use the standard 3-level LIST (`<name> (LIST) { repeated group list
 * { element } }`), so DuckDB, pyarrow and HF `datasets` read `conversations` as
 * list<struct<from, value>>. No timestamps or random ids: the same records give the
 * same bytes.
 *
 * hyparquet-writer's own column path (`ParquetWriter.write`) is generic and slow for
 * our shape of data: a Dremel walk per leaf, a `TextEncoder.encode` allocation per
 * string, byte-by-byte `DataView` writes (about 3x slower than this file's path on
 * conversations). The default encoder here shreds each record once into all leaf
 * columns and writes string columns itself: UTF-8 straight into one buffer, pages as
 * slices of it, ports of hyparquet-writer's dictionary decision, RLE/bit-packing and
 * snappy writing into flat buffers. hyparquet-writer still writes numeric columns,
 * thrift page headers and the footer. The choices are reproduced exactly (dictionary or
 * plain, page boundaries, RLE runs, statistics, offset indexes), so the files are
 * byte-identical to `referenceParquetEncoder`'s; test/sinks/parquet-fast-path.test.ts
 * holds it to that. hyparquet-writer is pinned in the lockfile: after an upgrade, a
 * failing byte comparison there means a port needs the same change.
 */
import * as zlib from 'node:zlib';
import { ByteWriter, ParquetWriter, type SchemaElement } from 'hyparquet-writer';
import { writeColumn } from 'hyparquet-writer/src/column.js';
import { writePageHeader } from 'hyparquet-writer/src/datapage.js';
import type { CompressionCodec } from 'hyparquet';
import { SCHEMA_NAME_KEY, SCHEMA_VERSION_KEY } from '../schemas/arrow-schema.ts';
import type { FieldSpec, FieldType } from '../schemas/field.ts';
import { InvalidOptionError } from '../src/errors.ts';
import type { ShardEncoder, ShardEncoding } from './shard-sink.ts';

// hyparquet-writer has its own copy of hyparquet's types: take them from its functions.
type PageIndexes = ReturnType<typeof writeColumn>;
type ColumnChunk = PageIndexes['chunk'];
type ColumnMetaData = NonNullable<ColumnChunk['meta_data']>;
type Encoding = ColumnMetaData['encodings'][number];
type OffsetIndex = NonNullable<PageIndexes['offsetIndex']>;
type RowGroup = ParquetWriter['row_groups'][number];

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

export interface ParquetEncoderOptions {
  fields: readonly FieldSpec[];
  schemaName: string;
  schemaVersion: number;
  /** Default `snappy`. */
  codec?: ParquetCodec;
}

/** hyparquet-writer's defaults, which both encoders use. */
const PAGE_SIZE = 1048576;

/** A ShardEncoder writing Parquet; each `add` call becomes one row group. */
export function parquetEncoder(options: ParquetEncoderOptions): ShardEncoder {
  return makeParquetEncoder(options, false);
}

/**
 * The same encoder through hyparquet-writer's generic column path: slower, kept as the
 * reference that `parquetEncoder` must match byte for byte.
 */
export function referenceParquetEncoder(options: ParquetEncoderOptions): ShardEncoder {
  return makeParquetEncoder(options, true);
}

function makeParquetEncoder(options: ParquetEncoderOptions, reference: boolean): ShardEncoder {
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
      const writeGroup = reference ? referenceGroupWriter(pq, fields) : fastGroupWriter(pq, writer, fields, schema, CODEC_NAMES[codec]);
      return {
        add(records: readonly unknown[]): Uint8Array {
          if (records.length === 0) return new Uint8Array(0);
          writeGroup(records);
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
export function encodeParquet(
  options: ParquetEncoderOptions & { records: readonly unknown[]; rowGroupRows?: number; reference?: boolean },
): Uint8Array {
  const enc = (options.reference ? referenceParquetEncoder(options) : parquetEncoder(options)).open();
  const parts: Uint8Array[] = [];
  const step = options.rowGroupRows ?? 10_000;
  for (let i = 0; i < options.records.length; i += step) parts.push(enc.add(options.records.slice(i, i + step)));
  parts.push(enc.finish());
  return Buffer.concat(parts);
}

// ------------------------------------------------------------------ reference path

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

function referenceGroupWriter(pq: ParquetWriter, fields: readonly FieldSpec[]): (records: readonly unknown[]) => void {
  return (records) => {
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
  };
}

// ------------------------------------------------------------------ fast path

/** One leaf column's values and levels for the row group being built. */
interface Leaf {
  readonly element: SchemaElement;
  readonly schemaPath: SchemaElement[];
  readonly columnName: string;
  readonly pathInSchema: string[];
  readonly maxDef: number;
  readonly maxRep: number;
  /** hyparquet-writer keeps no levels for a top-level required column, and no repetition levels for any top-level one. */
  readonly hasDef: boolean;
  readonly hasRep: boolean;
  readonly isString: boolean;
  values: unknown[];
  def: Uint8Array;
  rep: Uint8Array;
  n: number;
}

/** Pushes a value (at definition level `def`, repetition level `rep`) into the leaves below one schema node. */
type Emit = (value: unknown, def: number, rep: number, allowNull: boolean) => void;

const requiredMissing = (): Error => new Error('parquet required value is undefined');

function newLeaf(path: SchemaElement[], maxDef: number, maxRep: number): Leaf {
  if (maxDef > 255) throw new Error('parquet schema nests deeper than 255 levels');
  const element = path[path.length - 1]!;
  const flat = path.length === 2;
  const names = path.slice(1).map((s) => s.name);
  return {
    element,
    schemaPath: path,
    columnName: names.join('.'),
    pathInSchema: names,
    maxDef,
    maxRep,
    hasDef: !(flat && maxDef === 0),
    hasRep: !flat,
    isString: element.type === 'BYTE_ARRAY' && element.converted_type === 'UTF8',
    values: [],
    def: new Uint8Array(1024),
    rep: new Uint8Array(1024),
    n: 0,
  };
}

function grow(levels: Uint8Array): Uint8Array {
  const next = new Uint8Array(levels.length * 2);
  next.set(levels);
  return next;
}

function pushLeaf(leaf: Leaf, value: unknown, def: number, rep: number): void {
  const i = leaf.n++;
  if (i === leaf.def.length) {
    leaf.def = grow(leaf.def);
    leaf.rep = grow(leaf.rep);
  }
  leaf.values[i] = value;
  leaf.def[i] = def;
  leaf.rep[i] = rep;
}

/**
 * Compiles the Dremel shredding of one schema node into closures: the same levels and
 * values as hyparquet-writer's `encodeNestedValues`, for all leaves in one walk.
 * `path` runs from the root to this node; `repDepth` counts the repeated nodes above it.
 */
function compileNode(type: FieldType, path: SchemaElement[], repetition: 'REQUIRED' | 'OPTIONAL', maxDef: number, repDepth: number, leaves: Leaf[]): Emit {
  const optional = repetition === 'OPTIONAL';
  if (typeof type === 'string') {
    const leaf = newLeaf(path, optional ? maxDef + 1 : maxDef, repDepth);
    leaves.push(leaf);
    const toBigInt = type === 'int64';
    if (path.length === 2) {
      // Top-level columns: no repetition levels, and definition levels only when optional.
      if (!optional) {
        return (value) => {
          if (value === null || value === undefined) throw requiredMissing();
          leaf.values[leaf.n++] = toBigInt && typeof value === 'number' ? BigInt(value) : value;
        };
      }
      return (value) => {
        const i = leaf.n++;
        if (i === leaf.def.length) leaf.def = grow(leaf.def);
        if (value === null || value === undefined) {
          leaf.def[i] = 0;
          leaf.values[i] = value;
        } else {
          leaf.def[i] = 1;
          leaf.values[i] = toBigInt && typeof value === 'number' ? BigInt(value) : value;
        }
      };
    }
    return (value, def, rep, allowNull) => {
      if (value === null || value === undefined) {
        if (!optional && !allowNull) throw requiredMissing();
        pushLeaf(leaf, value, def, rep);
      } else {
        pushLeaf(leaf, toBigInt && typeof value === 'number' ? BigInt(value) : value, optional ? def + 1 : def, rep);
      }
    };
  }
  const at = path.length;
  const elements = parquetSchemaElements([{ name: path[at - 1]!.name, type, nullable: optional }]).slice(1);
  if ('list' in type) {
    const wrapperDef = optional ? maxDef + 1 : maxDef;
    const listPath = [...path, elements[1]!];
    const elementPath = [...listPath, elements[2]!];
    const child = compileNode(type.list, elementPath, 'REQUIRED', wrapperDef + 1, repDepth + 1, leaves);
    const nextRep = repDepth + 1;
    const repeated: Emit = (value, def, rep, allowNull) => {
      if (value === null || value === undefined) {
        if (!allowNull) throw requiredMissing();
        child(undefined, def, rep, true);
        return;
      }
      if (!Array.isArray(value) && !ArrayBuffer.isView(value)) throw new Error(`parquet repeated field list must be an array`);
      const items = value as ArrayLike<unknown>;
      const n = items.length;
      if (n === 0) {
        child(undefined, def, rep, true);
        return;
      }
      child(items[0], def + 1, rep, false);
      for (let i = 1; i < n; i++) child(items[i], def + 1, nextRep, false);
    };
    if (optional) {
      return (value, def, rep) => (value === null || value === undefined ? repeated(undefined, def, rep, true) : repeated(value, def + 1, rep, false));
    }
    return (value, def, rep, allowNull) => {
      if (value === null || value === undefined) {
        if (!allowNull) throw requiredMissing();
        repeated(undefined, def, rep, true);
      } else {
        repeated(value, def, rep, false);
      }
    };
  }
  const structDef = optional ? maxDef + 1 : maxDef;
  const names = type.struct.map((f) => f.name);
  // Each child's path: this node, then the child's own first element.
  let k = 1;
  const children = type.struct.map((f) => {
    const childPath = [...path, elements[k]!];
    k += countElements(f.type);
    return compileNode(f.type, childPath, f.nullable ? 'OPTIONAL' : 'REQUIRED', structDef, repDepth, leaves);
  });
  const m = children.length;
  const nullChildren = (def: number, rep: number): void => {
    for (let c = 0; c < m; c++) children[c]!(undefined, def, rep, true);
  };
  const object = (value: unknown): Record<string, unknown> => {
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`parquet expected struct, got ${String(value)}`);
    return value as Record<string, unknown>;
  };
  if (optional) {
    return (value, def, rep) => {
      if (value === null || value === undefined) return nullChildren(def, rep);
      const obj = object(value);
      for (let c = 0; c < m; c++) {
        const v = obj[names[c]!];
        children[c]!(v, def + 1, rep, v === null || v === undefined);
      }
    };
  }
  return (value, def, rep, allowNull) => {
    if (value === null || value === undefined) {
      if (!allowNull) throw requiredMissing();
      return nullChildren(def, rep);
    }
    const obj = object(value);
    for (let c = 0; c < m; c++) children[c]!(obj[names[c]!], def, rep, false);
  };
}

function countElements(type: FieldType): number {
  if (typeof type === 'string') return 1;
  if ('list' in type) return 2 + countElements(type.list);
  return 1 + type.struct.reduce((s, f) => s + countElements(f.type), 0);
}

/** A reusable byte buffer (a Buffer, for its native UTF-8 writing). */
class Bytes {
  buf: Buffer = Buffer.allocUnsafe(1 << 16);
  pos = 0;
  ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + extra));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  view(from = 0, to = this.pos): Uint8Array {
    return this.buf.subarray(from, to);
  }
}

/** Scratch buffers shared by all columns of one file. */
interface Scratch {
  body: Bytes;
  page: Bytes;
  levels: Bytes;
  snappy: Bytes;
  offsets: Int32Array;
  /** Each value's dictionary index, -1 for null. */
  indexes: Int32Array;
  /** One page's non-null dictionary indexes. */
  gather: Int32Array;
}

type Compress = (input: Uint8Array) => Uint8Array;

function fastGroupWriter(
  pq: ParquetWriter,
  writer: ByteWriter,
  fields: readonly FieldSpec[],
  schema: SchemaElement[],
  codec: CompressionCodec,
): (records: readonly unknown[]) => void {
  const leaves: Leaf[] = [];
  const root = schema[0]!;
  let at = 1;
  const emits = fields.map((f) => {
    const emit = compileNode(f.type, [root, schema[at]!], f.nullable ? 'OPTIONAL' : 'REQUIRED', 0, 0, leaves);
    at += countElements(f.type);
    return emit;
  });
  const names = fields.map((f) => f.name);
  const scratch: Scratch = {
    body: new Bytes(),
    page: new Bytes(),
    levels: new Bytes(),
    snappy: new Bytes(),
    offsets: new Int32Array(1024),
    indexes: new Int32Array(1024),
    gather: new Int32Array(1024),
  };
  const snappy: Compress = (input) => snappyInto(input, scratch.snappy);
  const compressors = { ...pq.compressors, SNAPPY: snappy };
  const compress: Compress = (compressors as Record<string, Compress | undefined>)[codec] ?? ((input) => input);
  return (records) => {
    for (const leaf of leaves) leaf.n = 0;
    const nf = emits.length;
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as Record<string, unknown>;
      for (let f = 0; f < nf; f++) emits[f]!(r[names[f]!], 0, 0, false);
    }
    const groupStartOffset = writer.offset;
    const columns: ColumnChunk[] = [];
    for (const leaf of leaves) {
      leaf.values.length = leaf.n;
      const result = leaf.isString
        ? writeStringColumn(writer, leaf, codec, compress, scratch)
        : writeColumn({
            writer,
            column: {
              columnName: leaf.columnName,
              element: leaf.element,
              schemaPath: leaf.schemaPath,
              codec,
              compressors,
              stats: true,
              statisticsTruncateLength: undefined,
              pageSize: PAGE_SIZE,
              dictionarySize: undefined,
              columnIndex: false,
              offsetIndex: true,
              encoding: undefined,
              bloomFilter: undefined,
            },
            pageData: {
              values: leaf.values,
              definitionLevels: (leaf.hasDef ? leaf.def.subarray(0, leaf.n) : []) as number[],
              repetitionLevels: (leaf.hasRep ? leaf.rep.subarray(0, leaf.n) : []) as number[],
              maxDefinitionLevel: leaf.maxDef,
            },
          });
      columns.push(result.chunk);
      pq.pendingIndexes.push(result);
    }
    let total_byte_size = 0n;
    for (const { meta_data } of columns) total_byte_size += meta_data?.total_uncompressed_size ?? 0n;
    const rows = BigInt(records.length);
    pq.num_rows += rows;
    const group: RowGroup = { columns, total_byte_size, num_rows: rows, total_compressed_size: BigInt(writer.offset - groupStartOffset) };
    pq.row_groups.push(group);
    // The leaves keep their arrays for the next group; drop the references to records' strings.
    for (const leaf of leaves) leaf.values.length = 0;
  };
}

const bitWidthOf = (max: number): number => Math.ceil(Math.log2(max + 1));

/**
 * Writes one UTF-8 column chunk as hyparquet-writer's `writeColumn` would: statistics,
 * dictionary if it pays (its own decision function), pages cut at the same places, data
 * page v2 with RLE levels, offset index when there are several pages.
 */
function writeStringColumn(
  writer: ByteWriter,
  leaf: Leaf,
  codec: CompressionCodec,
  compress: Compress,
  scratch: Scratch,
): PageIndexes {
  const { values, n, hasDef, hasRep, maxDef, maxRep } = leaf;
  const def = leaf.def;
  const rep = leaf.rep;
  const offsetStart = writer.offset;
  let uncompressedSize = 0;
  const encodings: Encoding[] = [];

  // One pass for what the rest needs: null count, UTF-16 length (hyparquet-writer's
  // size estimate for strings), and room for the PLAIN bytes (at most 3 per unit).
  let nulls = 0;
  let units = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (v === null || v === undefined) nulls++;
    else if (typeof v === 'string') units += v.length;
    else throw new Error(`parquet expected string value, got ${typeof v}`);
  }

  let min: string | undefined;
  let max: string | undefined;
  if (scratch.indexes.length < n) scratch.indexes = new Int32Array(Math.max(n, scratch.indexes.length * 2));
  const indexes = scratch.indexes;
  const dictionary = stringDictionary(values as (string | null | undefined)[], n, n - nulls, units, indexes);
  let dictionary_page_offset: bigint | undefined;
  let encoding: Encoding;
  const body = scratch.body;
  body.pos = 0;
  if (scratch.offsets.length < n + 1) scratch.offsets = new Int32Array(Math.max(n + 1, scratch.offsets.length * 2));
  const off = scratch.offsets;

  if (dictionary) {
    for (const d of dictionary as string[]) {
      if (min === undefined || compareStrings(d, min) < 0) min = d;
      if (max === undefined || compareStrings(d, max) > 0) max = d;
    }
    dictionary_page_offset = BigInt(writer.offset);
    const page = scratch.page;
    page.pos = 0;
    for (const d of dictionary as string[]) writePlainString(page, d);
    const compressed = compress(page.view());
    const headerStart = writer.offset;
    writePageHeader(writer, {
      type: 'DICTIONARY_PAGE',
      uncompressed_page_size: page.pos,
      compressed_page_size: compressed.byteLength,
      dictionary_page_header: { num_values: dictionary.length, encoding: 'PLAIN' },
    });
    const headerSize = writer.offset - headerStart;
    writer.appendBytes(compressed);
    uncompressedSize += headerSize + page.pos;
    encodings.push('PLAIN');
    encoding = 'RLE_DICTIONARY';
    // A value's estimated page size is its 4-byte index.
    for (let i = 0; i < n; i++) {
      off[i] = body.pos;
      if (indexes[i]! >= 0) body.pos += 4;
    }
    off[n] = body.pos;
    body.pos = 0;
  } else {
    encoding = 'PLAIN';
    // Every value's PLAIN bytes (u32 length + UTF-8) end to end: a page is a slice of this.
    let minAscii = false;
    let maxAscii = false;
    body.ensure(4 * (n - nulls) + 3 * units);
    const buf = body.buf as unknown as Utf8Writer;
    let pos = 0;
    for (let i = 0; i < n; i++) {
      off[i] = pos;
      const v = values[i] as string | null | undefined;
      if (v === null || v === undefined) continue;
      const written = buf.utf8Write(v, pos + 4);
      buf[pos] = written & 0xff;
      buf[pos + 1] = (written >>> 8) & 0xff;
      buf[pos + 2] = (written >>> 16) & 0xff;
      buf[pos + 3] = written >>> 24;
      pos += 4 + written;
      // UTF-16 order (`<`) equals UTF-8 byte order unless a surrogate is involved; ASCII has none.
      const ascii = written === v.length;
      if (min === undefined || (ascii && minAscii ? v < min : compareStrings(v, min) < 0)) {
        min = v;
        minAscii = ascii;
      }
      if (max === undefined || (ascii && maxAscii ? v > max : compareStrings(v, max) > 0)) {
        max = v;
        maxAscii = ascii;
      }
    }
    off[n] = body.pos = pos;
  }
  encodings.push(encoding);

  // Page boundaries: hyparquet-writer's getPageBoundaries on the values it writes (byte
  // length of each encoded string, 4 per dictionary index), pages starting only at rows.
  const bounds: number[] = [];
  {
    let start = 0;
    let acc = 0;
    const plain = encoding === 'PLAIN';
    for (let i = 0; i < n; i++) {
      const size = off[i + 1]! - off[i]!;
      const valueSize = plain && size > 0 ? size - 4 : size;
      acc += valueSize;
      if (acc >= PAGE_SIZE && i > start && (!hasRep || rep[i] === 0)) {
        bounds.push(start, i);
        start = i;
        acc = valueSize;
      }
    }
    if (start < n) bounds.push(start, n);
  }

  const pages = bounds.length / 2;
  const offsetIndex: OffsetIndex | undefined = pages > 1 ? { page_locations: [] } : undefined;
  const data_page_offset = BigInt(writer.offset);
  let first_row_index = 0n;
  let prevStart = 0;
  const levels = scratch.levels;
  const repWidth = bitWidthOf(maxRep);
  const defWidth = bitWidthOf(maxDef);
  for (let p = 0; p < pages; p++) {
    const start = bounds[2 * p]!;
    const end = bounds[2 * p + 1]!;
    const pageOffset = writer.offset;

    levels.pos = 0;
    let repLength = 0;
    let defLength = 0;
    if (maxRep) repLength = writeRleBitPackedHybrid(levels, rep, start, end, repWidth);
    if (maxDef) defLength = writeRleBitPackedHybrid(levels, def, start, end, defWidth);
    let numNulls = 0;
    if (hasDef) for (let i = start; i < end; i++) if (def[i]! < maxDef) numNulls++;
    let numRows = end - start;
    if (hasRep) {
      numRows = 0;
      for (let i = start; i < end; i++) if (rep[i] === 0) numRows++;
    }

    let pageBytes: Uint8Array;
    if (dictionary) {
      if (scratch.gather.length < end - start) scratch.gather = new Int32Array(Math.max(end - start, scratch.gather.length * 2));
      const idx = scratch.gather;
      let count = 0;
      let maxValue = 0;
      for (let i = start; i < end; i++) {
        const v = indexes[i]!;
        if (v < 0) continue;
        idx[count++] = v;
        if (v > maxValue) maxValue = v;
      }
      const width = bitWidthOf(maxValue);
      const page = scratch.page;
      page.pos = 0;
      page.ensure(1);
      page.buf[page.pos++] = width;
      writeRleBitPackedHybrid(page, idx, 0, count, width);
      pageBytes = page.view();
    } else {
      pageBytes = body.view(off[start]!, off[end]!);
    }
    const compressed = compress(pageBytes);
    const headerStart = writer.offset;
    writePageHeader(writer, {
      type: 'DATA_PAGE_V2',
      uncompressed_page_size: levels.pos + pageBytes.byteLength,
      compressed_page_size: levels.pos + compressed.byteLength,
      data_page_header_v2: {
        num_values: end - start,
        num_nulls: numNulls,
        num_rows: numRows,
        encoding,
        definition_levels_byte_length: defLength,
        repetition_levels_byte_length: repLength,
        is_compressed: true,
      },
    });
    const headerSize = writer.offset - headerStart;
    writer.appendBytes(levels.view());
    writer.appendBytes(compressed);
    uncompressedSize += headerSize + levels.pos + pageBytes.byteLength;

    if (offsetIndex) {
      if (hasRep) {
        for (let i = prevStart + 1; i <= start; i++) if (rep[i] === 0) first_row_index++;
      } else {
        first_row_index = BigInt(start);
      }
      offsetIndex.page_locations.push({ offset: BigInt(pageOffset), compressed_page_size: writer.offset - pageOffset, first_row_index });
    }
    prevStart = start;
  }

  const statistics: ColumnMetaData['statistics'] = { min_value: min, max_value: max, null_count: BigInt(nulls) };
  const encoding_stats: NonNullable<ColumnMetaData['encoding_stats']> = [];
  if (dictionary_page_offset !== undefined) encoding_stats.push({ page_type: 'DICTIONARY_PAGE', encoding: 'PLAIN', count: 1 });
  encoding_stats.push({ page_type: 'DATA_PAGE_V2', encoding, count: pages });
  return {
    chunk: {
      meta_data: {
        type: 'BYTE_ARRAY',
        encodings,
        path_in_schema: leaf.pathInSchema,
        codec,
        num_values: BigInt(n),
        total_compressed_size: BigInt(writer.offset - offsetStart),
        total_uncompressed_size: BigInt(uncompressedSize),
        data_page_offset,
        dictionary_page_offset,
        statistics,
        encoding_stats,
      },
      file_offset: BigInt(offsetStart),
    },
    offsetIndex,
  };
}

/** Node's Buffer writes UTF-8 natively; `utf8Write` is `write` without its argument parsing. */
type Utf8Writer = Buffer & { utf8Write(s: string, offset: number): number };

/** hyparquet-writer's `sampleRejectionRatio`. */
const SAMPLE_REJECTION_RATIO = 0.9;

/**
 * hyparquet-writer's `useDictionary` for a string column (the same sample, the same
 * sizes: UTF-16 length plus a 4-byte prefix, the same "must halve the PLAIN bytes"
 * rule), filling `indexes` (-1 for null) and returning the dictionary, or null for
 * PLAIN. It stops building as soon as the dictionary can no longer win: its sizes only
 * grow while the PLAIN size (`nonNull`, `units`) is known up front.
 */
function stringDictionary(values: readonly (string | null | undefined)[], n: number, nonNull: number, units: number, indexes: Int32Array): string[] | null {
  const sampleSize = Math.min(n, 1000);
  const sampleSizes = new Map<string | null | undefined, number>();
  let sampleDictionarySize = 0;
  let sampleTotalSize = 0;
  for (let i = 0; i < sampleSize; i++) {
    const value = values[sampleSize === 1 ? 0 : Math.floor((i * (n - 1)) / (sampleSize - 1))];
    let valueSize = sampleSizes.get(value);
    if (valueSize === undefined) {
      valueSize = value === null || value === undefined ? 0 : value.length + 4;
      sampleSizes.set(value, valueSize);
      sampleDictionarySize += valueSize;
    }
    sampleTotalSize += valueSize;
  }
  if (!sampleTotalSize || sampleDictionarySize / sampleTotalSize > SAMPLE_REJECTION_RATIO) return null;

  const plainSize = units + 4 * nonNull;
  const dictionary: string[] = [];
  const valueIndex = new Map<string, number>();
  let dictSize = 0;
  for (let i = 0; i < n; i++) {
    const value = values[i];
    if (value === null || value === undefined) {
      indexes[i] = -1;
      continue;
    }
    let index = valueIndex.get(value);
    if (index === undefined) {
      index = dictionary.length;
      dictionary.push(value);
      valueIndex.set(value, index);
      dictSize += value.length;
      const size = dictSize + 4 * dictionary.length + Math.ceil((nonNull * Math.ceil(Math.log2(dictionary.length))) / 8);
      if (2 * size > plainSize) return null;
    }
    indexes[i] = index;
  }
  return dictionary;
}

/** PLAIN BYTE_ARRAY: u32 little-endian length, then the UTF-8 bytes. Returns the byte length. */
function writePlainString(out: Bytes, value: string): number {
  out.ensure(4 + 3 * value.length);
  const at = out.pos;
  const buf = out.buf;
  const n = (buf as Utf8Writer).utf8Write(value, at + 4);
  buf[at] = n & 0xff;
  buf[at + 1] = (n >>> 8) & 0xff;
  buf[at + 2] = (n >>> 16) & 0xff;
  buf[at + 3] = n >>> 24;
  out.pos = at + 4 + n;
  return n;
}

/**
 * hyparquet-writer's `compareStrings`: UTF-8 byte order (code point order), lone
 * surrogates as U+FFFD. Used for statistics whenever `<` might disagree.
 */
function compareStrings(left: string, right: string): number {
  if (left === right) return 0;
  const length = Math.min(left.length, right.length);
  let i = 0;
  while (i < length && left.charCodeAt(i) === right.charCodeAt(i)) i++;
  if (i > 0) {
    const prev = left.charCodeAt(i - 1);
    if (prev >= 0xd800 && prev <= 0xdbff) i--;
  }
  while (i < left.length && i < right.length) {
    const a = codePointAt(left, i);
    const b = codePointAt(right, i);
    if (a !== b) return a - b;
    i += a > 0xffff ? 2 : 1;
  }
  return left.length - right.length;
}

function codePointAt(str: string, i: number): number {
  const code = str.codePointAt(i) ?? 0xfffd;
  return code >= 0xd800 && code <= 0xdfff ? 0xfffd : code;
}

// ------------------------------------------------------------------ encodings (ports)

function writeVarInt(out: Bytes, value: number): void {
  const buf = out.buf;
  let p = out.pos;
  while ((value & ~0x7f) !== 0) {
    buf[p++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[p++] = value & 0xff;
  out.pos = p;
}

/**
 * hyparquet-writer's `writeRleBitPackedHybrid` over `values[start, end)`, into a flat
 * buffer: runs of 8+ equal values as RLE, everything else bit-packed in groups of 8.
 * Returns the bytes written.
 */
function writeRleBitPackedHybrid(out: Bytes, values: ArrayLike<number>, start: number, end: number, bitWidth: number): number {
  const count = end - start;
  // At worst every group of 8 is its own run or bit-packed group: a 5-byte header plus its bytes.
  out.ensure(((count >> 3) + 2) * (6 + Math.max(bitWidth, 4)));
  const from = out.pos;
  let pendingGroups = 0;
  let bitPackedStart = 0;
  let i = start;
  while (i < end) {
    let run = 1;
    const first = values[i]!;
    while (i + run < end && values[i + run] === first) run++;
    if (run >= 8) {
      if (pendingGroups) {
        writeBitPackedGroups(out, values, bitPackedStart, end, pendingGroups, bitWidth);
        pendingGroups = 0;
      }
      writeVarInt(out, run << 1);
      const width = (bitWidth + 7) >> 3;
      for (let j = 0; j < width; j++) out.buf[out.pos++] = (first >> (j << 3)) & 0xff;
      i += run;
    } else {
      if (pendingGroups === 0) bitPackedStart = i;
      pendingGroups++;
      i += 8;
    }
  }
  if (pendingGroups) writeBitPackedGroups(out, values, bitPackedStart, end, pendingGroups, bitWidth);
  return out.pos - from;
}

function writeBitPackedGroups(out: Bytes, values: ArrayLike<number>, start: number, end: number, groups: number, bitWidth: number): void {
  writeVarInt(out, (groups << 1) | 1);
  if (bitWidth === 0) return;
  const buf = out.buf;
  let p = out.pos;
  const mask = (1 << bitWidth) - 1;
  let buffer = 0;
  let bitsUsed = 0;
  const total = groups * 8;
  for (let k = 0; k < total; k++) {
    const idx = start + k;
    const v = idx < end ? values[idx]! & mask : 0;
    buffer |= v << bitsUsed;
    bitsUsed += bitWidth;
    while (bitsUsed >= 8) {
      buf[p++] = buffer & 0xff;
      buffer >>>= 8;
      bitsUsed -= 8;
    }
  }
  if (bitsUsed > 0) buf[p++] = buffer & 0xff;
  out.pos = p;
}

// Snappy: a port of hyparquet-writer's compressor (itself snappyjs) writing into a flat
// buffer instead of a growing DataView; the output is the same byte for byte.

const MAX_HASH_TABLE_BITS = 14;
const MAX_OFFSET = 0xffff;
const INPUT_MARGIN = 15;
const hashTables: Uint32Array[] = [];

/** Snappy-compresses `input` into a new array: the same bytes as hyparquet-writer's `snappyCompress`. */
export function snappyCompress(input: Uint8Array): Uint8Array {
  return snappyInto(input, new Bytes()).slice();
}

/** Compresses `input` into `out` (reset) and returns a view of the result, valid until the next call. */
function snappyInto(input: Uint8Array, out: Bytes): Uint8Array {
  const n = input.length;
  out.pos = 0;
  out.ensure(32 + n + Math.ceil(n / 6) + 16);
  writeVarInt(out, n);
  snappyBody(out, input);
  return out.view();
}

/** The snappy hash of the 4 bytes at `p` (hyparquet-writer's `hashFunc(load32(...))`, out-of-range bytes included). */
function hash4(a: Uint8Array, p: number, shift: number): number {
  return Math.imul(a[p]! + (a[p + 1]! << 8) + (a[p + 2]! << 16) + (a[p + 3]! << 24), 0x1e35a7bd) >>> shift;
}

function emitLiteral(buf: Uint8Array, op: number, input: Uint8Array, ip: number, len: number): number {
  if (len <= 60) {
    buf[op++] = ((len - 1) << 2) & 0xff;
  } else {
    const value = len - 1;
    const bytes = value < 0x100 ? 1 : value < 0x10000 ? 2 : value < 0x1000000 ? 3 : 4;
    buf[op++] = ((59 + bytes) << 2) & 0xff;
    for (let i = 0; i < bytes; i++) buf[op++] = (value >>> (i * 8)) & 0xff;
  }
  if (len < 32) {
    for (let i = 0; i < len; i++) buf[op + i] = input[ip + i]!;
  } else {
    buf.set(input.subarray(ip, ip + len), op);
  }
  return op + len;
}

function emitCopyLessThan64(buf: Uint8Array, op: number, offset: number, len: number): number {
  if (len < 12 && offset < 2048) {
    buf[op] = (1 + ((len - 4) << 2) + ((offset >>> 8) << 5)) & 0xff;
    buf[op + 1] = offset & 0xff;
    return op + 2;
  }
  buf[op] = (2 + ((len - 1) << 2)) & 0xff;
  buf[op + 1] = offset & 0xff;
  buf[op + 2] = (offset >>> 8) & 0xff;
  return op + 3;
}

function emitCopy(buf: Uint8Array, op: number, offset: number, len: number): number {
  while (len >= 68) {
    op = emitCopyLessThan64(buf, op, offset, 64);
    len -= 64;
  }
  if (len > 64) {
    op = emitCopyLessThan64(buf, op, offset, 60);
    len -= 60;
  }
  return emitCopyLessThan64(buf, op, offset, len);
}

function snappyBody(out: Bytes, input: Uint8Array): void {
  const buf = out.buf;
  let op = out.pos;
  const inputSize = input.length;
  let hashTableBits = 1;
  while (1 << hashTableBits <= inputSize && hashTableBits <= MAX_HASH_TABLE_BITS) hashTableBits++;
  hashTableBits--;
  const shift = 32 - hashTableBits;
  const table = (hashTables[hashTableBits] ??= new Uint32Array(1 << hashTableBits));
  table.fill(0);

  const ipEnd = inputSize;
  let ip = 0;
  let nextEmit = 0;
  if (inputSize >= INPUT_MARGIN) {
    const ipLimit = ipEnd - INPUT_MARGIN;
    ip++;
    let nextHash = hash4(input, ip, shift);
    for (;;) {
      let skip = 32;
      let nextIp = ip;
      let candidate = 0;
      let done = false;
      do {
        ip = nextIp;
        const hash = nextHash;
        nextIp = ip + (skip++ >>> 5);
        if (ip > ipLimit) {
          done = true;
          break;
        }
        nextHash = hash4(input, nextIp, shift);
        candidate = table[hash]!;
        table[hash] = ip;
      } while (
        ip - candidate > MAX_OFFSET ||
        input[ip] !== input[candidate] ||
        input[ip + 1] !== input[candidate + 1] ||
        input[ip + 2] !== input[candidate + 2] ||
        input[ip + 3] !== input[candidate + 3]
      );
      if (done) break;

      op = emitLiteral(buf, op, input, nextEmit, ip - nextEmit);
      do {
        const base = ip;
        let matched = 4;
        while (ip + matched < ipEnd && input[ip + matched] === input[candidate + matched]) matched++;
        ip += matched;
        op = emitCopy(buf, op, base - candidate, matched);
        nextEmit = ip;
        if (ip >= ipLimit) {
          done = true;
          break;
        }
        table[hash4(input, ip - 1, shift)] = ip - 1;
        const curHash = hash4(input, ip, shift);
        candidate = table[curHash]!;
        table[curHash] = ip;
      } while (
        ip - candidate <= MAX_OFFSET &&
        input[ip] === input[candidate] &&
        input[ip + 1] === input[candidate + 1] &&
        input[ip + 2] === input[candidate + 2] &&
        input[ip + 3] === input[candidate + 3]
      );
      if (done) break;
      ip++;
      nextHash = hash4(input, ip, shift);
    }
  }
  if (nextEmit < ipEnd) op = emitLiteral(buf, op, input, nextEmit, ipEnd - nextEmit);
  out.pos = op;
}
