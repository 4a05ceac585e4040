/**
 * One error base with stable codes (after undici's `lib/core/errors.js`).
 * Context lives in fields; the message says where and how to fix it.
 * Callers branch on `code`, never on message text.
 */
export interface ErrorLocation {
  /** Input file (path or URL) the problem was found in. */
  file?: string;
  /** 1-based line in `file`. */
  line?: number;
  /** 0-based byte offset in `file`, when lines are not meaningful (big one-line JSON). */
  byteOffset?: number;
  /** 0-based index of the record within its source. */
  recordIndex?: number;
  /** Stage that raised or rejected it; stamped by the runner. */
  stage?: string;
}

export interface FactflowErrorOptions extends ErrorLocation {
  cause?: unknown;
  /** What the user should do about it; appended to the message. */
  fix?: string;
}

export function formatLocation(loc: ErrorLocation): string {
  const parts: string[] = [];
  if (loc.file !== undefined) {
    let where = loc.file;
    if (loc.line !== undefined) where += `:${loc.line}`;
    else if (loc.byteOffset !== undefined) where += ` (byte ${loc.byteOffset})`;
    parts.push(where);
  }
  if (loc.recordIndex !== undefined) parts.push(`record #${loc.recordIndex}`);
  if (loc.stage !== undefined) parts.push(`stage "${loc.stage}"`);
  return parts.join(', ');
}

export class FactflowError extends Error {
  readonly code: string = 'FF_ERR';
  file?: string;
  line?: number;
  byteOffset?: number;
  recordIndex?: number;
  stage?: string;
  readonly detail: string;
  readonly fix?: string;

  constructor(detail: string, options: FactflowErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FactflowError';
    this.detail = detail;
    this.fix = options.fix;
    this.file = options.file;
    this.line = options.line;
    this.byteOffset = options.byteOffset;
    this.recordIndex = options.recordIndex;
    this.stage = options.stage;
    this.message = this.render();
  }

  /** Adds location context later (the runner stamps stage and position); re-renders the message. */
  locate(loc: ErrorLocation): this {
    this.file ??= loc.file;
    this.line ??= loc.line;
    this.byteOffset ??= loc.byteOffset;
    this.recordIndex ??= loc.recordIndex;
    this.stage ??= loc.stage;
    this.message = this.render();
    return this;
  }

  private render(): string {
    const where = formatLocation(this);
    const fix = this.fix ? ` Fix: ${this.fix}` : '';
    return `${where ? where + ': ' : ''}${this.detail}${fix}`;
  }
}

/** A record that does not fit its schema or cannot be converted. */
export class BadRecordError extends FactflowError {
  override readonly code = 'FF_ERR_BAD_RECORD';
  constructor(detail: string, options?: FactflowErrorOptions) { super(detail, options); this.name = 'BadRecordError'; }
}

/** A whole input is unusable: missing, empty, truncated, not the expected format. */
export class BadInputError extends FactflowError {
  override readonly code = 'FF_ERR_BAD_INPUT';
  constructor(detail: string, options?: FactflowErrorOptions) { super(detail, options); this.name = 'BadInputError'; }
}

/** A shard or file whose schema is not the one expected. */
export class SchemaMismatchError extends FactflowError {
  override readonly code = 'FF_ERR_SCHEMA_MISMATCH';
  constructor(detail: string, options?: FactflowErrorOptions) { super(detail, options); this.name = 'SchemaMismatchError'; }
}

/** An option or parameter with a bad value; `option` names its path (e.g. `params.max_rounds`). */
export class InvalidOptionError extends FactflowError {
  override readonly code = 'FF_ERR_INVALID_OPTION';
  readonly option: string;
  constructor(option: string, detail: string, options?: FactflowErrorOptions) {
    super(`option "${option}": ${detail}`, options);
    this.name = 'InvalidOptionError';
    this.option = option;
  }
}

/** The run was aborted (SIGINT, caller's signal, or another stage's failure). */
export class AbortedError extends FactflowError {
  override readonly code = 'FF_ERR_ABORTED';
  constructor(detail = 'the run was aborted', options?: FactflowErrorOptions) { super(detail, options); this.name = 'AbortedError'; }
}

/** HTTP transfer failure (status, checksum, retries exhausted). */
export class HttpError extends FactflowError {
  override readonly code = 'FF_ERR_HTTP';
  readonly status?: number;
  constructor(detail: string, options?: FactflowErrorOptions & { status?: number }) {
    super(detail, options);
    this.name = 'HttpError';
    this.status = options?.status;
  }
}

/** A checkpoint that is missing, incomplete or incompatible. */
export class CheckpointError extends FactflowError {
  override readonly code = 'FF_ERR_CHECKPOINT';
  constructor(detail: string, options?: FactflowErrorOptions) { super(detail, options); this.name = 'CheckpointError'; }
}

/** A backend (webgpu, tensorflow, wasm) that was asked for and cannot be used. */
export class BackendError extends FactflowError {
  override readonly code = 'FF_ERR_BACKEND';
  constructor(detail: string, options?: FactflowErrorOptions) { super(detail, options); this.name = 'BackendError'; }
}

export function isFactflowError(e: unknown): e is FactflowError {
  return e instanceof FactflowError;
}
