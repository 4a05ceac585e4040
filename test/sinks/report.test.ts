import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { meanSd, readPpoMetrics, reportSink, summarizeRuns, writeReport } from '../../sinks/report.ts';
import { barChart, chartLayout, escapeXml, lineChart, niceTicks, PALETTE } from '../../sinks/svg-chart.ts';
import { runFlow } from '../../src/stream/flow.ts';
import type { FactflowError } from '../../src/errors.ts';

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-report-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function pixel(png: Buffer, x: number, y: number): Promise<[number, number, number]> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const i = (Math.round(y) * info.width + Math.round(x)) * info.channels;
  return [data[i]!, data[i + 1]!, data[i + 2]!];
}

function hexRgb(hex: string): [number, number, number] {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
}

function near(t: { true(v: boolean, m?: string): void }, got: readonly number[], want: readonly number[], tol = 12): void {
  t.true(got.every((g, i) => Math.abs(g - want[i]!) <= tol), `pixel ${got.join(',')} is not near ${want.join(',')}`);
}

test('niceTicks covers the range with round steps', (t) => {
  t.deepEqual(niceTicks(0, 10), [0, 2, 4, 6, 8, 10]);
  t.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  t.deepEqual(niceTicks(0.37, 0.81), [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
  t.deepEqual(niceTicks(5, 5), [4.4, 4.6, 4.8, 5, 5.2, 5.4, 5.6]);
});

test('a line chart puts known values where the layout says, and the PNG shows them there', async (t) => {
  const svg = lineChart({
    title: 'Reward <over> steps & more',
    xLabel: 'PPO step',
    yLabel: 'reward',
    series: [
      { label: 'RLHF', points: [[0, 0], [5, 0.5], [10, 1]] },
      { label: 'Fact-RLHF', points: [[0, 0.2], [10, 0.2]] },
    ],
  });
  // axes run over niceTicks: x 0..10, y 0..1
  const L = chartLayout(800, 500);
  const X = (v: number): number => L.left + (v / 10) * (L.right - L.left);
  const Y = (v: number): number => L.bottom - v * (L.bottom - L.top);
  const polyline = /<polyline class="series" data-label="RLHF" points="([^"]+)"/.exec(svg);
  t.truthy(polyline);
  const pts = polyline![1]!.split(' ').map((p) => p.split(',').map(Number));
  t.deepEqual(pts, [[X(0), Y(0)], [X(5), Y(0.5)], [X(10), Y(1)]]);
  t.true(svg.includes('Reward &lt;over&gt; steps &amp; more'), 'title escaped');
  for (const text of ['PPO step', '>reward<', '>RLHF<', '>Fact-RLHF<', '>0.6<', '>10<']) t.true(svg.includes(text), `missing ${text}`);

  const png = await sharp(Buffer.from(svg)).png().toBuffer();
  const meta = await sharp(png).metadata();
  t.deepEqual([meta.format, meta.width, meta.height], ['png', 800, 500]);
  near(t, await pixel(png, X(5), Y(0.5)), hexRgb(PALETTE[0]));
  near(t, await pixel(png, X(3), Y(0.2)), hexRgb(PALETTE[1]));
  near(t, await pixel(png, X(5), Y(0.8)), [255, 255, 255]); // empty plot area stays white
});

test('a bar chart draws each bar to its value, with error bars only when given', (t) => {
  const svg = barChart({ title: 'Hallucination rate per model', yLabel: 'rate', yMax: 1, bars: [{ label: 'SFT', value: 0.4, error: 0.05 }, { label: 'RLHF', value: 0.6 }] });
  const L = chartLayout();
  const bars = [...svg.matchAll(/<rect class="bar" data-label="([^"]+)" data-value="([^"]+)" x="[^"]+" y="([^"]+)" width="[^"]+" height="([^"]+)"/g)];
  t.deepEqual(bars.map((b) => b[1]), ['SFT', 'RLHF']);
  for (const b of bars) {
    const v = Number(b[2]);
    t.is(Number(b[3]), Math.round((L.bottom - v * (L.bottom - L.top)) * 100) / 100);
    t.is(Math.round(Number(b[4])), Math.round(v * (L.bottom - L.top)));
  }
  t.is([...svg.matchAll(/class="error-bar"/g)].length, 1);
  t.true(svg.includes('0.400 ± 0.050'));
  t.true(svg.includes('>0.600<'));
});

test('escapeXml escapes the five XML characters', (t) => {
  t.is(escapeXml(`a<b>&"c'`), 'a&lt;b&gt;&amp;&quot;c&apos;');
});

test('meanSd and summarizeRuns: mean, sample sd, _sd twins only with several seeds', (t) => {
  const { mean, sd } = meanSd([1, 2, 3, 4]);
  t.is(mean, 2.5);
  t.is(sd, Math.sqrt(5 / 3));
  t.deepEqual(summarizeRuns([{ a: 1, b: 'x' }, { a: 3 }], ['a', 'b']), { a: 2, a_sd: Math.SQRT2, seeds: 2 });
  t.deepEqual(summarizeRuns([{ a: 1 }], ['a']), { a: 1, seeds: 1 });
});

test('writeReport: report.json, report.md and PNG charts at 800x500 from models and PPO metrics files', async (t) => {
  const out = path.join(tmp, 'full');
  const ppo: { label: string; file: string }[] = [];
  for (const [label, slope] of [['RLHF', 2], ['Fact-RLHF', 1]] as const) {
    for (const seed of [0, 1]) {
      const file = path.join(tmp, `${label}-${seed}.jsonl`);
      const lines = Array.from({ length: 5 }, (_, s) => JSON.stringify({ step: s * 10, reward: slope * s + seed, kl: 0.01 * s, response_tokens: 20 + slope * s }));
      await writeFile(file, lines.join('\n') + '\n');
      ppo.push({ label, file });
    }
  }
  const models = [
    { name: 'sft', label: 'SFT', runs: [{ hallucination_rate: 0.4, mmhal_score: 3, pope_f1: 0.8, response_length_mean: 20 }, { hallucination_rate: 0.6, mmhal_score: 2, pope_f1: 0.7, response_length_mean: 30 }] },
    { name: 'fact_rlhf', label: 'Fact-RLHF', runs: [{ hallucination_rate: 0.2, mmhal_score: 4, pope_f1: 0.9, response_length_mean: 25 }, { hallucination_rate: 0.2, mmhal_score: 4, pope_f1: 0.9, response_length_mean: 25 }] },
  ];
  const r = await writeReport({ out, title: 'Ablation', models, ppo, extra: { world: 'w' } });

  const json = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as Record<string, unknown>;
  const sft = (json.models as Record<string, Record<string, number>>).sft!;
  t.is(sft.hallucination_rate, 0.5);
  t.true(Math.abs(sft.hallucination_rate_sd! - Math.sqrt(0.02)) < 1e-12);
  t.is(sft.response_length_mean, 25);
  t.is(sft.seeds, 2);
  t.is((json.models as Record<string, Record<string, number>>).fact_rlhf!.pope_f1_sd, 0);
  t.is(json.world, 'w');
  const rl = (json.ppo as Record<string, { runs: number; steps: number; first: Record<string, number>; last: Record<string, number> }>).RLHF!;
  t.deepEqual([rl.runs, rl.steps, rl.first.reward, rl.last.reward, rl.last.response_length], [2, 5, 0.5, 8.5, 28]);

  const md = await readFile(path.join(out, 'report.md'), 'utf8');
  t.true(md.includes('| SFT | 0.500 ± 0.141 | 2.500 ± 0.707 | 0.750 ± 0.071 | 25.0 ± 7.1 | 2 |'), md);
  t.true(md.includes('![Reward over PPO steps](reward.png)'));

  const names = r.charts.map((c) => path.basename(c.file));
  t.deepEqual(names, ['hallucination_rate.png', 'mmhal_score.png', 'pope_f1.png', 'reward.png', 'kl.png', 'response_length.png']);
  for (const c of r.charts) {
    const meta = await sharp(c.file).metadata();
    t.deepEqual([meta.format, meta.width, meta.height], ['png', 800, 500], c.file);
    t.true(c.svg.includes(escapeXml(c.title)), `${c.file}: title`);
    t.is(await readFile(c.file.replace(/\.png$/, '.svg'), 'utf8'), c.svg);
  }
  const bars = r.charts[0]!.svg;
  for (const text of ['Hallucination rate per model (mean ± sd over 2 seeds)', '>SFT<', '>Fact-RLHF<', 'class="error-bar"', '>model<']) t.true(bars.includes(text), text);
  const reward = r.charts[3]!.svg;
  for (const text of ['>PPO step<', '>mean reward<', 'RLHF (mean of 2)', 'Fact-RLHF (mean of 2)', 'class="band"']) t.true(reward.includes(text), text);
  // steps 0..40 on x: the last RLHF point (step 40, mean reward 8.5) sits at the right edge
  const L = chartLayout();
  const pts = /class="series" data-label="RLHF \(mean of 2\)" points="([^"]+)"/.exec(reward)![1]!.split(' ');
  t.is(Number(pts.at(-1)!.split(',')[0]), L.right);
});

test('writeReport with a different size renders at that size', async (t) => {
  const r = await writeReport({ out: path.join(tmp, 'small'), width: 400, height: 300, models: [{ name: 'a', runs: [{ hallucination_rate: 0.5, pope_f1: 0.5, mmhal_score: 3 }] }] });
  const meta = await sharp(r.charts[0]!.file).metadata();
  t.deepEqual([meta.width, meta.height], [400, 300]);
  t.false(r.charts[0]!.svg.includes('error-bar'), 'one seed: no error bars');
});

test('a bad metrics.jsonl line fails with file:line; a missing file is a bad input', async (t) => {
  const file = path.join(tmp, 'bad.jsonl');
  await writeFile(file, '{"step": 0, "reward": 1}\n{"step": 1, "reward": \n');
  const err = await readPpoMetrics(file).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(err?.code, 'FF_ERR_BAD_RECORD');
  t.true(err!.message.startsWith(`${file}:2:`), err!.message);
  const missing = await writeReport({ out: path.join(tmp, 'missing'), ppo: [{ label: 'x', file: path.join(tmp, 'nope.jsonl') }] }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(missing?.code, 'FF_ERR_BAD_INPUT');
  t.regex(missing!.message, /nope\.jsonl/);
});

test('options are checked: a model listed twice, a model without runs', async (t) => {
  const dup = await writeReport({ out: tmp, models: [{ name: 'a', runs: [{}] }, { name: 'a', runs: [{}] }] }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.is(dup?.code, 'FF_ERR_INVALID_OPTION');
  t.regex(dup!.message, /"models".*listed twice/);
  const none = await writeReport({ out: tmp, models: [{ name: 'a', runs: [] }] }).then(() => undefined, (e: unknown) => e as FactflowError);
  t.regex(none!.message, /models\[0\]\.runs/);
});

test('reportSink groups per-seed rows by model', async (t) => {
  const out = path.join(tmp, 'sink');
  const rows = [
    { model: 'sft', label: 'SFT', metrics: { hallucination_rate: 0.5, pope_f1: 0.7, mmhal_score: 3 } },
    { model: 'sft', label: 'SFT', metrics: { hallucination_rate: 0.3, pope_f1: 0.9, mmhal_score: 4 } },
    { model: 'rlhf', metrics: { hallucination_rate: 0.6, pope_f1: 0.6, mmhal_score: 2 } },
  ];
  const flow = await runFlow(
    { source: { name: 'rows', async *read() { yield* rows; } }, sink: reportSink({ out }) },
    { seed: 1, deadLetterPath: path.join(tmp, 'sink-dead.jsonl') },
  );
  t.deepEqual(Object.keys(flow.result.models), ['sft', 'rlhf']);
  t.is(flow.result.models.sft!.hallucination_rate, 0.4);
  t.is(flow.result.models.sft!.seeds, 2);
  t.false('hallucination_rate_sd' in flow.result.models.rlhf!);
});
