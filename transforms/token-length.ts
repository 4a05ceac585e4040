/**
 * Counts each record's tokens, rejects records over `maxTokens` (the paper trains with a
 * 1280-token limit), and reports the length histogram (`report()` and a final `ctx.note`).
 *
 * With `tokenizer` (a tokenizer.json file or folder, or a loaded tokenizer) tokens are counted
 * with `@huggingface/tokenizers` (src/model/tokenizer.ts), so a real Vicuna/LLaMA tokenizer
 * gives the real counts. Without one, a rough estimate: 4 tokens per 3 whitespace-separated
 * words (LLaMA's ratio on English), rounded up.
 *
 * Counted text: every turn's value, one per line, plus `imageTokens` when the record has an
 * image; for preference records the prompt plus the longer of the two outputs.
 */
import { InvalidOptionError } from '../src/errors.ts';
import { originOf } from '../src/stream/origin.ts';
import type { Stage, StageContext } from '../src/stream/stage.ts';
import { loadTokenizer, type TextTokenizer } from '../src/model/tokenizer.ts';

export interface TokenLengthOptions {
  /** tokenizer.json (or a folder holding one), or a loaded tokenizer; default: word estimate. */
  readonly tokenizer?: string | TextTokenizer;
  /** Records with more tokens are rejected (default 1280). */
  readonly maxTokens?: number;
  /** Tokens an image takes in the model's context (default 0: text only). */
  readonly imageTokens?: number;
  /** Histogram bin upper bounds (default 64, 128, 256, 512, 1024, 1280, 2048). */
  readonly bins?: readonly number[];
  /** The text to count (default: see the module comment). */
  readonly text?: (record: unknown) => string;
  /** Stage name (default `token-length`). */
  readonly name?: string;
}

export interface TokenHistogram {
  readonly records: number;
  readonly dropped: number;
  readonly mean: number;
  readonly max: number;
  readonly method: 'tokenizer' | 'word-estimate';
  /** Records per bin: `upTo` is the bin's inclusive upper bound (null for the last, open bin). */
  readonly bins: readonly { upTo: number | null; count: number }[];
}

type Turnish = { conversations?: readonly { value: string }[]; output_1?: string; output_2?: string; image?: string | null };

export function defaultText(record: unknown): string {
  const r = record as Turnish;
  const turns = Array.isArray(r.conversations) ? r.conversations.map((t) => t.value).join('\n') : '';
  if (typeof r.output_1 === 'string' && typeof r.output_2 === 'string') {
    const longer = r.output_1.length >= r.output_2.length ? r.output_1 : r.output_2;
    return `${turns}\n${longer}`;
  }
  return turns;
}

/** Whitespace-word estimate of a text's tokens (see the module comment). */
export function estimateTokens(text: string): number {
  const words = text.split(/\s+/).filter((w) => w !== '').length;
  return Math.ceil((words * 4) / 3);
}

/** Token counting and length filtering stage (see the module comment). */
export function tokenLength<T>(options: TokenLengthOptions = {}): Stage<T, T> & { report(): TokenHistogram } {
  const maxTokens = options.maxTokens ?? 1280;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new InvalidOptionError('maxTokens', `must be an integer >= 1, got ${String(maxTokens)}`);
  const imageTokens = options.imageTokens ?? 0;
  if (!Number.isInteger(imageTokens) || imageTokens < 0) throw new InvalidOptionError('imageTokens', `must be an integer >= 0, got ${String(imageTokens)}`);
  const bounds = [...(options.bins ?? [64, 128, 256, 512, 1024, 1280, 2048])];
  if (bounds.some((b, i) => !(b > 0) || (i > 0 && b <= bounds[i - 1]!))) throw new InvalidOptionError('bins', 'must be increasing positive numbers');
  const tok = options.tokenizer;
  if (tok !== undefined && typeof tok !== 'string' && typeof tok?.encode !== 'function') throw new InvalidOptionError('tokenizer', 'must be a tokenizer.json path or a loaded tokenizer');
  const textOf = options.text ?? defaultText;
  const name = options.name ?? 'token-length';
  const method = tok === undefined ? 'word-estimate' : 'tokenizer';
  let report: TokenHistogram = { records: 0, dropped: 0, mean: 0, max: 0, method, bins: [] };

  return {
    name,
    report: () => report,
    async *run(input: AsyncIterable<T>, ctx: StageContext): AsyncIterable<T> {
      const tokenizer = typeof tok === 'string' ? await loadTokenizer(tok) : tok;
      const count = tokenizer ? (t: string) => tokenizer.encode(t).length : estimateTokens;
      const counts = new Array<number>(bounds.length + 1).fill(0);
      let records = 0;
      let dropped = 0;
      let sum = 0;
      let max = 0;
      for await (const rec of input) {
        const n = count(textOf(rec)) + ((rec as Turnish).image ? imageTokens : 0);
        records++;
        sum += n;
        if (n > max) max = n;
        let b = bounds.findIndex((u) => n <= u);
        if (b < 0) b = bounds.length;
        counts[b]!++;
        if (n > maxTokens) {
          dropped++;
          ctx.reject(rec, `${n} tokens (${method}) is over the limit of ${maxTokens}`, originOf(rec));
          continue;
        }
        yield rec;
      }
      report = {
        records, dropped, mean: records ? sum / records : 0, max, method,
        bins: counts.map((c, i) => ({ upTo: i < bounds.length ? bounds[i]! : null, count: c })),
      };
      const hist = report.bins.filter((b) => b.count > 0).map((b) => `${b.upTo === null ? `>${bounds[bounds.length - 1]}` : `<=${b.upTo}`}: ${b.count}`).join(', ');
      ctx.note(`tokens mean ${report.mean.toFixed(1)}, max ${max}, ${dropped} over ${maxTokens}; ${hist}`);
    },
  };
}
