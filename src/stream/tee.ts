import { AbortedError, InvalidOptionError } from '../errors.ts';
import { channel } from './channel.ts';
import { abortedBy, linkedController } from './map.ts';
import type { Stage } from './stage.ts';

export interface TeeOptions {
  /** Records buffered for the side consumer before the main path waits (default 16). */
  highWaterMark?: number;
  name?: string;
}

/** The side consumer: reads its own copy of the stream (e.g. a shard writer). */
export type TeeConsumer<T> = (input: AsyncIterable<T>, signal: AbortSignal) => Promise<unknown>;

/**
 * Passes records through and also feeds `consume` through a bounded channel. The side's
 * backpressure slows the main path (the main path is at most `highWaterMark` records ahead
 * of it), its error fails this stage, and the stage ends only after the side has finished.
 * If the side returns without reading everything, the rest is simply not sent to it.
 */
export function tee<T>(consume: TeeConsumer<T>, options: TeeOptions = {}): Stage<T, T> {
  if (typeof consume !== 'function') throw new InvalidOptionError('consume', 'tee needs a consumer function');
  const highWaterMark = options.highWaterMark ?? 16;
  if (!Number.isInteger(highWaterMark) || highWaterMark < 1) {
    throw new InvalidOptionError('highWaterMark', `must be a positive integer, got ${String(highWaterMark)}`);
  }
  return {
    name: options.name ?? 'tee',
    async *run(input, ctx) {
      const local = linkedController(ctx.signal);
      const ch = channel<T>({ highWaterMark });
      let onFailure!: (e: unknown) => void;
      const failure = new Promise<never>((_, reject) => { onFailure = reject; });
      failure.catch(() => {});
      const side = (async () => consume(ch, local.signal))().then(
        () => { ch.cancel(); }, // side done early or at the end: stop feeding it
        (err: unknown) => { ch.cancel(err); onFailure(err); throw err; },
      );
      side.catch(() => {});
      const it = input[Symbol.asyncIterator]();
      let inputDone = false;
      let finished = false;
      try {
        for (;;) {
          const n = await Promise.race([it.next(), failure]);
          if (n.done) { inputDone = true; break; }
          if (ctx.signal.aborted) throw abortedBy(ctx.signal);
          await ch.push(n.value);
          yield n.value;
        }
        ch.close();
        await side;
        finished = true;
      } finally {
        if (!finished) {
          // Stopped early (error upstream/downstream or abort): stop the side and wait for it to unwind.
          ch.error(new AbortedError('tee stopped before its input ended', { stage: ctx.name }));
          local.abort(new AbortedError('tee stopped before its input ended', { stage: ctx.name }));
          await side.catch(() => {});
        }
        local.dispose();
        if (!inputDone) it.return?.()?.catch(() => {});
      }
    },
  };
}
