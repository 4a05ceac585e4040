import { pipeline } from 'node:stream/promises';
import { AbortedError, BadRecordError, FactflowError, InvalidOptionError } from '../errors.ts';
import type { FlowResult, FlowSpec } from '../pipeline/define-pipeline.ts';
import { deadLetters as openDeadLetters } from './dead-letters.ts';
import { originLocation, originOf, type Origin } from './origin.ts';
import { silentProgress, type ProgressSink } from './progress.ts';
import type { ErrorPolicy, InputFingerprint, SinkContext, SourceContext, StageContext, StageCounts } from './stage.ts';

export interface RunFlowOptions {
  /** Run seed, handed to every source, stage and sink. */
  seed: number;
  /** Cancels the run; the flow then rejects with AbortedError (FF_ERR_ABORTED, cause = signal.reason). */
  signal?: AbortSignal;
  partition?: { index: number; count: number };
  /** Pipeline parameters, passed on to the sink (manifest). */
  params?: Readonly<Record<string, unknown>>;
  /** `skip` (default): rejected records go to the dead-letter file. `fail`: the first rejection fails the run. */
  policy?: ErrorPolicy;
  /** JSONL file for rejected records; created (empty) even when nothing is rejected. */
  deadLetterPath: string;
  /** Progress bars: one per source (records read) and one for the sink (rows written). */
  progress?: ProgressSink;
  /** Flow name, prefixed to progress labels. */
  name?: string;
}

/** One row of a flow's counts; `conserves: false` marks stages that regroup or drop on purpose. */
export interface StageRow {
  name: string;
  in: number;
  out: number;
  rejected: number;
  conserves?: false;
}

/**
 * Stages whose output is not one record per kept input record (batch, filter, split) set
 * `conserves: false` on their object; the summary check `in = out + rejected` skips them.
 */
export function conservesRecords(stage: object): boolean {
  return (stage as { conserves?: unknown }).conserves !== false;
}

const PROGRESS_EVERY_MS = 200;

/**
 * Runs source -> stages -> sink through `node:stream/promises` pipeline, counting every
 * boundary, routing rejections to the dead-letter file (or failing, under policy `fail`),
 * and stopping every stage through one AbortController when the caller aborts or a stage fails.
 *
 * Errors: the first real error wins. A FactflowError gets the failing stage stamped
 * (`err.locate({stage})`); any other error is wrapped once in a FactflowError (code `FF_ERR`)
 * naming the stage, with the original as `cause`. Aborts by the caller become AbortedError.
 */
export async function runFlow<R>(spec: FlowSpec<unknown, R>, options: RunFlowOptions): Promise<FlowResult<R>> {
  const policy = checkOptions(spec, options);
  const stages = spec.stages ?? [];
  const partition = options.partition ?? { index: 0, count: 1 };
  const params = options.params ?? {};
  const seed = options.seed;
  if (options.signal?.aborted) throw new AbortedError('the run was aborted before it started', { cause: options.signal.reason });

  const letters = openDeadLetters(options.deadLetterPath);
  const ac = new AbortController();
  const signal = ac.signal;
  let firstError: unknown;
  let abortedByCaller = false;
  const onCallerAbort = (): void => {
    if (firstError === undefined) abortedByCaller = true;
    ac.abort(options.signal!.reason);
  };
  options.signal?.addEventListener('abort', onCallerAbort, { once: true });

  // Records the first real error and aborts everyone else; returns what to throw on.
  const fail = (err: unknown, stage: string): unknown => {
    if (signal.aborted && isAbortLike(err, signal)) return firstError ?? err;
    let e = err;
    if (e instanceof FactflowError) e.locate({ stage });
    else if (!wrapped.has(e as object)) {
      const msg = e instanceof Error ? e.message : String(e);
      e = new FactflowError(`stage failed: ${msg}`, { stage, cause: err });
      wrapped.add(e as object);
    }
    if (firstError === undefined) {
      firstError = e;
      ac.abort(e);
    }
    return e;
  };
  const wrapped = new WeakSet<object>();

  const makeReject = (stage: string, counts: StageCounts) =>
    (record: unknown, reason: string | Error, origin?: Origin): void => {
      const where = origin ?? originOf(record);
      counts.rejected++;
      if (policy === 'fail') {
        if (reason instanceof FactflowError) throw reason.locate({ ...originLocation(where), stage });
        const detail = reason instanceof Error ? reason.message : reason;
        throw new BadRecordError(`record rejected: ${detail}`, {
          ...originLocation(where), stage, cause: reason instanceof Error ? reason : undefined,
          fix: 'fix or remove the record, or run with the error policy "skip" to send such records to the dead-letter file',
        });
      }
      const text = reason instanceof FactflowError ? reason.detail : reason instanceof Error ? reason.message : reason;
      letters.write(stage, record, text, where);
    };

  // Progress: one handle per source and one for the sink, refreshed by a timer (no per-record cost).
  const progress = options.progress ?? silentProgress;
  const label = (n: string): string => (options.name ? `${options.name}: ${n}` : n);
  const sourceCounts: StageCounts = { in: 0, out: 0, rejected: 0 };
  const stageCounts: StageCounts[] = stages.map(() => ({ in: 0, out: 0, rejected: 0 }));
  const sinkCounts: StageCounts = { in: 0, out: 0, rejected: 0 };
  const sourceBar = progress.start(label(spec.source.name), { unit: 'records' });
  const sinkBar = progress.start(label(spec.sink.name), { unit: 'rows' });
  let sourceNote: string | undefined;
  let sinkNote: string | undefined;
  const refresh = (): void => {
    sourceBar.update(sourceCounts.out, sourceNote);
    sinkBar.update(sinkCounts.in - sinkCounts.rejected, sinkNote);
  };
  const timer = options.progress ? setInterval(refresh, PROGRESS_EVERY_MS) : undefined;
  timer?.unref();

  let inputsMemo: Promise<InputFingerprint[]> | undefined;
  const sourceCtx: SourceContext = {
    name: spec.source.name, signal, seed, partition, counts: sourceCounts,
    reject: makeReject(spec.source.name, sourceCounts),
    setTotal: (total) => sourceBar.setTotal(total),
    note: (text) => { sourceNote = text; },
  };
  const stageCtxs: StageContext[] = stages.map((s, i) => ({
    name: s.name, signal, seed, counts: stageCounts[i]!,
    reject: makeReject(s.name, stageCounts[i]!),
    note: (text: string) => { sinkNote = `${s.name}: ${text}`; },
  }));
  const sinkCtx: SinkContext = {
    name: spec.sink.name, signal, seed, partition, params, counts: sinkCounts,
    inputs: () => (inputsMemo ??= spec.source.inputs ? spec.source.inputs() : Promise.resolve([])),
    deadLetters: { path: letters.path, count: () => letters.count() },
    reject: makeReject(spec.sink.name, sinkCounts),
    note: (text) => { sinkNote = text; },
  };

  // Counts records crossing one boundary; the same number is the producer's `out` and the consumer's
  // `in`. A hand-written iterator with one `.then` per record instead of an async generator layer:
  // measured ~4x cheaper per record, which matters for the per-record overhead goal.
  function tap(input: AsyncIterable<unknown>, producer: string, out: StageCounts, next: StageCounts, last: boolean): AsyncIterable<unknown> {
    const it = input[Symbol.asyncIterator]();
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      // The sink has seen its whole input: make every rejection so far visible in the file.
      if (last) letters.flush();
    };
    const onResult = (r: IteratorResult<unknown>): IteratorResult<unknown> => {
      if (r.done) { end(); return r; }
      if (signal.aborted) {
        end();
        it.return?.()?.catch(() => {});
        throw abortError(signal);
      }
      out.out++;
      next.in++;
      return r;
    };
    const onError = (err: unknown): never => { end(); throw fail(err, producer); };
    const iter: AsyncIterableIterator<unknown> = {
      next: () => it.next().then(onResult, onError),
      return: (value?: unknown) => {
        end();
        return it.return ? it.return(value).then((r) => r, onError) : Promise.resolve({ done: true, value });
      },
      [Symbol.asyncIterator]: () => iter,
    };
    return iter;
  }

  const chain: ((input: AsyncIterable<unknown>) => AsyncIterable<unknown>)[] = stages.map((s, i) => {
    const ctx = stageCtxs[i]!;
    const nextCounts = i + 1 < stages.length ? stageCounts[i + 1]! : sinkCounts;
    return (input: AsyncIterable<unknown>) => {
      try {
        return tap((s.run as (x: AsyncIterable<unknown>, c: StageContext) => AsyncIterable<unknown>)(input, ctx), s.name, ctx.counts, nextCounts, i + 1 === stages.length);
      } catch (err) {
        return failing(fail(err, s.name)); // run() threw synchronously or returned no async iterable
      }
    };
  });

  let result!: R;
  const sourceIterable = (): AsyncIterable<unknown> => {
    const next = stages.length ? stageCounts[0]! : sinkCounts;
    try {
      return tap(spec.source.read(sourceCtx), spec.source.name, sourceCounts, next, stages.length === 0);
    } catch (err) {
      return failing(fail(err, spec.source.name)); // read() threw synchronously or returned no async iterable
    }
  };
  const sinkFn = async (input: AsyncIterable<unknown>): Promise<void> => {
    try {
      result = await spec.sink.write(input as AsyncIterable<never>, sinkCtx);
    } catch (err) {
      throw fail(err, spec.sink.name);
    }
  };

  try {
    await (pipeline as unknown as (...args: unknown[]) => Promise<void>)(sourceIterable, ...chain, sinkFn, { signal });
  } catch (err) {
    if (abortedByCaller) throw new AbortedError('the run was aborted', { cause: options.signal!.reason });
    throw firstError ?? fail(err, spec.sink.name);
  } finally {
    options.signal?.removeEventListener('abort', onCallerAbort);
    if (timer) clearInterval(timer);
    refresh();
    sourceBar.stop();
    sinkBar.stop();
    letters.close();
  }
  if (abortedByCaller) throw new AbortedError('the run was aborted', { cause: options.signal!.reason });
  if (firstError !== undefined) throw firstError; // the sink swallowed a stage's error

  sinkCounts.out = sinkCounts.in - sinkCounts.rejected;
  sourceCounts.in = sourceCounts.out + sourceCounts.rejected;
  const rows: StageRow[] = [
    row(spec.source.name, sourceCounts, true),
    ...stages.map((s, i) => row(s.name, stageCounts[i]!, conservesRecords(s))),
    row(spec.sink.name, sinkCounts, true),
  ];
  return {
    result,
    stages: rows,
    rejected: rows.reduce((a, r) => a + r.rejected, 0),
    deadLetterPath: letters.path,
  };
}

/** An async iterable that fails at the first pull (keeps errors inside the pipeline's flow). */
function failing(err: unknown): AsyncIterable<never> {
  return { [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(err) }) };
}

function row(name: string, c: StageCounts, conserves: boolean): StageRow {
  const r: StageRow = { name, in: c.in, out: c.out, rejected: c.rejected };
  if (!conserves) r.conserves = false;
  return r;
}

function checkOptions(spec: FlowSpec<unknown, unknown>, options: RunFlowOptions): ErrorPolicy {
  if (!Number.isInteger(options.seed)) throw new InvalidOptionError('seed', `must be an integer, got ${String(options.seed)}`);
  const policy = options.policy ?? 'skip';
  if (policy !== 'skip' && policy !== 'fail') throw new InvalidOptionError('policy', `must be "skip" or "fail", got ${JSON.stringify(policy)}`);
  if (typeof options.deadLetterPath !== 'string' || options.deadLetterPath === '') {
    throw new InvalidOptionError('deadLetterPath', 'must be a file path', { fix: 'pass e.g. join(out, "dead-letters.jsonl")' });
  }
  const p = options.partition;
  if (p && !(Number.isInteger(p.count) && p.count >= 1 && Number.isInteger(p.index) && p.index >= 0 && p.index < p.count)) {
    throw new InvalidOptionError('partition', `must be {index, count} with 0 <= index < count, got ${JSON.stringify(p)}`);
  }
  const names = new Map<string, string>();
  const slots: [string, { name?: unknown } | undefined][] = [
    ['source', spec.source],
    ...(spec.stages ?? []).map((s, i): [string, { name?: unknown }] => [`stages[${i}]`, s]),
    ['sink', spec.sink],
  ];
  for (const [slot, s] of slots) {
    if (!s || typeof s.name !== 'string' || s.name === '') throw new InvalidOptionError(`${slot}.name`, 'every source, stage and sink needs a non-empty name');
    const prev = names.get(s.name);
    if (prev) throw new InvalidOptionError(`${slot}.name`, `"${s.name}" is already the name of ${prev}`, { fix: 'give each stage a unique `name` option' });
    names.set(s.name, slot);
  }
  return policy;
}

function isAbortLike(err: unknown, signal: AbortSignal): boolean {
  if (err === signal.reason) return true;
  const e = err as { name?: unknown; code?: unknown } | null;
  return !!e && (e.name === 'AbortError' || e.code === 'ABORT_ERR' || e.code === 'FF_ERR_ABORTED');
}

/** The error a tap throws when it notices the run was aborted. */
function abortError(signal: AbortSignal): AbortedError {
  return new AbortedError('the run was aborted', { cause: signal.reason });
}
