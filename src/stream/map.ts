import { AbortedError, BadRecordError, FactflowError, InvalidOptionError } from '../errors.ts';
import { originLocation, originOf } from './origin.ts';
import type { Stage, StageContext } from './stage.ts';

export interface MapCallOptions {
  /** Aborts when the run is cancelled or fails, or the stage stops early. */
  signal: AbortSignal;
  /** 0-based position of the record in this stage's input. */
  index: number;
}

export type MapFn<I, O> = (record: I, options: MapCallOptions) => O | Promise<O>;

export interface MapOptions {
  /** Calls of `fn` in flight at once (default 1). Results still come out in input order. */
  concurrency?: number;
  name?: string;
}

/** Returned by an internal map function to drop a record without rejecting it (filter, split). */
export const DROP: unique symbol = Symbol('factflow.drop');

/**
 * Ordered parallel map. At most `concurrency` records are taken from upstream and not yet
 * passed downstream (running or finished-but-waiting), so memory stays bounded and a slow
 * consumer stops the pulls.
 *
 * Errors: a BadRecordError thrown by `fn` rejects that record through `ctx.reject` (dead
 * letter under policy `skip`, run failure under `fail`), in input order, and the record is
 * skipped. Any other error fails the run at once (also while earlier records are pending);
 * it gets the record's origin stamped (non-factflow errors are wrapped with `cause`).
 */
export function map<I, O>(fn: MapFn<I, O>, options: MapOptions = {}): Stage<I, O> {
  return mapStage<I, O>(fn, options, 'map');
}

/** @internal map whose function may return DROP (used by filter and split). */
export function mapStage<I, O>(fn: MapFn<I, O | typeof DROP>, options: MapOptions, kind: string): Stage<I, O> {
  if (typeof fn !== 'function') throw new InvalidOptionError('fn', `${kind} needs a function`);
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new InvalidOptionError('concurrency', `must be a positive integer, got ${String(concurrency)}`);
  }
  const name = options.name ?? kind;
  return {
    name,
    run: (input, ctx) => (concurrency === 1 ? serial(fn, input, ctx) : parallel(fn, input, ctx, concurrency)),
  };
}

async function* serial<I, O>(fn: MapFn<I, O | typeof DROP>, input: AsyncIterable<I>, ctx: StageContext): AsyncGenerator<O> {
  const local = linkedController(ctx.signal);
  const signal = local.signal;
  let index = 0;
  try {
    for await (const x of input) {
      if (signal.aborted) throw abortedBy(ctx.signal);
      const i = index++;
      let y: O | typeof DROP;
      try {
        y = await fn(x, { signal, index: i });
      } catch (err) {
        if (err instanceof BadRecordError) { ctx.reject(x, locateRecord(err, x, i)); continue; }
        throw signal.aborted ? err : locateRecord(err, x, i);
      }
      if (y !== DROP) yield y;
    }
  } finally {
    local.dispose();
  }
}

type Outcome<I, O> = { ok: true; value: O | typeof DROP } | { ok: false; record: I; err: BadRecordError };

async function* parallel<I, O>(fn: MapFn<I, O | typeof DROP>, input: AsyncIterable<I>, ctx: StageContext, concurrency: number): AsyncGenerator<O> {
  const local = linkedController(ctx.signal);
  const signal = local.signal;
  const it = input[Symbol.asyncIterator]();
  // Rejects on the first non-record error, so we stop even while waiting on an earlier record.
  let onFailure!: (err: unknown) => void;
  const failure = new Promise<never>((_, reject) => { onFailure = reject; });
  failure.catch(() => {});
  const queue: Promise<Outcome<I, O>>[] = [];
  let index = 0;
  let inputDone = false;

  const start = (x: I, i: number): Promise<Outcome<I, O>> =>
    (async (): Promise<Outcome<I, O>> => ({ ok: true, value: await fn(x, { signal, index: i }) }))().catch((err: unknown) => {
      if (err instanceof BadRecordError) return { ok: false, record: x, err: locateRecord(err, x, i) as BadRecordError };
      const e = signal.aborted ? err : locateRecord(err, x, i);
      onFailure(e);
      throw e;
    });

  try {
    for (;;) {
      while (!inputDone && queue.length < concurrency) {
        const n = await Promise.race([it.next(), failure]);
        if (n.done) { inputDone = true; break; }
        if (signal.aborted) throw abortedBy(ctx.signal);
        const p = start(n.value, index++);
        p.catch(() => {}); // reported through `failure`
        queue.push(p);
      }
      const head = queue.shift();
      if (!head) break;
      const o = await Promise.race([head, failure]);
      if (!o.ok) ctx.reject(o.record, o.err);
      else if (o.value !== DROP) yield o.value;
    }
  } finally {
    local.dispose();
    // Early exit (error or downstream stopped): close upstream without waiting on a pull in progress.
    if (!inputDone) it.return?.()?.catch(() => {});
  }
}

/** What an operator throws when it sees its run aborted (cause: the abort reason). */
export function abortedBy(signal: AbortSignal): AbortedError {
  return new AbortedError('the run was aborted', { cause: signal.reason });
}

/** Stamps where the record came from: its origin, else its position in this stage's input. */
export function locateRecord(err: unknown, record: unknown, index: number): FactflowError {
  const origin = originOf(record);
  const loc = { ...originLocation(origin), recordIndex: origin?.index ?? index };
  if (err instanceof FactflowError) return err.locate(loc);
  const msg = err instanceof Error ? err.message : String(err);
  return new FactflowError(msg, { ...loc, cause: err });
}

/** An AbortController that follows `parent` and can be aborted or detached on its own. */
export function linkedController(parent: AbortSignal): { signal: AbortSignal; abort(reason?: unknown): void; dispose(): void } {
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(parent.reason);
  if (parent.aborted) ac.abort(parent.reason);
  else parent.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ac.signal,
    abort: (reason) => ac.abort(reason),
    dispose: () => {
      parent.removeEventListener('abort', onAbort);
      if (!ac.signal.aborted) ac.abort(new Error('stage finished'));
    },
  };
}
