import type { InputFingerprint } from './input-fingerprints.ts';
import type { Source, Stage, Sink } from '../stream/stage.ts';
import type { ProgressSink } from '../stream/progress.ts';

/** One parameter a pipeline accepts (`--set name=value`). */
export type ParamSpec =
  | { readonly type: 'string'; readonly default: string; readonly description: string }
  | { readonly type: 'path'; readonly default: string; readonly description: string }
  | { readonly type: 'number'; readonly default: number; readonly description: string; readonly min?: number; readonly max?: number; readonly integer?: boolean }
  | { readonly type: 'boolean'; readonly default: boolean; readonly description: string }
  | { readonly type: 'enum'; readonly default: string; readonly values: readonly string[]; readonly description: string };

export type ParamSpecs = Readonly<Record<string, ParamSpec>>;

/** The resolved value type of each parameter (an enum's is the union of its values). */
export type ParamValues<P extends ParamSpecs> = {
  readonly [K in keyof P]: P[K] extends { type: 'number' }
    ? number
    : P[K] extends { type: 'boolean' }
      ? boolean
      : P[K] extends { type: 'enum'; values: readonly (infer V extends string)[] }
        ? V
        : string;
};

/** A linear data flow: one source, stages, one sink. */
export interface FlowSpec<T = unknown, R = unknown> {
  readonly source: Source<unknown>;
  /** Heterogeneous chain; each stage's input type is erased here (checked by the stage itself). */
  readonly stages?: readonly Stage<never, unknown>[];
  readonly sink: Sink<T, R>;
}

export interface FlowResult<R> {
  /** What the sink returned (e.g. the manifest). */
  readonly result: R;
  readonly stages: readonly { name: string; in: number; out: number; rejected: number }[];
  readonly rejected: number;
  readonly deadLetterPath: string;
}

/** Given to a pipeline's `run`. Only the runner creates it. */
export interface PipelineContext<V> {
  readonly params: V;
  /** Absolute output folder of this run. */
  readonly out: string;
  readonly seed: number;
  readonly signal: AbortSignal;
  readonly partition: { readonly index: number; readonly count: number };
  /** tfjs backend asked for on the command line (`auto` by default). */
  readonly backend: string;
  /** Runs one data flow under `out` with counting, dead letters, progress and the error policy. */
  flow<R>(spec: FlowSpec<unknown, R>, options?: { name?: string; deadLetterFile?: string }): Promise<FlowResult<R>>;
  /**
   * Runs another pipeline into `out` unless it already finished there (its `summary.json` exists),
   * so a pipeline can make the artefacts it needs. Runs with this run's seed unless `options.seed`
   * is given (the demo's per-seed repeats). Returns that run's summary.
   */
  ensure(pipeline: string | PipelineConfig<ParamSpecs>, out: string, params?: Record<string, unknown>, options?: { seed?: number }): Promise<RunSummary>;
  /** A progress/status line (the CLI decides how to show it). */
  log(message: string): void;
  /** Progress bars for long work that is not a flow (training steps, generation). */
  readonly progress: ProgressSink;
}

/** What a run returns and writes to `<out>/summary.json`. */
export interface RunSummary {
  readonly pipeline: string;
  readonly out: string;
  readonly seed: number;
  readonly params: Readonly<Record<string, unknown>>;
  /** Present for partition runs (`--partition i/n` with n > 1). */
  readonly partition?: { readonly index: number; readonly count: number };
  /** Each flow's stage counts; `dead_letters` is its dead-letter file relative to `out`. */
  readonly flows: readonly { name: string; stages: FlowResult<unknown>['stages']; rejected: number; dead_letters?: string }[];
  readonly elapsed_s: number;
  /** Whatever the pipeline's `run` returned (metrics, paths). */
  readonly result?: unknown;
  /** A fresh id per finished run: what runs made from this output record (input-fingerprints.ts). */
  readonly run_id?: string;
  /** The pipeline's `version` when it ran (absent: 1). */
  readonly version?: number;
  /** What the path params pointed at (input-fingerprints.ts). */
  readonly inputs?: readonly InputFingerprint[];
}

export interface PipelineConfig<P extends ParamSpecs> {
  readonly name: string;
  /** One line, shown by `pipeline list`. */
  readonly description: string;
  readonly params: P;
  /**
   * Bump when the pipeline's output changes for the same params (a generator's text, a format):
   * `ctx.ensure` then makes outputs of older versions again. Default 1.
   */
  readonly version?: number;
  run(ctx: PipelineContext<ParamValues<P>>): Promise<unknown>;
}

/** Identity function: exists for typing only (as Vite's `defineConfig`). */
export function definePipeline<const P extends ParamSpecs>(config: PipelineConfig<P>): PipelineConfig<P> {
  return config;
}
