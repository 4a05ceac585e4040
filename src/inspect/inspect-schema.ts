import type { FieldSpec, FieldType } from '../../schemas/field.ts';
import { schemaByName } from '../../schemas/registry.ts';
import { listShardFiles, shardFileInfo } from '../../sources/shards.ts';
import { detectSchema, type SchemaId } from './read-records.ts';

export interface SchemaReport {
  readonly schema: SchemaId | null;
  /** The registered field list, when the schema is known to this factflow. */
  readonly fields: readonly FieldSpec[] | null;
  /** The registered version (may differ from the file's). */
  readonly registered_version: number | null;
  /** What the first shard holds. */
  readonly file: string;
  readonly format: string;
  readonly codec: string;
  readonly columns: readonly string[];
  /** Registered fields the file lacks / file columns the schema lacks. */
  readonly missing: readonly string[];
  readonly extra: readonly string[];
}

/** `list<struct<from: string, value: string>>` style text of a field type. */
export function fieldTypeText(type: FieldType): string {
  if (typeof type === 'string') return type;
  if ('list' in type) return `list<${fieldTypeText(type.list)}>`;
  return `struct<${type.struct.map((f) => `${f.name}: ${fieldTypeText(f.type)}${f.nullable ? '?' : ''}`).join(', ')}>`;
}

/** The schema of the records behind `target`, and how the first shard's columns compare with it. */
export async function inspectSchema(target: string, options: { schema?: string } = {}): Promise<SchemaReport> {
  const files = await listShardFiles(target);
  const info = await shardFileInfo(files[0] ?? target);
  const schema = await detectSchema(target, options.schema);
  const registered = schema ? schemaByName(schema.name) : undefined;
  const names = registered?.fields.map((f) => f.name) ?? [];
  return {
    schema,
    fields: registered?.fields ?? null,
    registered_version: registered?.version ?? null,
    file: info.file,
    format: info.format,
    codec: info.codec,
    columns: info.columns,
    missing: registered ? names.filter((n) => !info.columns.includes(n)) : [],
    extra: registered ? info.columns.filter((c) => !names.includes(c)) : [],
  };
}
