/**
 * The source of truth for a record kind's columns (as HF `datasets` Features):
 * Arrow schemas, Parquet schemas and validators derive from these specs.
 */
export type ScalarType = 'string' | 'bool' | 'int8' | 'int32' | 'int64' | 'float32' | 'float64';

export type FieldType =
  | ScalarType
  | { readonly list: FieldType }
  | { readonly struct: readonly FieldSpec[] };

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
  readonly nullable?: boolean;
}

/** A record kind: one TS type, one field list, one validator. */
export interface RecordSchema<T> {
  readonly name: string;
  readonly version: number;
  readonly fields: readonly FieldSpec[];
  /** Returns null when the record is valid, else the first reason it is not (one sentence). */
  validate(record: unknown): string | null;
  /** Type guard built on `validate`. */
  is(record: unknown): record is T;
}
