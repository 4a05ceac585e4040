import { InvalidOptionError } from '../errors.ts';

/**
 * A small bounded async queue between one producer and one reader. `push` waits while
 * `highWaterMark` values are buffered, so a slow reader slows the producer.
 */
export interface Channel<T> extends AsyncIterable<T> {
  /** Resolves once the value is buffered; rejects after `error`, or with the reason given to `cancel`. */
  push(value: T): Promise<void>;
  /** No more values: the reader drains the buffer, then ends. */
  close(): void;
  /** The reader's next read throws `err` (buffered values are discarded). */
  error(err: unknown): void;
  /**
   * The reader is gone: buffered values are discarded; later pushes resolve at once (values
   * dropped), or reject with `reason` when one is given.
   */
  cancel(reason?: unknown): void;
  /** Values buffered now. */
  readonly size: number;
}

export interface ChannelOptions {
  /** Most values buffered before `push` waits (>= 1). */
  highWaterMark: number;
}

export function channel<T>(options: ChannelOptions): Channel<T> {
  const hwm = options.highWaterMark;
  if (!Number.isInteger(hwm) || hwm < 1) throw new InvalidOptionError('highWaterMark', `must be a positive integer, got ${String(hwm)}`);
  let buf: T[] = [];
  let closed = false;
  let failed = false;
  let failure: unknown;
  let gone = false;
  let cancelReason: unknown;
  let hasCancelReason = false;
  let reader: { resolve(r: IteratorResult<T>): void; reject(e: unknown): void } | undefined;
  const pushers: { value: T; resolve(): void; reject(e: unknown): void }[] = [];
  let iterated = false;

  const settleReader = (): void => {
    if (!reader) return;
    const r = reader;
    if (failed) { reader = undefined; r.reject(failure); }
    else if (buf.length > 0) { reader = undefined; r.resolve({ done: false, value: take() }); }
    else if (closed) { reader = undefined; r.resolve({ done: true, value: undefined }); }
  };
  // Takes the head value and lets one waiting pusher into the freed slot.
  const take = (): T => {
    const v = buf.shift()!;
    const p = pushers.shift();
    if (p) { buf.push(p.value); p.resolve(); }
    return v;
  };
  const flushPushers = (): void => {
    for (const p of pushers.splice(0)) {
      if (failed) p.reject(failure);
      else if (hasCancelReason) p.reject(cancelReason);
      else p.resolve();
    }
  };

  return {
    get size() { return buf.length; },
    push(value) {
      if (failed) return Promise.reject(failure);
      if (gone) return hasCancelReason ? Promise.reject(cancelReason) : Promise.resolve();
      if (closed) return Promise.reject(new Error('push after close'));
      if (reader && buf.length === 0) { const r = reader; reader = undefined; r.resolve({ done: false, value }); return Promise.resolve(); }
      if (buf.length < hwm) { buf.push(value); return Promise.resolve(); }
      return new Promise<void>((resolve, reject) => pushers.push({ value, resolve, reject }));
    },
    close() { closed = true; settleReader(); },
    error(err) {
      if (failed) return;
      failed = true;
      failure = err;
      buf = [];
      flushPushers();
      settleReader();
    },
    cancel(reason) {
      if (gone) return;
      gone = true;
      if (arguments.length > 0) { hasCancelReason = true; cancelReason = reason; }
      buf = [];
      flushPushers();
    },
    [Symbol.asyncIterator](): AsyncIterator<T> {
      if (iterated) throw new Error('a channel has one reader');
      iterated = true;
      const self = this as Channel<T>;
      return {
        next() {
          if (failed) return Promise.reject(failure);
          if (buf.length > 0) return Promise.resolve({ done: false, value: take() });
          if (closed || gone) return Promise.resolve({ done: true, value: undefined });
          return new Promise<IteratorResult<T>>((resolve, reject) => { reader = { resolve, reject }; });
        },
        return() {
          self.cancel();
          return Promise.resolve({ done: true, value: undefined });
        },
      };
    },
  };
}
