import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { withOrigin } from '../../src/stream/origin.ts';
import type { Sink, SinkContext, Source, SourceContext, Stage, StageContext } from '../../src/stream/stage.ts';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A fresh temp folder, removed when the test ends. */
export async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'factflow-stream-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A source over an array; objects get an origin {file, line = i + 1, index = i}. */
export function arraySource<T>(name: string, items: readonly T[], file = `${name}.jsonl`): Source<T> & { reads: number; produced: number } {
  const src = {
    name,
    reads: 0,
    produced: 0,
    async *read(ctx: SourceContext): AsyncIterable<T> {
      src.reads++;
      ctx.setTotal(items.length);
      for (let i = 0; i < items.length; i++) {
        src.produced++;
        yield withOrigin(items[i]!, { file, line: i + 1, index: i });
      }
    },
  };
  return src;
}

export function collectSink<T>(name = 'collect'): Sink<T, T[]> & { ctx?: SinkContext } {
  const sink: Sink<T, T[]> & { ctx?: SinkContext } = {
    name,
    async write(input, ctx) {
      sink.ctx = ctx;
      const out: T[] = [];
      for await (const x of input) out.push(x);
      return out;
    },
  };
  return sink;
}

export async function* fromArray<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const x of items) yield x;
}

/** A StageContext for running one stage by hand; rejects are collected. */
export function testContext(seed = 1): StageContext & { rejected: { record: unknown; reason: string }[] } {
  const rejected: { record: unknown; reason: string }[] = [];
  return {
    name: 'test', signal: new AbortController().signal, seed,
    counts: { in: 0, out: 0, rejected: 0 },
    rejected,
    reject(record, reason) { rejected.push({ record, reason: reason instanceof Error ? reason.message : reason }); this.counts.rejected++; },
    note() {},
  };
}

export async function runStage<I, O>(stage: Stage<I, O>, items: readonly I[], ctx = testContext()): Promise<O[]> {
  const out: O[] = [];
  for await (const x of stage.run(fromArray(items), ctx)) out.push(x);
  return out;
}
