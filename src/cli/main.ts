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

/** The options of a cac command, as far as re-reading their values needs. */
interface CacOption {
  readonly name: string;
  readonly rawName: string;
  /** true for `--x <v>`, false for `--x [v]`, undefined for a boolean flag. */
  readonly required?: boolean;
  readonly config: { readonly type?: unknown };
}

/**
 * The text typed after each value-taking long option, in order: cac's parser (mri) turns values
 * that look like numbers into numbers (`--out 007` -> 7, `--set 1e3` -> 1000) and a `--set`
 * with no value into `true`, so those values are re-read from argv as written. A value-less
 * occurrence (end of argv, or the next word is a flag, as mri decides) reads as undefined.
 */
export function optionTexts(argv: readonly string[], option: string): (string | undefined)[] {
  const out: (string | undefined)[] = [];
  const end = argv.indexOf('--');
  const words = end < 0 ? argv : argv.slice(0, end);
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === `--${option}`) {
      const next = words[i + 1];
      if (next === undefined || next.startsWith('-')) out.push(undefined);
      else { out.push(next); i++; }
    } else if (w.startsWith(`--${option}=`)) out.push(w.slice(option.length + 3));
  }
  return out;
}

/** Puts the typed text of each value-taking option of `command` into `parsed` (cac's options object). */
function restoreOptionTexts(argv: readonly string[], options: readonly CacOption[], parsed: Record<string, unknown>): void {
  for (const option of options) {
    if (option.required === undefined) continue; // a boolean flag
    const long = /--([A-Za-z0-9][\w-]*)/.exec(option.rawName)?.[1];
    if (!long) continue;
    const texts = optionTexts(argv, long);
    const repeatable = Array.isArray(option.config.type);
    if (texts.length === 0) {
      // cac's array type turns an absent flag into [undefined]
      if (repeatable) parsed[option.name] = [];
      continue;
    }
    if (option.required && texts.includes(undefined)) {
      const shape = /<[^>]*>/.exec(option.rawName)?.[0] ?? '<value>';
      throw new InvalidOptionError(`--${long}`, 'is given without a value', { fix: `write --${long} ${shape}${repeatable ? ' (once per value)' : ''}` });
    }
    parsed[option.name] = repeatable ? texts : texts[texts.length - 1];
  }
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
    .option('--set <key=value>', 'Set a pipeline parameter (repeatable); relative paths in path parameters are taken from the current folder', { type: [] })
    .option('--out <dir>', 'Output folder, relative to the current folder (default runs/<pipeline name>)')
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
    restoreOptionTexts(argv, cli.matchedCommand.options as unknown as CacOption[], cli.options);
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
