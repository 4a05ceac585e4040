/** Minimal contexts for unit tests of sources and stages: collects records, rejections and notes. */
import type { Origin } from '../../src/stream/origin.ts';
import { originOf } from '../../src/stream/origin.ts';
import type { Source, SourceContext, Stage, StageContext } from '../../src/stream/stage.ts';

export interface Rejected {
  record: unknown;
  reason: string;
  origin?: Origin;
}

export interface Collected<T> {
  items: T[];
  rejected: Rejected[];
  notes: string[];
}

function rejector(into: Rejected[]) {
  return (record: unknown, reason: string | Error, origin?: Origin): void => {
    into.push({ record, reason: reason instanceof Error ? reason.message : reason, origin: origin ?? originOf(record) });
  };
}

export async function readSource<T>(source: Source<T>, options: { seed?: number; partition?: { index: number; count: number }; signal?: AbortSignal } = {}): Promise<Collected<T>> {
  const rejected: Rejected[] = [];
  const notes: string[] = [];
  const ctx: SourceContext = {
    name: source.name,
    signal: options.signal ?? new AbortController().signal,
    seed: options.seed ?? 1,
    partition: options.partition ?? { index: 0, count: 1 },
    counts: { in: 0, out: 0, rejected: 0 },
    reject: rejector(rejected),
    setTotal() {},
    note: (t) => notes.push(t),
  };
  const items: T[] = [];
  for await (const x of source.read(ctx)) items.push(x);
  return { items, rejected, notes };
}

async function* fromArray<T>(items: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T> {
  yield* items;
}

export async function runStage<I, O>(stage: Stage<I, O>, input: Iterable<I> | AsyncIterable<I>, options: { seed?: number } = {}): Promise<Collected<O>> {
  const rejected: Rejected[] = [];
  const notes: string[] = [];
  const ctx: StageContext = {
    name: stage.name,
    signal: new AbortController().signal,
    counts: { in: 0, out: 0, rejected: 0 },
    seed: options.seed ?? 1,
    reject: rejector(rejected),
    note: (t) => notes.push(t),
  };
  const items: O[] = [];
  for await (const x of stage.run(fromArray(input), ctx)) items.push(x);
  return { items, rejected, notes };
}
