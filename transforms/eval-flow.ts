/**
 * How the evaluation functions run their flows: a pipeline passes its `ctx.flow` (counts,
 * dead letters and progress under the run folder); library callers such as `evaluateModel`
 * get `standaloneFlow`, which runs `runFlow` directly with the dead letters in `out`.
 */
import path from 'node:path';
import type { FlowResult, FlowSpec } from '../src/pipeline/define-pipeline.ts';
import { runFlow } from '../src/stream/flow.ts';
import type { ProgressSink } from '../src/stream/progress.ts';

export type FlowRunner = <R>(spec: FlowSpec<unknown, R>, options?: { name?: string }) => Promise<FlowResult<R>>;

export interface StandaloneFlowOptions {
  /** Folder for the dead-letter files (`rejected.<flow>.jsonl`). */
  out: string;
  seed?: number;
  signal?: AbortSignal;
  progress?: ProgressSink;
  /** Recorded in shard manifests. */
  params?: Readonly<Record<string, unknown>>;
}

export function standaloneFlow(options: StandaloneFlowOptions): FlowRunner {
  return (spec, flowOptions = {}) => {
    const name = flowOptions.name ?? 'flow';
    return runFlow(spec, {
      seed: options.seed ?? 1,
      signal: options.signal,
      progress: options.progress,
      params: options.params,
      name,
      deadLetterPath: path.join(options.out, `rejected.${name}.jsonl`),
    });
  };
}
