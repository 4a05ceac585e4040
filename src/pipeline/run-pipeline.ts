import { randomUUID } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { AbortedError, BadInputError, FactflowError } from '../errors.ts';
import { silentProgress, type ProgressSink } from '../stream/progress.ts';
import type { ParamSpecs, PipelineConfig, RunSummary } from './define-pipeline.ts';
import { loadPipeline } from './load-pipeline.ts';
import { partitionTag } from './partition.ts';
import { resolvePipeline, type PipelineOptions, type ResolvedPipeline } from './resolve-params.ts';
import { createRunContext } from './run-context.ts';
import { writeJsonAtomic } from '../../schemas/manifest.ts';
import { changedInputs, fingerprintInputs } from './input-fingerprints.ts';
import { lockOut } from './out-lock.ts';

export interface RunOptions extends PipelineOptions {
  /** Cancels the run (the CLI links SIGINT here). */
  signal?: AbortSignal;
  /** Progress bars; default silent. */
  progress?: ProgressSink;
  /** Status lines from the runner and the pipeline; default dropped. */
  log?: (message: string) => void;
}

/** `summary.json` / `run.json`, with the partition tag for partition runs (they may share a folder). */
export function runFileName(base: 'summary' | 'run', partition: { index: number; count: number }): string {
  return partition.count > 1 ? `${base}.${partitionTag(partition)}.json` : `${base}.json`;
}

/** Reads `<out>/summary.json` (or the partition's), or undefined when the run never finished there. */
export async function readRunSummary(out: string, partition = { index: 0, count: 1 }): Promise<RunSummary | undefined> {
  const file = path.join(out, runFileName('summary', partition));
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BadInputError('cannot read the run summary', { file, cause: e });
  }
  try {
    return JSON.parse(text) as RunSummary;
  } catch (e) {
    throw new BadInputError(`the run summary is not valid JSON (${(e as Error).message})`, { file, cause: e, fix: 'delete it to run the pipeline again' });
  }
}

/** Key-sorted JSON, so parameter records compare by content. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/**
 * What differs between a finished run and the one asked for, e.g. `answer_types "all" -> "yes/no"`
 * (at most five named): a rebuild that overwrites an output says why.
 */
function madeDifferently(done: RunSummary, asked: { seed: number; params: Record<string, unknown> }): string {
  const was = (done.params ?? {}) as Record<string, unknown>;
  const keys = [...new Set([...Object.keys(was), ...Object.keys(asked.params)])].sort();
  const diffs = keys.filter((k) => canonical(was[k]) !== canonical(asked.params[k]))
    .map((k) => `${k} ${canonical(was[k]) ?? 'unset'} -> ${canonical(asked.params[k]) ?? 'unset'}`);
  if (done.seed !== asked.seed) diffs.unshift(`seed ${done.seed} -> ${asked.seed}`);
  return diffs.length > 5 ? `${diffs.slice(0, 5).join(', ')}, and ${diffs.length - 5} more` : diffs.join(', ');
}

function abortReason(signal: AbortSignal): AbortedError {
  const reason: unknown = signal.reason;
  if (reason instanceof AbortedError) return reason;
  const why = reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'the run was aborted';
  return new AbortedError(why, { cause: reason, fix: 'run the same command again: finished shards are kept and the run resumes' });
}

/**
 * Runs a pipeline (a config, a definition file path, or a bare name such as `sft-mix`) into
 * `options.out`: writes `run.json` first (what was asked), `summary.json` last (what happened).
 */
export async function runPipeline(pipeline: string | PipelineConfig<ParamSpecs>, options: RunOptions = {}): Promise<RunSummary> {
  const config = typeof pipeline === 'string' ? (await loadPipeline(pipeline, { cwd: options.cwd })).config : pipeline;
  const resolved = resolvePipeline(config, options);
  if (options.signal?.aborted) throw abortReason(options.signal);
  await mkdir(resolved.out, { recursive: true });
  // a second run into the same folder fails at once: it would rename the first one's files away
  const lock = await lockOut(resolved.out, resolved.partition, { wait: false, kind: 'run', log: options.log });
  try {
    return await runResolved(config, resolved, pipeline, options);
  } finally {
    await lock.release();
  }
}

/** The run itself, with `resolved.out` locked by the caller. */
async function runResolved(config: PipelineConfig<ParamSpecs>, resolved: ResolvedPipeline, pipeline: string | PipelineConfig<ParamSpecs>, options: RunOptions): Promise<RunSummary> {
  const began = performance.now();

  // one controller per run, linked to the caller's signal; every flow and stage gets its signal
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const log = options.log ?? (() => {});
  const progress = options.progress ?? silentProgress;

  try {
    await writeJsonAtomic(path.join(resolved.out, runFileName('run', resolved.partition)), {
      pipeline: resolved.name,
      file: typeof pipeline === 'string' ? pipeline : null,
      params: resolved.params,
      seed: resolved.seed,
      partition: resolved.partition,
      policy: resolved.policy,
      backend: resolved.backend,
    });

    const handle = createRunContext({
      resolved,
      signal: controller.signal,
      progress,
      log,
      ensure: (dep, out, params, opts) => ensurePipeline(dep, out, params, resolved, { signal: controller.signal, progress, log }, opts?.seed),
    });

    let result: unknown;
    try {
      result = await resolved.config.run(handle.ctx);
    } catch (e) {
      if (controller.signal.aborted && !(e instanceof FactflowError && e.code !== 'FF_ERR_ABORTED')) throw abortReason(controller.signal);
      throw e;
    }
    if (controller.signal.aborted) throw abortReason(controller.signal);

    const summary: RunSummary = {
      pipeline: resolved.name,
      out: resolved.out,
      seed: resolved.seed,
      params: resolved.params as Readonly<Record<string, unknown>>,
      ...(resolved.partition.count > 1 ? { partition: resolved.partition } : {}),
      flows: handle.flows(),
      elapsed_s: Math.round(performance.now() - began) / 1000,
      ...(result === undefined ? {} : { result }),
      run_id: randomUUID(),
      version: resolved.config.version ?? 1,
      inputs: await fingerprintInputs(resolved.config.params, resolved.params as Readonly<Record<string, unknown>>, resolved.out),
    };
    await writeJsonAtomic(path.join(resolved.out, runFileName('summary', resolved.partition)), summary);
    return summary;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * `ctx.ensure`: runs `pipeline` into `out` (relative to the run's cwd) with the parent's seed (or `seed`),
 * unless `<out>/summary.json` already records the same pipeline, params, seed and pipeline version,
 * made from path inputs that are still what they were then (input-fingerprints.ts).
 */
async function ensurePipeline(
  pipeline: string | PipelineConfig<ParamSpecs>,
  out: string,
  params: Record<string, unknown> | undefined,
  parent: ResolvedPipeline,
  run: { signal: AbortSignal; progress: ProgressSink; log: (message: string) => void },
  seed?: number,
): Promise<RunSummary> {
  const config = typeof pipeline === 'string' ? (await loadPipeline(pipeline, { cwd: parent.cwd })).config : pipeline;
  const child = resolvePipeline(config, { out, params: params ?? {}, seed: seed ?? parent.seed, policy: parent.policy, backend: parent.backend, cwd: parent.cwd });
  await mkdir(child.out, { recursive: true });
  // another run making the same output (two experiments that need one mix): wait, then reuse what it made
  const lock = await lockOut(child.out, child.partition, { wait: true, kind: 'ensure', signal: run.signal, log: run.log });
  try {
    return await ensureLocked(config, child, run);
  } finally {
    await lock.release();
  }
}

async function ensureLocked(
  config: PipelineConfig<ParamSpecs>,
  child: ResolvedPipeline,
  run: { signal: AbortSignal; progress: ProgressSink; log: (message: string) => void },
): Promise<RunSummary> {
  const done = await readRunSummary(child.out);
  let why = !done ? '' : done.pipeline !== child.name ? `was made by the pipeline ${JSON.stringify(done.pipeline)}` : `was made with other params or seed (${madeDifferently(done, child)})`;
  if (done && done.pipeline === child.name && done.seed === child.seed && canonical(done.params) === canonical(child.params)) {
    const version = config.version ?? 1;
    const changed = await changedInputs(done.inputs ?? [], child.out);
    if ((done.version ?? 1) !== version) why = `was made by version ${done.version ?? 1} of the pipeline, this is version ${version}`;
    else if (changed.length > 0) why = `was made from inputs that changed since (${changed.join('; ')})`;
    else {
      run.log(`${child.name}: already made in ${child.out}, reusing it`);
      // the folder may have been copied or moved since: its summary's `out` names where it was made
      return { ...done, out: child.out };
    }
  }
  run.log(done ? `${child.name}: ${child.out} ${why}, running it again` : `${child.name}: making ${child.out}`);
  return runResolved(config, child, config, { signal: run.signal, progress: run.progress, log: run.log });
}
