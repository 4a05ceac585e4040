import type { Origin } from './origin.ts';

/** What happens to a record a stage rejects. */
export type ErrorPolicy = 'skip' | 'fail';

/** Per-stage counters; the runner counts `in`/`out`, `reject()` counts `rejected`. */
export interface StageCounts {
  in: number;
  out: number;
  rejected: number;
}

/** Handed to every stage by the runner. */
export interface StageContext {
  /** The stage's name (unique within a flow). */
  readonly name: string;
  /** Aborts when the run is cancelled or another stage failed. */
  readonly signal: AbortSignal;
  readonly counts: StageCounts;
  /** Run seed; stages derive their own streams from it (see `src/stream/random.ts`). */
  readonly seed: number;
  /**
   * Rejects a record: with policy `skip` it goes to the dead-letter file with `reason`
   * and the record's origin; with policy `fail` this throws a BadRecordError.
   */
  reject(record: unknown, reason: string | Error, origin?: Origin): void;
  /** Free-form progress note (e.g. "epoch 2"), shown beside the stage's bar. */
  note(text: string): void;
}

/**
 * A transform: async iterable in, async iterable out. Plain named objects
 * (as Vite plugins), built by factories that check options eagerly.
 */
export interface Stage<I, O> {
  readonly name: string;
  run(input: AsyncIterable<I>, ctx: StageContext): AsyncIterable<O>;
}

/** A fingerprint of one input file, written into manifests. */
export interface InputFingerprint {
  path: string;
  bytes: number;
  sha256: string;
}

/** Options every source receives. */
export interface SourceContext {
  readonly name: string;
  readonly signal: AbortSignal;
  readonly seed: number;
  /** Deterministic share of the input to process (`--partition i/n`); default {index:0,count:1}. */
  readonly partition: { index: number; count: number };
  readonly counts: StageCounts;
  reject(record: unknown, reason: string | Error, origin?: Origin): void;
  /** Declares the expected total number of records, for progress ETA. */
  setTotal(total: number): void;
  note(text: string): void;
}

export interface Source<T> {
  readonly name: string;
  /** Input files, fingerprinted into the manifest. May be empty (generated data). */
  inputs?(): Promise<InputFingerprint[]>;
  read(ctx: SourceContext): AsyncIterable<T>;
}

/** What sinks get besides the records: the run's identity, for manifests and resume. */
export interface SinkContext {
  readonly name: string;
  readonly signal: AbortSignal;
  readonly seed: number;
  readonly counts: StageCounts;
  readonly partition: { index: number; count: number };
  /** The pipeline parameters of this run (go into the manifest). */
  readonly params: Readonly<Record<string, unknown>>;
  /** Fingerprints of all sources' inputs (go into the manifest). */
  inputs(): Promise<InputFingerprint[]>;
  /** Dead-letter file and its count so far (final when the input iterable ends). */
  readonly deadLetters: { readonly path: string; count(): number };
  reject(record: unknown, reason: string | Error, origin?: Origin): void;
  note(text: string): void;
}

export interface Sink<T, R = unknown> {
  readonly name: string;
  write(input: AsyncIterable<T>, ctx: SinkContext): Promise<R>;
}
