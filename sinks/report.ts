/**
 * The evaluation report: `report.json` (all metrics), `report.md` (tables + the charts) and
 * PNG charts (SVG from svg-chart.ts rendered by sharp; the .svg is kept beside each PNG):
 *
 * - per model, one bar chart per metric (default hallucination rate, MMHal score, POPE F1):
 *   the mean over seeds, with ±sd error bars when a model has several seeds;
 * - over PPO steps, one line chart each for reward, KL and response length, one line per
 *   run label, read from the runs' `metrics.jsonl` (several files with the same label =
 *   seeds: their mean, with a ±sd band).
 *
 * `report.json`: `{title, models: {NAME: {METRIC: mean, METRIC_sd: sd (seeds > 1), seeds}},
 * ppo: {LABEL: {runs, steps, first: {...}, last: {...}}}, charts: [...], ...extra}`.
 * sd is the sample standard deviation (n - 1).
 *
 * metrics.jsonl: one JSON object per line; the step is `step` (else `ppo_step`,
 * `iteration`, `global_step`, else the line's position); each chart's value is the first
 * of its `keys` present as a finite number (defaults accept common spellings: `reward`,
 * `reward_mean`, `kl`, `objective/kl`, `response_length`, `response_tokens`, ...).
 *
 * `writeReport` takes everything at once; `reportSink` is the same as a Sink of per-seed
 * model rows, for flows that produce them.
 */
import { createReadStream } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import path from 'node:path';
import sharp from 'sharp';
import { BadInputError, BadRecordError, InvalidOptionError } from '../src/errors.ts';
import type { Sink, SinkContext } from '../src/stream/stage.ts';
import { writeJsonAtomic } from '../schemas/manifest.ts';
import { barChart, lineChart, CHART_HEIGHT, CHART_WIDTH, type LineSeries } from './svg-chart.ts';

/** One model's results: one metrics object per seed (numbers are used, anything else ignored). */
export interface ModelResults {
  /** Key in report.json (e.g. `fact_rlhf`). */
  name: string;
  /** Shown in tables and charts (default `name`). */
  label?: string;
  runs: readonly Readonly<Record<string, unknown>>[];
}

/** One PPO run's metrics.jsonl; runs sharing a label are seeds of one configuration. */
export interface PpoRun {
  label: string;
  file: string;
}

export interface MetricSpec {
  /** Field of the model results. */
  key: string;
  /** Column and chart title. */
  title: string;
  /** Fixed axis top (e.g. 1 for rates). */
  yMax?: number;
}

export interface LineSpec {
  /** Chart file name (without extension). */
  name: string;
  title: string;
  yLabel: string;
  /** Accepted field names in metrics.jsonl, first found wins. */
  keys: readonly string[];
}

export interface ReportOptions {
  /** Folder for report.json, report.md and the charts (created). */
  out: string;
  title?: string;
  models?: readonly ModelResults[];
  /** Table columns (default DEFAULT_METRICS). */
  metrics?: readonly MetricSpec[];
  /** Bar charts, one per metric key (default hallucination_rate, mmhal_score, pope_f1). */
  barCharts?: readonly string[];
  ppo?: readonly PpoRun[];
  /** Line charts over PPO steps (default DEFAULT_LINES). */
  lines?: readonly LineSpec[];
  /** Markdown paragraphs after the tables (e.g. what the numbers show). */
  notes?: readonly string[];
  /** Merged into report.json at the top level. */
  extra?: Readonly<Record<string, unknown>>;
  /** Chart size in pixels (default 800x500). */
  width?: number;
  height?: number;
}

export interface ReportChart {
  file: string;
  svg: string;
  title: string;
}

export interface ReportResult {
  json: string;
  markdown: string;
  charts: ReportChart[];
  models: Record<string, Record<string, number>>;
  ppo: Record<string, PpoSummary>;
}

export interface PpoSummary {
  runs: number;
  steps: number;
  first: Record<string, number>;
  last: Record<string, number>;
}

export const DEFAULT_METRICS: readonly MetricSpec[] = [
  { key: 'hallucination_rate', title: 'Hallucination rate', yMax: 1 },
  { key: 'mmhal_score', title: 'MMHal score (0-6)', yMax: 6 },
  { key: 'pope_f1', title: 'POPE F1', yMax: 1 },
  { key: 'pope_yes_ratio', title: 'POPE yes-ratio', yMax: 1 },
  { key: 'response_length_mean', title: 'Response length' },
];

export const DEFAULT_BAR_CHARTS: readonly string[] = ['hallucination_rate', 'mmhal_score', 'pope_f1'];

export const DEFAULT_LINES: readonly LineSpec[] = [
  { name: 'reward', title: 'Reward over PPO steps', yLabel: 'mean reward', keys: ['reward', 'reward_mean', 'mean_reward', 'reward_total', 'reward_total_mean', 'objective/scores', 'scores'] },
  { name: 'kl', title: 'KL to the reference over PPO steps', yLabel: 'KL (nats)', keys: ['kl', 'kl_mean', 'mean_kl', 'objective/kl', 'kl_div'] },
  { name: 'response_length', title: 'Response length over PPO steps', yLabel: 'mean response length (tokens)', keys: ['response_length', 'response_length_mean', 'response_tokens', 'response_tokens_mean', 'mean_response_length', 'length'] },
];

const STEP_KEYS = ['step', 'ppo_step', 'iteration', 'global_step'];

/** Mean and sample sd (n - 1; 0 for one value) of the finite values. */
export function meanSd(values: readonly number[]): { mean: number; sd: number; n: number } {
  const v = values.filter((x) => Number.isFinite(x));
  const n = v.length;
  if (n === 0) return { mean: NaN, sd: NaN, n };
  const mean = v.reduce((s, x) => s + x, 0) / n;
  const sd = n > 1 ? Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, n };
}

/** Per metric: the mean over runs, plus `<metric>_sd` when there are several runs, plus `seeds`. */
export function summarizeRuns(runs: readonly Readonly<Record<string, unknown>>[], keys: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of keys) {
    const values = runs.map((r) => r[key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    if (values.length === 0) continue;
    const { mean, sd } = meanSd(values);
    out[key] = mean;
    if (runs.length > 1) out[`${key}_sd`] = sd;
  }
  out.seeds = runs.length;
  return out;
}

export interface PpoPoint {
  step: number;
  values: Record<string, number>;
}

/** Reads a metrics.jsonl (see the module comment); a line that is not a JSON object fails with file:line. */
export async function readPpoMetrics(file: string, options: { signal?: AbortSignal } = {}): Promise<PpoPoint[]> {
  const stream = createReadStream(file, { encoding: 'utf8', signal: options.signal });
  try {
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
  } catch (cause) {
    throw new BadInputError(`cannot open: ${(cause as Error).message}`, { file, cause, fix: 'check the path' });
  }
  const out: PpoPoint[] = [];
  let index = 0;
  let line = 0;
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const raw of rl) {
      line++;
      const text = raw.trim();
      if (text === '') continue;
      let obj: unknown;
      try {
        obj = JSON.parse(text);
      } catch (cause) {
        throw new BadRecordError(`not a JSON object: ${(cause as Error).message}`, { file, line, cause, fix: 'metrics.jsonl holds one JSON object per line' });
      }
      if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new BadRecordError('expected a JSON object', { file, line, fix: 'metrics.jsonl holds one JSON object per line' });
      const values: Record<string, number> = {};
      for (const [k, v] of Object.entries(obj as Record<string, unknown>)) if (typeof v === 'number' && Number.isFinite(v)) values[k] = v;
      const stepKey = STEP_KEYS.find((k) => k in values);
      out.push({ step: stepKey ? values[stepKey]! : index, values });
      index++;
    }
  } finally {
    rl.close();
    stream.destroy();
  }
  return out;
}

function valueOf(p: PpoPoint, keys: readonly string[]): number | undefined {
  for (const k of keys) if (k in p.values) return p.values[k];
  return undefined;
}

/** One series per label: the mean over that label's runs at each step, ±sd band when several. */
export function ppoSeries(runs: readonly { label: string; points: readonly PpoPoint[] }[], keys: readonly string[]): LineSeries[] {
  const labels = [...new Set(runs.map((r) => r.label))];
  const series: LineSeries[] = [];
  for (const label of labels) {
    const group = runs.filter((r) => r.label === label);
    const byStep = new Map<number, number[]>();
    for (const r of group) {
      for (const p of r.points) {
        const v = valueOf(p, keys);
        if (v === undefined) continue;
        const list = byStep.get(p.step) ?? [];
        list.push(v);
        byStep.set(p.step, list);
      }
    }
    if (byStep.size === 0) continue;
    const steps = [...byStep.keys()].sort((a, b) => a - b);
    const stats = steps.map((s) => ({ s, ...meanSd(byStep.get(s)!) }));
    const s: LineSeries = { label: group.length > 1 ? `${label} (mean of ${group.length})` : label, points: stats.map((x) => [x.s, x.mean] as const) };
    if (group.length > 1) s.band = stats.map((x) => [x.s, x.mean - x.sd, x.mean + x.sd] as const);
    series.push(s);
  }
  return series;
}

async function renderChart(out: string, name: string, svg: string): Promise<string> {
  const png = await sharp(Buffer.from(svg), { density: 72 }).png().toBuffer();
  const file = path.join(out, `${name}.png`);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, png);
  await rename(tmp, file);
  await writeFile(path.join(out, `${name}.svg`), svg);
  return file;
}

function cell(summary: Record<string, number>, key: string): string {
  const v = summary[key];
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  // the sd gets the mean's decimals, so "25.0 ± 7.1" reads as one number
  const decimals = Math.abs(v) >= 10 ? 1 : 3;
  const sd = summary[`${key}_sd`];
  return sd !== undefined && Number.isFinite(sd) ? `${v.toFixed(decimals)} ± ${sd.toFixed(decimals)}` : v.toFixed(decimals);
}

function mdEscape(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function checkOptions(o: ReportOptions): void {
  if (typeof o?.out !== 'string' || o.out === '') throw new InvalidOptionError('out', 'must be the report folder');
  for (const [i, m] of (o.models ?? []).entries()) {
    if (typeof m?.name !== 'string' || m.name === '') throw new InvalidOptionError(`models[${i}].name`, 'must be a non-empty string');
    if (!Array.isArray(m.runs) || m.runs.length === 0) throw new InvalidOptionError(`models[${i}].runs`, 'must list at least one run (one metrics object per seed)');
  }
  const names = (o.models ?? []).map((m) => m.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new InvalidOptionError('models', `model "${dup}" is listed twice`, { fix: 'give each model one entry with all its seeds in runs' });
  for (const [i, r] of (o.ppo ?? []).entries()) {
    if (typeof r?.label !== 'string' || r.label === '' || typeof r.file !== 'string' || r.file === '') throw new InvalidOptionError(`ppo[${i}]`, 'must be {label, file}');
  }
  for (const key of ['width', 'height'] as const) {
    const v = o[key];
    if (v !== undefined && (!Number.isInteger(v) || v < (key === 'width' ? 200 : 150))) throw new InvalidOptionError(key, `must be an integer >= ${key === 'width' ? 200 : 150}, got ${String(v)}`);
  }
}

/** Writes report.json, report.md and the charts (see the module comment). */
export async function writeReport(options: ReportOptions): Promise<ReportResult> {
  checkOptions(options);
  const out = path.resolve(options.out);
  const width = options.width ?? CHART_WIDTH;
  const height = options.height ?? CHART_HEIGHT;
  const metrics = options.metrics ?? DEFAULT_METRICS;
  const models = options.models ?? [];
  const title = options.title ?? 'Evaluation report';
  await mkdir(out, { recursive: true });

  const summaries: Record<string, Record<string, number>> = {};
  for (const m of models) summaries[m.name] = summarizeRuns(m.runs, metrics.map((x) => x.key));
  const labelOf = (m: ModelResults): string => m.label ?? m.name;

  const charts: ReportChart[] = [];
  for (const key of options.barCharts ?? DEFAULT_BAR_CHARTS) {
    if (models.length === 0) break;
    const spec = metrics.find((m) => m.key === key) ?? { key, title: key };
    if (!models.some((m) => Number.isFinite(summaries[m.name]![key]))) continue;
    const seeds = Math.max(...models.map((m) => m.runs.length));
    const chartTitle = `${spec.title} per model${seeds > 1 ? ` (mean ± sd over ${seeds} seeds)` : ''}`;
    const svg = barChart({
      title: chartTitle,
      yLabel: spec.title,
      xLabel: 'model',
      width,
      height,
      yMax: spec.yMax,
      bars: models.map((m) => ({ label: labelOf(m), value: summaries[m.name]![key] ?? NaN, error: summaries[m.name]![`${key}_sd`] })),
    });
    charts.push({ file: await renderChart(out, key, svg), svg, title: chartTitle });
  }

  const ppo: Record<string, PpoSummary> = {};
  const ppoRuns: { label: string; points: PpoPoint[] }[] = [];
  for (const r of options.ppo ?? []) {
    let points: PpoPoint[];
    try {
      points = await readPpoMetrics(r.file);
    } catch (e) {
      if (e instanceof BadInputError) throw new BadInputError(`cannot read the PPO metrics of "${r.label}" (${e.detail})`, { file: r.file, cause: e, fix: 'point ppo[].file at a run\'s metrics.jsonl' });
      throw e;
    }
    ppoRuns.push({ label: r.label, points });
  }
  const lines = options.lines ?? DEFAULT_LINES;
  for (const label of [...new Set(ppoRuns.map((r) => r.label))]) {
    const group = ppoRuns.filter((r) => r.label === label);
    const pick = (which: 'first' | 'last'): Record<string, number> => {
      const o: Record<string, number> = {};
      for (const spec of lines) {
        const v = meanSd(group.map((r) => {
          const pts = r.points.filter((p) => valueOf(p, spec.keys) !== undefined);
          const p = which === 'first' ? pts[0] : pts.at(-1);
          return p ? valueOf(p, spec.keys)! : NaN;
        }));
        if (Number.isFinite(v.mean)) o[spec.name] = v.mean;
      }
      return o;
    };
    ppo[label] = { runs: group.length, steps: Math.max(...group.map((r) => r.points.length)), first: pick('first'), last: pick('last') };
  }
  for (const spec of lines) {
    const series = ppoSeries(ppoRuns, spec.keys);
    if (series.length === 0) continue;
    const svg = lineChart({ title: spec.title, xLabel: 'PPO step', yLabel: spec.yLabel, series, width, height });
    charts.push({ file: await renderChart(out, spec.name, svg), svg, title: spec.title });
  }

  // report.json
  const json = path.join(out, 'report.json');
  await writeJsonAtomic(json, {
    title,
    models: summaries,
    ...(Object.keys(ppo).length > 0 ? { ppo } : {}),
    charts: charts.map((c) => path.basename(c.file)),
    ...options.extra,
  });

  // report.md
  const md: string[] = [`# ${title}`, ''];
  if (models.length > 0) {
    const seeds = Math.max(...models.map((m) => m.runs.length));
    md.push(seeds > 1 ? `Mean ± sample sd over seeds.` : 'One seed per model.', '');
    // a default column no run reports (an older caller's metrics) is left out rather than shown as n/a
    const shown = options.metrics ? metrics : metrics.filter((x) => models.some((m) => Number.isFinite(summaries[m.name]![x.key])));
    md.push(`| model | ${shown.map((m) => mdEscape(m.title)).join(' | ')} | seeds |`);
    md.push(`|---|${shown.map(() => '---:').join('|')}|---:|`);
    for (const m of models) md.push(`| ${mdEscape(labelOf(m))} | ${shown.map((x) => cell(summaries[m.name]!, x.key)).join(' | ')} | ${m.runs.length} |`);
    md.push('');
  }
  if (Object.keys(ppo).length > 0) {
    md.push('## PPO runs', '');
    md.push(`| run | seeds | steps | ${lines.map((l) => `${mdEscape(l.name)} first → last`).join(' | ')} |`);
    md.push(`|---|---:|---:|${lines.map(() => '---:').join('|')}|`);
    const f = (v: number | undefined): string => (v === undefined ? 'n/a' : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3));
    for (const [label, s] of Object.entries(ppo)) md.push(`| ${mdEscape(label)} | ${s.runs} | ${s.steps} | ${lines.map((l) => `${f(s.first[l.name])} → ${f(s.last[l.name])}`).join(' | ')} |`);
    md.push('');
  }
  for (const n of options.notes ?? []) md.push(n, '');
  if (charts.length > 0) {
    md.push('## Charts', '');
    for (const c of charts) md.push(`![${mdEscape(c.title)}](${path.basename(c.file)})`, '');
  }
  const markdown = path.join(out, 'report.md');
  await writeFile(markdown, md.join('\n'));
  return { json, markdown, charts, models: summaries, ppo };
}

/** One model's metrics for one seed, as `reportSink` consumes them. */
export interface ModelRow {
  model: string;
  label?: string;
  seed?: number;
  metrics: Readonly<Record<string, unknown>>;
}

/** `writeReport` as a Sink: collects per-seed model rows (a handful), then writes the report. */
export function reportSink(options: Omit<ReportOptions, 'models'> & { name?: string }): Sink<ModelRow, ReportResult> {
  checkOptions({ ...options, models: [] });
  return {
    name: options.name ?? 'report',
    async write(input: AsyncIterable<ModelRow>, ctx: SinkContext): Promise<ReportResult> {
      const byModel = new Map<string, { label?: string; runs: Readonly<Record<string, unknown>>[] }>();
      for await (const row of input) {
        if (typeof row?.model !== 'string' || row.model === '' || typeof row.metrics !== 'object' || row.metrics === null) {
          ctx.reject(row, 'expected {model, metrics}');
          continue;
        }
        const entry = byModel.get(row.model) ?? { label: row.label, runs: [] };
        entry.runs.push(row.metrics);
        byModel.set(row.model, entry);
      }
      return writeReport({ ...options, models: [...byModel].map(([name, e]) => ({ name, label: e.label, runs: e.runs })) });
    },
  };
}
