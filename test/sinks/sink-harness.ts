/**
 * Test harness for sinks until the flow runner exists: a hand-made SinkContext and
 * deterministic generated records.
 */
import path from 'node:path';
import type { Conversation } from '../../schemas/conversation.ts';
import { BadRecordError } from '../../src/errors.ts';
import type { Origin } from '../../src/stream/origin.ts';
import { Rng } from '../../src/stream/random.ts';
import type { InputFingerprint, SinkContext, SourceContext } from '../../src/stream/stage.ts';

export interface FakeSinkContext extends SinkContext {
  readonly rejected: { record: unknown; reason: string; origin?: Origin }[];
  readonly notes: string[];
}

export function fakeSinkContext(options: {
  dir: string;
  params?: Record<string, unknown>;
  seed?: number;
  partition?: { index: number; count: number };
  inputs?: InputFingerprint[];
  policy?: 'skip' | 'fail';
}): FakeSinkContext {
  const rejected: FakeSinkContext['rejected'] = [];
  const notes: string[] = [];
  const counts = { in: 0, out: 0, rejected: 0 };
  return {
    name: 'shards',
    signal: new AbortController().signal,
    seed: options.seed ?? 7,
    counts,
    partition: options.partition ?? { index: 0, count: 1 },
    params: options.params ?? { max_rounds: 3 },
    inputs: async () => options.inputs ?? [{ path: 'raw/questions.json', bytes: 1234, sha256: 'ab'.repeat(32) }],
    deadLetters: { path: path.join(options.dir, 'rejected.jsonl'), count: () => rejected.length },
    reject(record, reason, origin) {
      const text = typeof reason === 'string' ? reason : reason.message;
      if (options.policy === 'fail') throw new BadRecordError(text);
      counts.rejected++;
      rejected.push({ record, reason: text, origin });
    },
    note(text) {
      notes.push(text);
    },
    rejected,
    notes,
  };
}

const WORDS = ['red', 'circle', 'blue', 'square', 'left', 'of', 'the', 'large', 'small', 'star', 'image', 'shows', 'a', 'two', 'three'];

/** `n` valid, varied conversation records, the same for the same seed. */
export function makeConversations(n: number, seed = 1): Conversation[] {
  const rng = new Rng(seed);
  const sentence = (len: number): string => Array.from({ length: len }, () => rng.pick(WORDS)).join(' ');
  const out: Conversation[] = [];
  for (let i = 0; i < n; i++) {
    const hasImage = rng.next() < 0.8;
    const rounds = rng.range(1, 3);
    const conversations: Conversation['conversations'] = [];
    for (let k = 0; k < rounds; k++) {
      const q = `${sentence(rng.range(3, 12))}?`;
      conversations.push({ from: 'human', value: k === 0 && hasImage ? `<image>\n${q}` : q });
      conversations.push({ from: 'gpt', value: `${sentence(rng.range(1, 30))}.` });
    }
    out.push({
      id: `conv-${String(i).padStart(6, '0')}`,
      image: hasImage ? `coco/train2017/${String(rng.int(1e6)).padStart(12, '0')}.jpg` : null,
      conversations,
      source: rng.pick(['vqav2', 'aokvqa', 'flickr30k', 'llava']),
      meta: rng.next() < 0.5 ? '' : JSON.stringify({ round_count: rounds }),
    });
  }
  return out;
}

export async function* iterate<T>(items: Iterable<T>, options: { failAfter?: number } = {}): AsyncIterable<T> {
  let i = 0;
  for (const item of items) {
    if (options.failAfter !== undefined && i === options.failAfter) throw new Error('simulated crash');
    yield item;
    i++;
  }
}

export function fakeSourceContext(partition = { index: 0, count: 1 }): SourceContext & { total?: number; rejected: unknown[] } {
  const ctx = {
    name: 'shards',
    signal: new AbortController().signal,
    seed: 7,
    partition,
    counts: { in: 0, out: 0, rejected: 0 },
    rejected: [] as unknown[],
    total: undefined as number | undefined,
    reject(record: unknown) {
      ctx.rejected.push(record);
    },
    setTotal(total: number) {
      ctx.total = total;
    },
    note() {},
  };
  return ctx;
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
