import { InvalidOptionError } from '../errors.ts';
import { hash32 } from '../stream/random.ts';

/** A deterministic share of the input: partition `index` of `count` (0-based). */
export interface Partition {
  readonly index: number;
  readonly count: number;
}

/** The whole input (no partitioning). */
export const WHOLE: Partition = Object.freeze({ index: 0, count: 1 });

/** Checks a partition value; `option` names it in the error (`--partition`, `options.partition`). */
export function checkPartition(value: unknown, option = 'partition'): Partition {
  if (typeof value === 'string') return parsePartition(value, option);
  if (typeof value !== 'object' || value === null) {
    throw new InvalidOptionError(option, `expected {index, count} or "i/n", got ${JSON.stringify(value)}`);
  }
  const { index, count } = value as { index?: unknown; count?: unknown };
  if (!Number.isInteger(count) || (count as number) < 1) {
    throw new InvalidOptionError(option, `count must be an integer >= 1, got ${String(count)}`);
  }
  if (!Number.isInteger(index) || (index as number) < 0 || (index as number) >= (count as number)) {
    throw new InvalidOptionError(option, `index must be an integer in 0..${(count as number) - 1}, got ${String(index)}`, {
      fix: 'partitions are 0-based: --partition 0/2 and --partition 1/2 cover the input',
    });
  }
  return Object.freeze({ index: index as number, count: count as number });
}

/** Parses `i/n` (0-based, i < n). */
export function parsePartition(text: string, option = '--partition'): Partition {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) {
    throw new InvalidOptionError(option, `expected "i/n" (e.g. 0/4), got "${text}"`, {
      fix: 'write the 0-based partition index, a slash and the partition count: --partition 1/4',
    });
  }
  return checkPartition({ index: Number(m[1]), count: Number(m[2]) }, option);
}

/** `i/n` text of a partition. */
export function formatPartition(p: Partition): string {
  return `${p.index}/${p.count}`;
}

/**
 * Whether the record with this stable key belongs to the partition. The assignment uses
 * hash32 of the key alone (not the run seed), so partitions of runs with different seeds agree.
 */
export function inPartition(key: string, partition: Partition): boolean {
  if (partition.count === 1) return true;
  return hash32(key) % partition.count === partition.index;
}

/** `part-00001-of-00004`: the suffix partition runs add to the files they write. */
export function partitionTag(p: Partition): string {
  return `part-${String(p.index).padStart(5, '0')}-of-${String(p.count).padStart(5, '0')}`;
}
