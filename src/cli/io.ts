/** Where the CLI writes: the only module that touches stdout/stderr (besides progress bars on stderr). */
export interface CliIo {
  /** One line (or block) to stdout. */
  out(text: string): void;
  /** One line (or block) to stderr. */
  err(text: string): void;
  /** Width to lay text out in. */
  readonly columns: number;
  readonly debug: boolean;
}

export function processIo(): CliIo {
  return {
    out: (text) => void process.stdout.write(text.endsWith('\n') ? text : text + '\n'),
    err: (text) => void process.stderr.write(text.endsWith('\n') ? text : text + '\n'),
    columns: Math.min(Math.max(process.stdout.columns ?? 100, 60), 160),
    debug: process.env.FACTFLOW_DEBUG === '1',
  };
}
