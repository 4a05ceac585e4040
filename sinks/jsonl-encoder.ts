/**
 * Records -> JSON Lines, one record per line with keys in schema order and float32
 * fields rounded as the columnar formats store them, so every format reads back the
 * same values.
 */
import type { FieldSpec, FieldType } from '../schemas/field.ts';
import type { ShardEncoder, ShardEncoding } from './shard-sink.ts';

export interface JsonlEncoderOptions {
  fields: readonly FieldSpec[];
  schemaName?: string;
  schemaVersion?: number;
}

/** The record as stored: schema fields only, in order; float32 rounded; int64 as numbers. */
export function projectRecord(fields: readonly FieldSpec[], record: unknown): Record<string, unknown> {
  const src = record as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of fields) out[f.name] = projectValue(f.type, src[f.name]);
  return out;
}

function projectValue(type: FieldType, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof type === 'string') {
    if (type === 'float32') return Math.fround(value as number);
    if (type === 'int64' && typeof value === 'bigint') return Number(value);
    return value;
  }
  if ('list' in type) {
    const elem = type.list;
    return Array.from(value as ArrayLike<unknown>, (v) => projectValue(elem, v));
  }
  return projectRecord(type.struct, value);
}

export function jsonlEncoder(options: JsonlEncoderOptions): ShardEncoder {
  const { fields } = options;
  // estimate() computes each line once; add() picks it up instead of stringifying twice.
  const lines = new WeakMap<object, string>();
  const lineOf = (record: unknown): string => {
    const cached = typeof record === 'object' && record !== null ? lines.get(record) : undefined;
    return cached ?? JSON.stringify(projectRecord(fields, record));
  };
  return {
    format: 'jsonl',
    ext: 'jsonl',
    codec: 'uncompressed',
    estimate(record: unknown): number {
      const line = JSON.stringify(projectRecord(fields, record));
      if (typeof record === 'object' && record !== null) lines.set(record, line);
      return Buffer.byteLength(line, 'utf8') + 1;
    },
    open(): ShardEncoding {
      return {
        add(records: readonly unknown[]): Uint8Array {
          let text = '';
          for (const r of records) {
            text += lineOf(r) + '\n';
            if (typeof r === 'object' && r !== null) lines.delete(r);
          }
          return Buffer.from(text, 'utf8');
        },
        finish: () => new Uint8Array(0),
      };
    },
  };
}
