import { hostname } from 'node:os';
import { open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError, BadInputError, InvalidOptionError } from '../errors.ts';
import { partitionTag, type Partition } from './partition.ts';

/**
 * One writer per output folder (per partition: partition runs share a folder by design).
 * Two runs writing one folder rename each other's half-written files away; two experiments
 * started side by side that both `ensure` the same mix did exactly that. The lock is a file made
 * with O_EXCL holding the writer's pid and host; a lock whose process is gone (same host) is
 * stale and taken over, so a crash never leaves a folder locked.
 */
export interface OutLock {
  readonly file: string;
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  host: string;
  since: string;
}

export function lockFileName(partition: Partition): string {
  return partition.count > 1 ? `.run.${partitionTag(partition)}.lock` : '.run.lock';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readHolder(file: string): Promise<Holder | undefined> {
  try {
    const h = JSON.parse(await readFile(file, 'utf8')) as Partial<Holder>;
    return typeof h.pid === 'number' && typeof h.host === 'string' ? { pid: h.pid, host: h.host, since: String(h.since ?? '?') } : undefined;
  } catch {
    // gone since, or its writer has not written it yet
    return undefined;
  }
}

async function tryCreate(file: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(file, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new BadInputError(`cannot create the lock file (${(e as Error).message})`, { file, cause: e });
  }
  try {
    await handle.writeFile(JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() } satisfies Holder));
  } finally {
    await handle.close();
  }
  return true;
}

/** Locks this process holds, by file: a top-level run's or an ensure's. */
const held = new Map<string, 'run' | 'ensure'>();

export interface LockOptions {
  /** Wait for a live holder (ensure: the other run is making what we need) or fail at once (a top-level run). */
  wait: boolean;
  /** What takes it, to tell an ensure into its own run's folder (a deadlock) from two ensures of one output. */
  kind: 'run' | 'ensure';
  signal?: AbortSignal;
  log?: (message: string) => void;
  pollMs?: number;
}

/** Takes `<out>/.run.lock` (the folder must exist). */
export async function lockOut(out: string, partition: Partition, options: LockOptions): Promise<OutLock> {
  const file = path.join(out, lockFileName(partition));
  let waited = false;
  for (;;) {
    if (options.signal?.aborted) throw new AbortedError(`stopped while waiting for the lock on ${out}`, { cause: options.signal.reason });
    if (await tryCreate(file)) {
      held.set(file, options.kind);
      return {
        file,
        release: async () => {
          held.delete(file);
          await unlink(file).catch(() => {});
        },
      };
    }
    if (held.get(file) === 'run') {
      throw new InvalidOptionError('out', `${out} is this run's own output folder, and the run also needs another pipeline made there`, {
        fix: 'choose an --out of its own for the run',
      });
    }
    const holder = await readHolder(file);
    if (holder && holder.host === hostname() && !alive(holder.pid)) {
      options.log?.(`${out}: the lock of process ${holder.pid} (since ${holder.since}) is stale, taking it over`);
      await unlink(file).catch(() => {});
      continue;
    }
    const who = holder ? `process ${holder.pid} on ${holder.host}, since ${holder.since}` : 'another process';
    if (!options.wait) {
      throw new BadInputError(`another run (${who}) is writing ${out}`, {
        file,
        fix: `wait for it to finish or choose another --out; if no run is writing there, delete ${file}`,
      });
    }
    if (!waited) options.log?.(`${out} is being made by ${who}; waiting for it`);
    waited = true;
    await sleep(options.pollMs ?? 500, undefined, { signal: options.signal }).catch(() => {});
  }
}
