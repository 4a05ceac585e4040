import { InvalidOptionError } from '../errors.ts';
import { detectSchema, readRecords, schemaFor, type SchemaId } from './read-records.ts';

export interface ValidationFailure {
  readonly file: string;
  /** 0-based row within `file`. */
  readonly row: number;
  readonly reason: string;
}

export interface ValidationReport {
  readonly schema: SchemaId;
  readonly rows: number;
  readonly invalid: number;
  /** The first `maxFailures` failures, in file order. */
  readonly failures: readonly ValidationFailure[];
  /** E.g. the files' schema version differs from the one this factflow validates. */
  readonly warnings: readonly string[];
}

/** Runs the schema's validator over every row behind `target`. */
export async function validateShards(target: string, options: { schema?: string; maxFailures?: number; signal?: AbortSignal } = {}): Promise<ValidationReport> {
  const maxFailures = options.maxFailures ?? 10;
  if (!Number.isInteger(maxFailures) || maxFailures < 0) throw new InvalidOptionError('maxFailures', `expected a non-negative integer, got ${String(maxFailures)}`);
  const id = await detectSchema(target, options.schema);
  const schema = schemaFor(id, target);
  const warnings: string[] = [];
  if (id!.version !== null && id!.version !== schema.version) {
    warnings.push(`the records are ${schema.name} version ${id!.version}; this factflow validates version ${schema.version}`);
  }
  const failures: ValidationFailure[] = [];
  let rows = 0;
  let invalid = 0;
  const fail = (f: ValidationFailure) => {
    invalid++;
    if (failures.length < maxFailures) failures.push(f);
  };
  for await (const { record, file, row } of readRecords(target, {
    signal: options.signal,
    onUnreadable: (u) => {
      rows++;
      fail({ file: u.file, row: u.row, reason: u.reason });
    },
  })) {
    rows++;
    const reason = schema.validate(record);
    if (reason !== null) fail({ file, row, reason });
  }
  return { schema: id!, rows, invalid, failures, warnings };
}
