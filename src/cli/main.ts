import { readFileSync } from 'node:fs';
import { cac } from 'cac';
import { InvalidOptionError } from '../errors.ts';
import { formatError } from './format.ts';
import { processIo, type CliIo } from './io.ts';

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

let epipeHandled = false;
/** A closed pipe on stdout (`pipeline inspect head x | head`) is a normal end, not an error. */
function endQuietlyOnEpipe(): void {
  if (epipeHandled) return;
  epipeHandled = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

/**
 * The `pipeline` command. Each action maps flags to options and lazily imports the API call,
 * so `pipeline list` never loads tfjs. Returns the exit code; only this folder prints.
 */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  endQuietlyOnEpipe();
  const cli = cac('pipeline');

  cli
    .command('run <file>', 'Run a pipeline definition file (or a bundled pipeline name such as sft-mix)')
    .option('--set <key=value>', 'Set a pipeline parameter (repeatable)', { type: [] })
    .option('--out <dir>', 'Output folder (default runs/<pipeline name>)')
    .option('--seed <n>', 'Run seed (default 1)')
    .option('--partition <i/n>', 'Process partition i of n (0-based); merge the parts with `pipeline merge`')
    .option('--backend <name>', 'tfjs backend: auto|webgpu|tensorflow|wasm|cpu (default auto)')
    .option('--policy <policy>', 'Rejected records: skip (dead-letter file, default) or fail')
    .option('--quiet', 'No progress bars or status lines')
    .example('pipeline run pipelines/sft-mix.ts --set max_rounds=3 --out runs/sft')
    .action(async (file: string, flags) => (await import('./run.ts')).runCommand(file, flags, io));

  cli
    .command('list', 'List pipeline definitions in ./pipelines with their parameters')
    .option('--dir <dir>', 'Folder of definition files (default ./pipelines)')
    .option('--json', 'Machine-readable output')
    .action(async (flags) => (await import('./list.ts')).listCommand(flags, io));

  cli
    .command('merge <out> [...dirs]', 'Merge partition runs (--partition i/n) into one shard set')
    .option('--json', 'Machine-readable output')
    .action(async (out: string, dirs: string[], flags) => (await import('./merge.ts')).mergeCommand(String(out), dirs.map(String), flags, io));

  cli
    .command('inspect [...args]', 'Look at shards: inspect PATH | inspect schema|head|validate|render PATH')
    .option('-n <n>', 'Records to show or render (head, render; default 3)')
    .option('--sort <key>', 'head: order by "reward" (rollouts: highest and lowest side by side)')
    .option('--schema <name>', 'Schema for files that do not name one (.jsonl)')
    .option('--images <dir>', 'render: image root the records\' image paths are relative to')
    .option('--to <dir>', 'render: folder to write PNGs into')
    .option('--with-boxes', 'render: count only records whose text has boxes')
    .option('--json', 'Machine-readable output')
    .example('pipeline inspect runs/sft-mix')
    .example('pipeline inspect head runs/sft-mix -n 2')
    .example('pipeline inspect render runs/sft-mix -n 4 --images data/images --to /tmp/boxes')
    .action(async (args: string[], flags) => (await import('./inspect.ts')).inspectCommand(args.map(String), flags, io));

  cli.help();
  cli.version(version());

  try {
    cli.parse(['node', 'pipeline', ...argv], { run: false });
    if (cli.options.help || cli.options.version) return 0;
    if (!cli.matchedCommand) {
      if (cli.args.length === 0) {
        cli.outputHelp();
        return 1;
      }
      throw new InvalidOptionError('command', `unknown command "${String(cli.args[0])}"`, { fix: 'run `pipeline --help` for the commands: run, list, merge, inspect' });
    }
    const code: unknown = await cli.runMatchedCommand();
    return typeof code === 'number' ? code : 0;
  } catch (e) {
    const err = (e as Error)?.name === 'CACError'
      ? new InvalidOptionError('command line', (e as Error).message, { fix: `see \`pipeline ${cli.matchedCommandName ?? ''} --help\``.replace('  ', ' ') })
      : e;
    io.err(formatError(err, io.debug));
    return 1;
  }
}
