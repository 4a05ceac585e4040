import test from 'ava';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import demo from '../../pipelines/demo.ts';
import { runPipeline } from '../../src/pipeline/run-pipeline.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let tmp: string;
test.before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-demo-'));
});
test.after.always(async () => {
  await rm(tmp, { recursive: true, force: true });
});

// the whole recipe at toy size, two seeds: the contract of report.json, report.md and the charts
// (what the numbers say at this size means nothing; the figures are in the closing notes)
test.serial('demo, 2 seeds at toy size: every stage runs, report.json has mean and sd per model, report.md and PNG charts', async (t) => {
  const out = path.join(tmp, 'demo');
  await runPipeline(demo, {
    out,
    cwd: ROOT,
    params: { seeds: 2, world_images: 20, sft_steps: 2, vision_steps: 2, rm_steps: 2, ppo_steps: 1, max_new_tokens: 6 },
  });
  for (const k of [0, 1]) {
    const steps = await readdir(path.join(out, `seed-${k}`));
    for (const s of ['world', 'sft', 'preference', 'rm-vanilla', 'rm-fact', 'rl-prompts', 'ppo-vanilla', 'ppo-fact', 'eval']) t.true(steps.includes(s), `seed-${k}/${s}`);
  }
  const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as { models: Record<string, Record<string, number>> };
  t.deepEqual(Object.keys(report.models).sort(), ['fact_rlhf', 'rlhf', 'sft']);
  for (const [name, m] of Object.entries(report.models)) {
    for (const key of ['hallucination_rate', 'mmhal_score', 'pope_f1', 'pope_yes_ratio', 'response_length_mean']) {
      t.true(Number.isFinite(m[key]), `${name}.${key}`);
      t.true(Number.isFinite(m[`${key}_sd`]) && m[`${key}_sd`]! >= 0, `${name}.${key}_sd`);
    }
    t.true(m.hallucination_rate! >= 0 && m.hallucination_rate! <= 1);
    t.true(m.mmhal_score! >= 0 && m.mmhal_score! <= 6);
  }
  const md = await readFile(path.join(out, 'report.md'), 'utf8');
  t.regex(md, /\| model \| Hallucination rate \| MMHal score \(0-6\) \| POPE F1 \| POPE yes-ratio \| Response length \| seeds \|/);
  t.regex(md, /\| Fact-RLHF \| [0-9.]+ ± [0-9.]+ \|/);
  t.regex(md, /- seed 1: SFT held-out yes\/no [0-9.]+%/);
  t.regex(md, /- seed 2: SFT held-out/);
  t.regex(md, /vanilla [0-9.]+% of \d+ pairs \(hallucination pairs ([0-9.]+%|n\/a) of \d+\), Fact [0-9.]+% of \d+ pairs/);
  for (const png of ['hallucination_rate.png', 'mmhal_score.png', 'pope_f1.png', 'reward.png', 'kl.png', 'response_length.png']) {
    const bytes = await readFile(path.join(out, png));
    t.deepEqual(bytes.subarray(0, 8), PNG_MAGIC, png);
    t.regex(md, new RegExp(`\\]\\(${png.replace('.', '\\.')}\\)`));
  }
});
