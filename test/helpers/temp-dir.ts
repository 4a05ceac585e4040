import test, { type ExecutionContext } from 'ava';
import { mkdtempSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

// Scratch folders under os.tmpdir() are removed by ava when their test (or file) is done, so test runs do not pile up in /tmp.

const remove = (dir: string): Promise<void> => rm(dir, { recursive: true, force: true });

/** A fresh folder under os.tmpdir(), removed by t.teardown once the test has finished (pass or fail). */
export async function tempDir(t: Pick<ExecutionContext, 'teardown'>, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  t.teardown(() => remove(dir));
  return dir;
}

// ava starts a file's tests one tick after its first test or hook is declared, so no top-level await may
// come between the hooks below and the file's tests (a file that awaits its setup calls removeAfterAll after it).

/** Removes a folder made at module level once all of the file's tests are done (test.after.always). */
export function removeAfterAll(dir: string): void {
  test.after.always(() => remove(dir));
}

/** A fresh folder for a whole test file, made at module level (synchronously) and removed after all its tests. */
export function sharedTempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  removeAfterAll(dir);
  return dir;
}
