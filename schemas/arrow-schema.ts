/**
 * Arrow types derived from FieldSpecs (the FieldSpecs stay the source of truth, as HF
 * `datasets` Features). The builders need explicit `List<Struct<...>>` types, which
 * these give them; `arrowRowToRecord` turns rows read back into plain records.
 */
import {
  Bool,
  Field,
  Float32,
  Float64,
  Int32,
  Int64,
  Int8,
  List,
  makeBuilder,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Utf8,
  Vector,
  type DataType,
} from 'apache-arrow';
import type { FieldSpec, FieldType, RecordSchema } from './field.ts';

/** The Arrow type of one FieldType. List elements are non-nullable, named `item` (Arrow's default). */
export function arrowType(type: FieldType): DataType {
  if (typeof type === 'string') {
    switch (type) {
      case 'string': return new Utf8();
      case 'bool': return new Bool();
      case 'int8': return new Int8();
      case 'int32': return new Int32();
      case 'int64': return new Int64();
      case 'float32': return new Float32();
      case 'float64': return new Float64();
    }
  }
  if ('list' in type) return new List(new Field('item', arrowType(type.list), false));
  return new Struct(type.struct.map(arrowField));
}

export function arrowField(spec: FieldSpec): Field {
  return new Field(spec.name, arrowType(spec.type), spec.nullable ?? false);
}

/** An Arrow schema for the fields, with optional schema-level metadata. */
export function arrowSchemaFor(fields: readonly FieldSpec[], metadata?: ReadonlyMap<string, string> | Record<string, string>): Schema {
  const meta = metadata === undefined ? undefined : metadata instanceof Map ? new Map(metadata) : new Map(Object.entries(metadata));
  return new Schema(fields.map(arrowField), meta);
}

/** The metadata keys factflow files carry (also used in Parquet key-value metadata). */
export const SCHEMA_NAME_KEY = 'factflow.schema';
export const SCHEMA_VERSION_KEY = 'factflow.schema_version';

/** The Arrow schema a factflow file of `schema` uses, metadata included. */
export function arrowSchemaOf(schema: Pick<RecordSchema<unknown>, 'name' | 'version' | 'fields'>): Schema {
  return arrowSchemaFor(schema.fields, { [SCHEMA_NAME_KEY]: schema.name, [SCHEMA_VERSION_KEY]: String(schema.version) });
}

function hasInt64(type: FieldType): boolean {
  if (typeof type === 'string') return type === 'int64';
  if ('list' in type) return hasInt64(type.list);
  return type.struct.some((f) => hasInt64(f.type));
}

// The Int64 builder wants bigint; records may hold safe-integer numbers.
function toBigInts(type: FieldType, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (typeof type === 'string') return type === 'int64' && typeof value === 'number' ? BigInt(value) : value;
  if ('list' in type) return Array.from(value as ArrayLike<unknown>, (v) => toBigInts(type.list, v));
  const rec = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of type.struct) out[f.name] = toBigInts(f.type, rec[f.name]);
  return out;
}

/** One record batch holding `records`, under `arrowSchema` (built from the same fields). */
export function recordsToRecordBatch(fields: readonly FieldSpec[], arrowSchema: Schema, records: readonly unknown[]): RecordBatch {
  const builder = makeBuilder({ type: new Struct(arrowSchema.fields), nullValues: [null, undefined] });
  const rowType: FieldType = { struct: fields };
  const convert = fields.some((f) => hasInt64(f.type));
  for (const r of records) builder.append((convert ? toBigInts(rowType, r) : r) as Parameters<typeof builder.append>[0]);
  const data = builder.finish().flush();
  return new RecordBatch(arrowSchema, data);
}

/** An Arrow table of records, typed and tagged by their record schema. */
export function recordsToArrowTable<T>(schema: RecordSchema<T>, records: readonly T[]): Table {
  const arrowSchema = arrowSchemaOf(schema);
  return new Table([recordsToRecordBatch(schema.fields, arrowSchema, records)]);
}

/**
 * A plain JS value from what Arrow hands back: rows (StructRow) become objects, list
 * Vectors and typed arrays become arrays, nested all the way down.
 */
export function arrowToPlain(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'object') return value;
  if (value instanceof Vector) return Array.from(value.toArray() as ArrayLike<unknown>, arrowToPlain);
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<unknown>, arrowToPlain);
  if (Array.isArray(value)) return value.map(arrowToPlain);
  const withJson = value as { toJSON?: () => Record<string, unknown> };
  const entries = typeof withJson.toJSON === 'function' ? withJson.toJSON() : (value as Record<string, unknown>);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entries)) out[k] = arrowToPlain(v);
  return out;
}
