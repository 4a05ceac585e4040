import type { ErrorLocation } from '../errors.ts';

/** Where a record came from, for dead letters and error messages. */
export interface Origin {
  file?: string;
  line?: number;
  byteOffset?: number;
  /** 0-based index of the record within its source. */
  index?: number;
}

// A WeakMap keeps origins off the records themselves, so shards never see them.
const origins = new WeakMap<object, Origin>();

/** Attaches an origin to a record (objects only) and returns the record. */
export function withOrigin<T>(record: T, origin: Origin | undefined): T {
  if (origin && typeof record === 'object' && record !== null) origins.set(record, origin);
  return record;
}

export function originOf(record: unknown): Origin | undefined {
  return typeof record === 'object' && record !== null ? origins.get(record) : undefined;
}

/** Origin as an error location. */
export function originLocation(origin: Origin | undefined): ErrorLocation {
  if (!origin) return {};
  return { file: origin.file, line: origin.line, byteOffset: origin.byteOffset, recordIndex: origin.index };
}
