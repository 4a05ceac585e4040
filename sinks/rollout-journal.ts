/**
 * The durable log of every rollout a PPO run made, fed by a `tee` beside the trainer: one JSON
 * line per rollout (schema fields plus `response_ids`), appended and fsynced one step at a time.
 * After training the pipeline turns it into rollout shards (`<out>/rollouts/`).
 *
 * Why a journal and not a shard writer in the tee: a resumed run restarts at its last checkpoint
 * and cannot sample the earlier steps again, so the rollouts of those steps must already be on
 * disk when the checkpoint is taken. The trainer awaits `flushedBefore(step)` before each
 * checkpoint, and a resumed journal keeps exactly the lines of the steps before the checkpoint
 * (the later ones are sampled again, identically).
 */
import { open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { AbortedError, InvalidOptionError } from '../src/errors.ts';
import type { LivePolicy } from '../src/model/live-policy.ts';
import type { TeeConsumer } from '../src/stream/tee.ts';

export interface JournalRecord {
  policy_version: number;
}

export interface RolloutJournal<T extends JournalRecord = JournalRecord> {
  readonly file: string;
  /** For `tee(journal.consume)`: reads batches (one per step) and appends them. */
  readonly consume: TeeConsumer<readonly T[]>;
  /**
   * Resolves once every rollout of policy_version < step is on disk (or the input has ended);
   * rejects if writing failed.
   */
  flushedBefore(step: number, signal?: AbortSignal): Promise<void>;
}

export interface RolloutJournalOptions {
  /** JSON Lines file (created with its folder). */
  file: string;
  /** The trainer's live policy: tells the step a resumed run starts from. */
  policy: Pick<LivePolicy, 'started'>;
}

/** Keeps the lines of versions < `step` (and drops a torn last line); removes the file at 0. */
async function cutJournal(file: string, step: number): Promise<void> {
  if (step === 0) { await rm(file, { force: true }); return; }
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch { return; }
  const keep: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const r = JSON.parse(line) as { policy_version?: unknown };
      if (typeof r.policy_version === 'number' && r.policy_version < step) keep.push(line);
    } catch { /* torn line from a kill */ }
  }
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, keep.map((l) => l + '\n').join(''));
  await rename(tmp, file);
}

export function rolloutJournal<T extends JournalRecord>(options: RolloutJournalOptions): RolloutJournal<T> {
  if (typeof options?.file !== 'string' || options.file === '') throw new InvalidOptionError('journal.file', 'must be a file path');
  if (typeof options.policy?.started !== 'function') throw new InvalidOptionError('journal.policy', 'must be the live policy the trainer updates');
  const { file } = options;
  /** Versions below this are on disk. */
  let flushed = 0;
  /** Set when the input has ended (everything that came is on disk) or the journal failed. */
  let ended = false;
  let failed: Error | undefined;
  let waiters: (() => void)[] = [];
  const notify = (): void => {
    const list = waiters;
    waiters = [];
    for (const w of list) w();
  };

  return {
    file,
    async consume(input, signal) {
      try {
        const start = await options.policy.started(signal);
        await mkdir(path.dirname(path.resolve(file)), { recursive: true });
        await cutJournal(file, start);
        flushed = start;
        notify();
        const fh = await open(file, 'a');
        try {
          for await (const batch of input) {
            if (batch.length === 0) continue;
            await fh.write(batch.map((r) => JSON.stringify(r)).join('\n') + '\n');
            await fh.sync();
            for (const r of batch) if (r.policy_version + 1 > flushed) flushed = r.policy_version + 1;
            notify();
          }
        } finally {
          await fh.close();
        }
      } catch (e) {
        failed = e instanceof Error ? e : new Error(String(e));
        throw e;
      } finally {
        ended = true;
        notify();
      }
    },
    async flushedBefore(step, signal) {
      while (flushed < step) {
        if (failed) throw failed;
        // the input ended: a step without a line here had every rollout dropped before the tee
        if (ended) return;
        if (signal?.aborted) throw new AbortedError('stopped while waiting for the rollout journal', { cause: signal.reason });
        await new Promise<void>((resolve, reject) => {
          const onAbort = (): void => reject(new AbortedError('stopped while waiting for the rollout journal', { cause: signal!.reason }));
          signal?.addEventListener('abort', onAbort, { once: true });
          waiters.push(() => { signal?.removeEventListener('abort', onAbort); resolve(); });
        });
      }
    },
  };
}
