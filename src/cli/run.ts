import path from 'node:path';
import { AbortedError, InvalidOptionError } from '../errors.ts';
import type { BackendName } from '../pipeline/resolve-params.ts';
import { runPipeline } from '../pipeline/run-pipeline.ts';
import { createProgress } from '../stream/progress.ts';
import { silentProgress } from '../stream/progress.ts';
import { formatSummaryTable } from '../stream/summary-table.ts';
import type { ErrorPolicy } from '../stream/stage.ts';
import type { CliIo } from './io.ts';

export interface RunFlags {
  set?: readonly (string | number)[] | string;
  out?: string | number;
  seed?: string | number;
  partition?: string | number;
  backend?: string;
  policy?: string;
  quiet?: boolean;
}

function list(v: RunFlags['set']): string[] {
  if (v === undefined) return [];
  // cac's array type turns an absent flag into [undefined]
  return (Array.isArray(v) ? v : [v]).filter((x) => x !== undefined).map(String);
}

function seedFlag(v: RunFlags['seed']): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n)) throw new InvalidOptionError('--seed', `expected an integer in 0..4294967295, got "${String(v)}"`);
  return n;
}

/** `pipeline run FILE`: maps flags to RunOptions, links SIGINT, prints the summary table. */
export async function runCommand(file: string, flags: RunFlags, io: CliIo): Promise<number> {
  // relative paths on the command line (the file, --out, path parameters) mean this folder
  const cwd = process.cwd();
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    io.err('interrupted: stopping after the current records (Ctrl-C again to quit now); run the same command to resume');
    controller.abort(new AbortedError('interrupted by SIGINT', { fix: 'run the same command again: finished shards are kept and the run resumes' }));
  };
  process.on('SIGINT', onSigint);
  const progress = flags.quiet ? undefined : createProgress(process.stderr, { intervalMs: 5000 });
  try {
    const summary = await runPipeline(String(file), {
      params: list(flags.set),
      out: flags.out === undefined ? undefined : String(flags.out),
      seed: seedFlag(flags.seed),
      partition: flags.partition === undefined ? undefined : String(flags.partition),
      backend: flags.backend as BackendName | undefined,
      policy: flags.policy as ErrorPolicy | undefined,
      cwd,
      signal: controller.signal,
      progress: progress ?? silentProgress,
      log: flags.quiet ? undefined : (m) => io.err(m),
    });
    progress?.close();
    // paths under the working folder read shorter relative; others stay absolute
    const rel = (p: string) => {
      const r = path.relative(cwd, p);
      return r === '' ? '.' : r.startsWith('..') || path.isAbsolute(r) ? p : r;
    };
    for (const flow of summary.flows) {
      io.out(`\nflow "${flow.name}"`);
      io.out(formatSummaryTable(flow.stages));
      if (flow.rejected > 0 && flow.dead_letters) io.out(`${flow.rejected} rejected records -> ${rel(path.join(summary.out, flow.dead_letters))}`);
    }
    const part = summary.partition ? ` (partition ${summary.partition.index}/${summary.partition.count})` : '';
    io.out(`\n${summary.pipeline}${part} done in ${summary.elapsed_s.toFixed(1)} s; outputs in ${rel(summary.out)}/`);
    return 0;
  } finally {
    progress?.close();
    process.off('SIGINT', onSigint);
  }
}
