/**
 * A trainer's metrics.jsonl when a run resumes: the lines of steps after the checkpoint are
 * cut, so the file that follows reads as one uninterrupted run. One implementation for the SFT,
 * reward and PPO trainers.
 */
import { readFile, rename, rm, writeFile } from 'node:fs/promises';

/**
 * Keeps the lines of steps <= `step` (a torn last line from a kill is dropped); at step 0 the
 * file is removed. Written through a temporary file and a rename, so a crash here leaves the
 * old file or the new one, never half of one. A missing file is left missing.
 */
export async function cutMetrics(file: string, step: number): Promise<void> {
  if (step === 0) {
    await rm(file, { force: true });
    return;
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const keep: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const m = JSON.parse(line) as { step?: unknown };
      if (typeof m.step === 'number' && m.step <= step) keep.push(line);
    } catch { /* torn line from a kill */ }
  }
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, keep.map((l) => l + '\n').join(''));
  await rename(tmp, file);
}
