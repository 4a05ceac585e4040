import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Origin } from './origin.ts';

/** One line of a dead-letter file (JSONL). Unknown location fields are `null`, so every line has the same keys. */
export interface DeadLetter {
  stage: string;
  file: string | null;
  line: number | null;
  byteOffset: number | null;
  index: number | null;
  reason: string;
  record: unknown;
}

export interface DeadLetters {
  readonly path: string;
  /** Lines written so far (including those still buffered). */
  count(): number;
  write(stage: string, record: unknown, reason: string, origin?: Origin): void;
  /** Pushes buffered lines to the file (runFlow closes it when the flow ends, which flushes). */
  flush(): void;
  /** Flushes and closes; later writes are counted but no longer stored. */
  close(): void;
}

// Lines are buffered and written with writeSync: reject() is synchronous, and this keeps memory
// bounded (at most ~64 KiB pending) without needing drain handling.
const FLUSH_AT = 64 * 1024;

/**
 * Opens (truncating) a dead-letter file. The file exists from this call on, even if nothing
 * is ever rejected, so manifests can always point at it.
 */
export function deadLetters(path: string): DeadLetters {
  mkdirSync(dirname(path), { recursive: true });
  let fd: number | undefined = openSync(path, 'w');
  let pending: string[] = [];
  let pendingBytes = 0;
  let n = 0;

  const flush = (): void => {
    if (fd === undefined || pending.length === 0) return;
    writeSync(fd, pending.join(''));
    pending = [];
    pendingBytes = 0;
  };

  return {
    path,
    count: () => n,
    write(stage, record, reason, origin) {
      n++;
      if (fd === undefined) return;
      const letter: DeadLetter = {
        stage,
        file: origin?.file ?? null,
        line: origin?.line ?? null,
        byteOffset: origin?.byteOffset ?? null,
        index: origin?.index ?? null,
        reason,
        record: safeJsonValue(record),
      };
      const line = JSON.stringify(letter) + '\n';
      pending.push(line);
      pendingBytes += line.length;
      if (pendingBytes >= FLUSH_AT) flush();
    },
    flush,
    close() {
      if (fd === undefined) return;
      flush();
      closeSync(fd);
      fd = undefined;
    },
  };
}

/**
 * A JSON-safe copy of any value: bigint -> decimal string, binary -> "<N bytes>" (images would
 * bloat the file), Map -> object, Set -> array, Error -> message, cycles -> "[circular]",
 * functions/symbols -> omitted as JSON would.
 */
export function safeJsonValue(value: unknown): unknown {
  const seen = new WeakSet<object>();
  const walk = (v: unknown): unknown => {
    switch (typeof v) {
      case 'bigint': return v.toString();
      case 'number': return Number.isFinite(v) ? v : String(v);
      case 'function': case 'symbol': case 'undefined': return undefined;
      case 'object': break;
      default: return v;
    }
    if (v === null) return null;
    const o = v as object;
    if (seen.has(o)) return '[circular]';
    if (ArrayBuffer.isView(o)) {
      if (o instanceof Uint8Array) return `<${o.byteLength} bytes>`;
      return Array.from(o as unknown as ArrayLike<number | bigint>, (x) => walk(x));
    }
    if (o instanceof ArrayBuffer) return `<${o.byteLength} bytes>`;
    if (o instanceof Date) return Number.isNaN(o.getTime()) ? null : o.toISOString();
    if (o instanceof Error) return o.message;
    seen.add(o);
    try {
      if (Array.isArray(o)) return o.map((x) => { const y = walk(x); return y === undefined ? null : y; });
      if (o instanceof Map) return Object.fromEntries(Array.from(o, ([k, x]) => [String(k), walk(x)]));
      if (o instanceof Set) return Array.from(o, walk);
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(o)) {
        const y = walk(x);
        if (y !== undefined) out[k] = y;
      }
      return out;
    } finally {
      seen.delete(o);
    }
  };
  return walk(value);
}
