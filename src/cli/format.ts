/**
 * Text formatting for the CLI: pure functions from values to strings (the CLI prints them).
 */
import { FactflowError } from '../errors.ts';

/** `error FF_ERR_X: message`; with `debug`, the stack and cause chain follow. */
export function formatError(e: unknown, debug = false): string {
  const code = e instanceof FactflowError ? e.code : 'FF_ERR_INTERNAL';
  const message = e instanceof Error ? e.message : String(e);
  let text = `error ${code}: ${message}`;
  if (debug) {
    let cur: unknown = e;
    let depth = 0;
    while (cur instanceof Error && depth < 8) {
      text += `\n${depth === 0 ? '' : 'caused by: '}${cur.stack ?? cur.message}`;
      cur = cur.cause;
      depth++;
    }
  } else if (!(e instanceof FactflowError)) {
    text += '\n(set FACTFLOW_DEBUG=1 to see the stack)';
  }
  return text;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** Word-wraps `text` to `width` columns; existing newlines are kept. Long words are cut. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  const w = Math.max(8, width);
  for (const para of text.split('\n')) {
    // lines that fit stay as they are (keeps indents and aligned spacing)
    if (para.length <= w) {
      lines.push(para);
      continue;
    }
    const indent = /^ */.exec(para)![0].slice(0, Math.floor(w / 2));
    let line = indent;
    for (let word of para.slice(indent.length).split(/ +/)) {
      const room = w - indent.length;
      while (word.length > room) {
        if (line.trim()) {
          lines.push(line);
          line = indent;
        }
        lines.push(indent + word.slice(0, room));
        word = word.slice(room);
      }
      if (!line.trim()) line = indent + word;
      else if (line.length + 1 + word.length <= w) line += ' ' + word;
      else {
        lines.push(line);
        line = indent + word;
      }
    }
    lines.push(line);
  }
  return lines;
}

/** `label` then wrapped text with a hanging indent (`human: ...`). */
export function labelled(label: string, text: string, width: number): string {
  const pad = ' '.repeat(label.length);
  return wrap(text, width - label.length)
    .map((l, i) => (i === 0 ? label : pad) + l)
    .join('\n');
}

function visibleLength(s: string): number {
  return [...s].length;
}

function padEnd(s: string, n: number): string {
  return s + ' '.repeat(Math.max(0, n - visibleLength(s)));
}

/** Lays blocks of text out side by side in columns of equal width. */
export function sideBySide(blocks: readonly { title: string; text: string }[], width: number, gap = 3): string {
  const col = Math.max(12, Math.floor((width - gap * (blocks.length - 1)) / blocks.length));
  const columns = blocks.map((b) => [b.title, '-'.repeat(Math.min(col, Math.max(visibleLength(b.title), 3))), ...wrap(b.text, col)]);
  const rows = Math.max(...columns.map((c) => c.length));
  const out: string[] = [];
  for (let r = 0; r < rows; r++) {
    out.push(columns.map((c, i) => (i === columns.length - 1 ? c[r] ?? '' : padEnd(c[r] ?? '', col))).join(' '.repeat(gap)).trimEnd());
  }
  return out.join('\n');
}

export interface HistogramBin {
  readonly label: string;
  readonly count: number;
}

/** A small text histogram: one line per bin with a bar scaled to the largest bin. */
export function formatHistogram(bins: readonly HistogramBin[], barWidth = 30): string {
  if (bins.length === 0) return '  (no data)';
  const max = Math.max(...bins.map((b) => b.count), 1);
  const lw = Math.max(...bins.map((b) => b.label.length));
  const cw = Math.max(...bins.map((b) => String(b.count).length));
  return bins
    .map((b) => {
      const len = b.count === 0 ? 0 : Math.max(1, Math.round((b.count / max) * barWidth));
      return `  ${b.label.padStart(lw)} | ${'#'.repeat(len).padEnd(barWidth)} ${String(b.count).padStart(cw)}`;
    })
    .join('\n');
}

/** A plain table: header row, a rule, then rows; numbers right-aligned. */
export function formatTable(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [header.map(String), ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => visibleLength(r[i] ?? ''))));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'));
  const line = (r: readonly string[]) =>
    r.map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : padEnd(c, widths[i]!))).join('  ').trimEnd();
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

type Turn = { from?: unknown; value?: unknown };

function turnsOf(record: Record<string, unknown>): Turn[] {
  return Array.isArray(record.conversations) ? (record.conversations as Turn[]) : [];
}

function headerLine(record: Record<string, unknown>, keys: readonly string[]): string {
  return keys
    .filter((k) => record[k] !== undefined && record[k] !== null && record[k] !== '')
    .map((k) => `${k}: ${String(record[k])}`)
    .join('  ');
}

/** A conversation with each `human:` / `gpt:` turn wrapped and set apart by a blank line. */
export function formatConversation(record: Record<string, unknown>, width = 100): string {
  const head = headerLine(record, ['id', 'source', 'image']);
  const turns = turnsOf(record).map((t) => labelled(`${String(t.from ?? '?')}: `.padEnd(7), String(t.value ?? ''), width));
  return [head, ...turns].join('\n\n');
}

function num(v: unknown, digits = 3): string {
  return typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(digits)) : v === null || v === undefined ? '-' : String(v);
}

/** Rollout: prompt turns, the response, and the reward terms. */
export function formatRollout(record: Record<string, unknown>, width = 100): string {
  const head = headerLine(record, ['id', 'image', 'policy_version']);
  const prompt = turnsOf(record).map((t) => labelled(`${String(t.from ?? '?')}: `.padEnd(7), String(t.value ?? ''), width));
  const response = labelled('response: ', String(record.response ?? ''), width);
  // every reward_* term the record carries (model, length, correctness, no_eos, ...)
  const terms = Object.entries(record)
    .filter(([k, v]) => k.startsWith('reward_') && k !== 'reward_total' && typeof v === 'number')
    .map(([k, v]) => `${k.slice('reward_'.length)} ${(v as number).toFixed(3)}`);
  const rewards = [
    `reward_total ${typeof record.reward_total === 'number' ? record.reward_total.toFixed(3) : '-'}${terms.length ? ` (${terms.join(', ')})` : ''}`,
    `kl_mean ${num(record.kl_mean)}, tokens ${num(record.response_tokens)}, eos ${num(record.ended_with_eos)}, caption_type ${num(record.caption_type)}, length_bonus ${num(record.length_bonus)}`,
  ].join('\n');
  return [head, ...prompt, response, wrap(rewards, width).join('\n')].join('\n\n');
}

/** Eval record: question | model answer | verdict, side by side. */
export function formatEval(record: Record<string, unknown>, width = 100): string {
  const head = headerLine(record, ['question_id', 'question_type', 'image']);
  const verdict = [
    `score: ${num(record.score)}`,
    `hallucinated: ${num(record.hallucinated)}`,
    `gt: ${String(record.gt_answer ?? '-')}`,
  ].join('\n');
  return [head, sideBySide([
    { title: 'question', text: String(record.question ?? '') },
    { title: 'answer', text: String(record.model_answer ?? '') },
    { title: 'verdict', text: verdict },
  ], width)].join('\n');
}

/** Picks a layout by schema name (conversation-like, rollout, eval); anything else as JSON. */
export function formatRecord(schema: string | undefined, record: unknown, width = 100): string {
  if (typeof record !== 'object' || record === null) return JSON.stringify(record);
  const r = record as Record<string, unknown>;
  if (schema === 'rollout' || (schema === undefined && 'response' in r && 'reward_total' in r)) return formatRollout(r, width);
  if (schema === 'eval' || (schema === undefined && 'question_id' in r && 'model_answer' in r)) return formatEval(r, width);
  if (Array.isArray(r.conversations)) {
    let text = formatConversation(r, width);
    // preference records also carry the two candidate answers
    if (typeof r.output_1 === 'string' && typeof r.output_2 === 'string') {
      text += '\n\n' + sideBySide([
        { title: `output_1${r.preference === 1 ? ' (preferred)' : ''}`, text: r.output_1 },
        { title: `output_2${r.preference === 2 ? ' (preferred)' : ''}`, text: r.output_2 },
      ], width);
    }
    return text;
  }
  return JSON.stringify(record, null, 2);
}
