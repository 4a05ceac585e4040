import path from 'node:path';
import { InvalidOptionError } from '../errors.ts';
import { runFlow } from '../stream/flow.ts';
import type { ProgressSink } from '../stream/progress.ts';
import type { FlowResult, FlowSpec, ParamSpecs, PipelineConfig, PipelineContext, RunSummary } from './define-pipeline.ts';
import { partitionTag } from './partition.ts';
import type { ResolvedPipeline } from './resolve-params.ts';

/** One finished flow as `summary.json` records it. */
export interface FlowRecord {
  readonly name: string;
  readonly stages: FlowResult<unknown>['stages'];
  readonly rejected: number;
  /** Dead-letter file, relative to the run's `out`. */
  readonly dead_letters: string;
}

export interface RunContextOptions<P extends ParamSpecs> {
  readonly resolved: ResolvedPipeline<P>;
  /** The run's own signal (the runner's AbortController, linked to the caller's). */
  readonly signal: AbortSignal;
  readonly progress: ProgressSink;
  readonly log: (message: string) => void;
  /** Runs or reuses another pipeline; supplied by the runner (it owns `runPipeline`). */
  readonly ensure: (pipeline: string | PipelineConfig<ParamSpecs>, out: string, params?: Record<string, unknown>, options?: { seed?: number }) => Promise<RunSummary>;
}

export interface RunContextHandle<P extends ParamSpecs> {
  readonly ctx: PipelineContext<ResolvedPipeline<P>['params']>;
  /** Flows finished so far, in the order they ran. */
  flows(): readonly FlowRecord[];
}

/**
 * Dead-letter file of a flow: `rejected.jsonl` for the run's first flow, `rejected.<flow>.jsonl`
 * for later ones; partition runs add their tag so partitions can share a folder.
 */
export function deadLetterFileName(flowName: string, first: boolean, partition: { index: number; count: number }): string {
  const base = first ? 'rejected' : `rejected.${flowName}`;
  return partition.count > 1 ? `${base}.${partitionTag(partition)}.jsonl` : `${base}.jsonl`;
}

/** Builds the `PipelineContext` a pipeline's `run` receives. Only the runner calls this. */
export function createRunContext<P extends ParamSpecs>(options: RunContextOptions<P>): RunContextHandle<P> {
  const { resolved, signal, progress, log } = options;
  const flows: FlowRecord[] = [];
  const names = new Set<string>();
  let started = 0;

  const ctx: PipelineContext<ResolvedPipeline<P>['params']> = {
    params: resolved.params,
    out: resolved.out,
    seed: resolved.seed,
    signal,
    partition: resolved.partition,
    backend: resolved.backend,
    progress,
    log,
    async flow<R>(spec: FlowSpec<unknown, R>, flowOptions: { name?: string; deadLetterFile?: string } = {}): Promise<FlowResult<R>> {
      const first = started === 0;
      started++;
      const name = flowOptions.name ?? (first ? 'flow' : `flow-${started}`);
      if (typeof name !== 'string' || name === '' || /[\\/]/.test(name)) {
        throw new InvalidOptionError('flow.name', `expected a non-empty name without slashes, got ${JSON.stringify(name)}`);
      }
      if (names.has(name)) {
        throw new InvalidOptionError('flow.name', `a flow named "${name}" already ran in this pipeline run`, { fix: 'give each ctx.flow() call its own { name }' });
      }
      names.add(name);
      const file = flowOptions.deadLetterFile ?? deadLetterFileName(name, first, resolved.partition);
      const deadLetterPath = path.resolve(resolved.out, file);
      const result = await runFlow(spec, {
        name,
        seed: resolved.seed,
        signal,
        partition: resolved.partition,
        params: resolved.params as Readonly<Record<string, unknown>>,
        policy: resolved.policy,
        deadLetterPath,
        progress,
      });
      flows.push({
        name,
        stages: result.stages.map((s) => ({ ...s })),
        rejected: result.rejected,
        dead_letters: path.relative(resolved.out, deadLetterPath),
      });
      return result as FlowResult<R>;
    },
    ensure: (pipeline, out, params, opts) => options.ensure(pipeline, out, params, opts),
  };
  return { ctx, flows: () => flows };
}
