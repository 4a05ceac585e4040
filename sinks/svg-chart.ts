/**
 * Small chart builders returning SVG text (rendered to PNG by sinks/report.ts with sharp):
 * `lineChart` (several series over a numeric x axis, optional ±band) and `barChart` (one
 * bar per label, optional ± error bars). Titles, axis labels, tick labels and a legend;
 * sized for reading at 800x500. Every piece of text is XML-escaped.
 *
 * Layout is fixed by `chartLayout` (margins around the plot area) and the axes run over
 * "nice" tick ranges (`niceTicks`), so where a value lands is predictable: x maps
 * [ticks[0], ticks[last]] onto [left, right], y onto [bottom, top].
 */
import { InvalidOptionError } from '../src/errors.ts';

export const CHART_WIDTH = 800;
export const CHART_HEIGHT = 500;
export const CHART_FONT = 'DejaVu Sans, Helvetica, Arial, sans-serif';
/** Tableau 10: distinct, colour-blind friendly enough. */
export const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'] as const;

export interface ChartLayout {
  width: number;
  height: number;
  /** Plot area edges in pixels. */
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export interface LineSeries {
  label: string;
  /** [x, y] points; non-finite ones are skipped. */
  points: readonly (readonly [number, number])[];
  /** Optional shaded band: [x, low, high] (e.g. mean ± sd over seeds). */
  band?: readonly (readonly [number, number, number])[];
  color?: string;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  width?: number;
  height?: number;
  /** Draw a dot at each point (default: when a series has at most 60 points). */
  markers?: boolean;
}

export interface Bar {
  label: string;
  value: number;
  /** Half-length of the error bar (e.g. sd over seeds); none when absent or 0. */
  error?: number;
  color?: string;
}

export interface BarChartOptions {
  title: string;
  yLabel: string;
  xLabel?: string;
  bars: readonly Bar[];
  width?: number;
  height?: number;
  /** Axis range; default from 0 (or the lowest value) to a nice bound above the highest bar. */
  yMin?: number;
  yMax?: number;
  /** How values are printed above the bars (default 3 significant decimals). */
  format?: (value: number) => string;
}

/** Escapes text for SVG element content and attribute values. */
export function escapeXml(text: string): string {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** Where the plot area lies in a chart of this size. */
export function chartLayout(width = CHART_WIDTH, height = CHART_HEIGHT): ChartLayout {
  return { width, height, left: 90, right: width - 30, top: 64, bottom: height - 72 };
}

/** Round tick values covering [min, max] with about `target` steps of 1, 2 or 5 x 10^k. */
export function niceTicks(min: number, max: number, target = 6): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new InvalidOptionError('ticks', `need finite bounds, got ${min}..${max}`);
  if (max < min) [min, max] = [max, min];
  if (max === min) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw - 1e-12 * mag) ?? 10 * mag;
  const first = Math.floor(min / step + 1e-9) * step;
  const last = Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let k = 0; first + k * step <= last + step * 1e-9; k++) ticks.push(round(first + k * step, step));
  return ticks;
}

function round(v: number, step: number): number {
  const d = Math.max(0, -Math.floor(Math.log10(step)) + 2);
  return Number(v.toFixed(Math.min(d, 12)));
}

/** Decimals needed to write `v` exactly (up to 6). */
function decimalsOf(v: number): number {
  for (let d = 0; d < 6; d++) {
    const scaled = Math.abs(v) * 10 ** d;
    if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * Math.max(1, scaled)) return d;
  }
  return 6;
}

/** Tick label: as many decimals as the step needs, thousands as "k". */
export function formatTick(v: number, step: number): string {
  if (Math.abs(step) >= 1000 && Math.abs(v) >= 1000) return `${(v / 1000).toFixed(decimalsOf(step / 1000))}k`;
  const text = v.toFixed(decimalsOf(step));
  return /^-0(\.0*)?$/.test(text) ? text.slice(1) : text;
}

/** Linear map from a domain to a pixel range. */
export function linearScale(d0: number, d1: number, r0: number, r1: number): (v: number) => number {
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

const px = (v: number): string => (Math.round(v * 100) / 100).toString();

function frame(layout: ChartLayout, title: string, xLabel: string, yLabel: string, body: string[]): string {
  const { width, height, left, right, top, bottom } = layout;
  const cx = (left + right) / 2;
  const cy = (top + bottom) / 2;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${escapeXml(CHART_FONT)}">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text class="title" x="${px(width / 2)}" y="36" text-anchor="middle" font-size="22" font-weight="bold" fill="#222">${escapeXml(title)}</text>`,
    ...body,
    `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#333" stroke-width="1.5"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#333" stroke-width="1.5"/>`,
    xLabel ? `<text class="x-label" x="${px(cx)}" y="${height - 18}" text-anchor="middle" font-size="16" fill="#222">${escapeXml(xLabel)}</text>` : '',
    `<text class="y-label" x="24" y="${px(cy)}" text-anchor="middle" font-size="16" fill="#222" transform="rotate(-90 24 ${px(cy)})">${escapeXml(yLabel)}</text>`,
    '</svg>',
  ].filter((s) => s !== '').join('\n');
}

function yAxis(layout: ChartLayout, ticks: readonly number[], y: (v: number) => number): string[] {
  const step = ticks.length > 1 ? ticks[1]! - ticks[0]! : 1;
  return ticks.flatMap((t) => [
    `<line x1="${layout.left}" y1="${px(y(t))}" x2="${layout.right}" y2="${px(y(t))}" stroke="#e4e4e4" stroke-width="1"/>`,
    `<line x1="${layout.left - 6}" y1="${px(y(t))}" x2="${layout.left}" y2="${px(y(t))}" stroke="#333" stroke-width="1.5"/>`,
    `<text class="tick" x="${layout.left - 10}" y="${px(y(t) + 5)}" text-anchor="end" font-size="14" fill="#333">${escapeXml(formatTick(t, step))}</text>`,
  ]);
}

function checkSize(width: number | undefined, height: number | undefined): [number, number] {
  const w = width ?? CHART_WIDTH;
  const h = height ?? CHART_HEIGHT;
  if (!Number.isInteger(w) || w < 200 || !Number.isInteger(h) || h < 150) {
    throw new InvalidOptionError('width', `charts need integer sizes of at least 200x150, got ${w}x${h}`);
  }
  return [w, h];
}

/** A line chart (see the module comment). Series without finite points are listed in the legend only. */
export function lineChart(options: LineChartOptions): string {
  const [width, height] = checkSize(options.width, options.height);
  const given: readonly LineSeries[] = options.series;
  if (!Array.isArray(given as unknown)) throw new InvalidOptionError('series', 'must be a list of {label, points}');
  const layout = chartLayout(width, height);
  const series = given.map((s, i) => ({
    ...s,
    color: s.color ?? PALETTE[i % PALETTE.length]!,
    points: s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)),
    band: (s.band ?? []).filter(([x, lo, hi]) => Number.isFinite(x) && Number.isFinite(lo) && Number.isFinite(hi)),
  }));
  const xs = series.flatMap((s) => [...s.points.map((p) => p[0]), ...s.band.map((b) => b[0])]);
  const ys = series.flatMap((s) => [...s.points.map((p) => p[1]), ...s.band.flatMap((b) => [b[1], b[2]])]);
  const xTicks = niceTicks(xs.length ? Math.min(...xs) : 0, xs.length ? Math.max(...xs) : 1, 8);
  const yTicks = niceTicks(ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1, 6);
  const x = linearScale(xTicks[0]!, xTicks.at(-1)!, layout.left, layout.right);
  const y = linearScale(yTicks[0]!, yTicks.at(-1)!, layout.bottom, layout.top);
  const xStep = xTicks.length > 1 ? xTicks[1]! - xTicks[0]! : 1;
  const body: string[] = [...yAxis(layout, yTicks, y)];
  for (const t of xTicks) {
    body.push(`<line x1="${px(x(t))}" y1="${layout.bottom}" x2="${px(x(t))}" y2="${layout.bottom + 6}" stroke="#333" stroke-width="1.5"/>`);
    body.push(`<text class="tick" x="${px(x(t))}" y="${layout.bottom + 24}" text-anchor="middle" font-size="14" fill="#333">${escapeXml(formatTick(t, xStep))}</text>`);
  }
  for (const s of series) {
    if (s.band.length > 1) {
      const upper = s.band.map(([bx, , hi]) => `${px(x(bx))},${px(y(hi))}`);
      const lower = s.band.slice().reverse().map(([bx, lo]) => `${px(x(bx))},${px(y(lo))}`);
      body.push(`<polygon class="band" data-label="${escapeXml(s.label)}" points="${[...upper, ...lower].join(' ')}" fill="${s.color}" fill-opacity="0.18" stroke="none"/>`);
    }
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    const pts = s.points.map(([px_, py]) => `${px(x(px_))},${px(y(py))}`).join(' ');
    body.push(`<polyline class="series" data-label="${escapeXml(s.label)}" points="${pts}" fill="none" stroke="${s.color}" stroke-width="2.5" stroke-linejoin="round" stroke-linecap="round"/>`);
    if (options.markers ?? s.points.length <= 60) {
      for (const [a, b] of s.points) body.push(`<circle cx="${px(x(a))}" cy="${px(y(b))}" r="3.5" fill="${s.color}"/>`);
    }
  }
  // data positions, with points along each segment so lines count too
  const occupied: [number, number][] = [];
  for (const s of series) {
    s.points.forEach(([a, b], i) => {
      occupied.push([x(a), y(b)]);
      const next = s.points[i + 1];
      if (next) for (let k = 1; k < 8; k++) occupied.push([x(a + ((next[0] - a) * k) / 8), y(b + ((next[1] - b) * k) / 8)]);
    });
  }
  body.push(...legend(layout, series.map((s) => ({ label: s.label, color: s.color })), occupied));
  return frame(layout, options.title, options.xLabel, options.yLabel, body);
}

/**
 * The legend box, inside the plot in whichever corner covers the fewest data points
 * (`occupied`: pixel positions of the data), so it hides as little as possible.
 */
function legend(layout: ChartLayout, entries: readonly { label: string; color: string }[], occupied: readonly (readonly [number, number])[] = []): string[] {
  if (entries.length === 0) return [];
  const rowH = 22;
  const w = Math.min(layout.right - layout.left - 20, 36 + Math.max(...entries.map((e) => e.label.length)) * 8.2);
  const h = entries.length * rowH + 10;
  const corners: [number, number][] = [
    [layout.right - w - 10, layout.top + 10],
    [layout.left + 10, layout.top + 10],
    [layout.right - w - 10, layout.bottom - h - 10],
    [layout.left + 10, layout.bottom - h - 10],
  ];
  const covered = ([cx, cy]: [number, number]): number =>
    occupied.filter(([px_, py]) => px_ >= cx - 6 && px_ <= cx + w + 6 && py >= cy - 6 && py <= cy + h + 6).length;
  let [x0, y0] = corners[0]!;
  let best = covered(corners[0]!);
  for (const c of corners.slice(1)) {
    const n = covered(c);
    if (n < best) [best, x0, y0] = [n, c[0], c[1]];
  }
  const out = [`<rect class="legend" x="${px(x0)}" y="${px(y0)}" width="${px(w)}" height="${h}" fill="#ffffff" fill-opacity="0.9" stroke="#bbb" rx="4"/>`];
  entries.forEach((e, i) => {
    const cy = y0 + 5 + rowH * i + rowH / 2;
    out.push(`<line x1="${px(x0 + 8)}" y1="${px(cy)}" x2="${px(x0 + 28)}" y2="${px(cy)}" stroke="${e.color}" stroke-width="4"/>`);
    out.push(`<text class="legend-label" x="${px(x0 + 34)}" y="${px(cy + 5)}" font-size="14" fill="#222">${escapeXml(e.label)}</text>`);
  });
  return out;
}

function defaultFormat(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(3);
}

/** A bar chart (see the module comment). */
export function barChart(options: BarChartOptions): string {
  const [width, height] = checkSize(options.width, options.height);
  const given: readonly Bar[] = options.bars;
  if (!Array.isArray(given as unknown)) throw new InvalidOptionError('bars', 'must be a list of {label, value}');
  const layout = chartLayout(width, height);
  const fmt = options.format ?? defaultFormat;
  const bars = given.map((b, i) => ({ ...b, color: b.color ?? PALETTE[i % PALETTE.length]!, error: Number.isFinite(b.error) && b.error! > 0 ? b.error! : 0 }));
  const finite = bars.filter((b) => Number.isFinite(b.value));
  const hi = Math.max(0, ...finite.map((b) => b.value + b.error));
  const lo = Math.min(0, ...finite.map((b) => b.value - b.error));
  const yTicks = niceTicks(options.yMin ?? lo, options.yMax ?? (hi > 0 ? hi * 1.08 : 1), 6);
  const y = linearScale(yTicks[0]!, yTicks.at(-1)!, layout.bottom, layout.top);
  const body: string[] = [...yAxis(layout, yTicks, y)];
  const band = (layout.right - layout.left) / Math.max(1, bars.length);
  const barW = Math.min(band * 0.6, 140);
  const zero = y(Math.max(yTicks[0]!, Math.min(0, yTicks.at(-1)!)));
  bars.forEach((b, i) => {
    const cx = layout.left + band * (i + 0.5);
    body.push(`<text class="tick x-tick" x="${px(cx)}" y="${layout.bottom + 24}" text-anchor="middle" font-size="15" fill="#222">${escapeXml(b.label)}</text>`);
    if (!Number.isFinite(b.value)) {
      body.push(`<text class="value" x="${px(cx)}" y="${px(layout.bottom - 8)}" text-anchor="middle" font-size="14" fill="#666">n/a</text>`);
      return;
    }
    const top = y(b.value);
    body.push(`<rect class="bar" data-label="${escapeXml(b.label)}" data-value="${b.value}" x="${px(cx - barW / 2)}" y="${px(Math.min(top, zero))}" width="${px(barW)}" height="${px(Math.abs(zero - top))}" fill="${b.color}"/>`);
    let labelY = Math.min(top, zero) - 8;
    if (b.error > 0) {
      const e0 = y(b.value - b.error);
      const e1 = y(b.value + b.error);
      const cap = Math.min(14, barW / 4);
      body.push(`<g class="error-bar" data-label="${escapeXml(b.label)}" stroke="#222" stroke-width="2">`
        + `<line x1="${px(cx)}" y1="${px(e0)}" x2="${px(cx)}" y2="${px(e1)}"/>`
        + `<line x1="${px(cx - cap)}" y1="${px(e1)}" x2="${px(cx + cap)}" y2="${px(e1)}"/>`
        + `<line x1="${px(cx - cap)}" y1="${px(e0)}" x2="${px(cx + cap)}" y2="${px(e0)}"/></g>`);
      labelY = Math.min(labelY, e1 - 8);
    }
    const text = b.error > 0 ? `${fmt(b.value)} ± ${fmt(b.error)}` : fmt(b.value);
    body.push(`<text class="value" x="${px(cx)}" y="${px(labelY)}" text-anchor="middle" font-size="14" fill="#222">${escapeXml(text)}</text>`);
  });
  return frame(layout, options.title, options.xLabel ?? '', options.yLabel, body);
}
