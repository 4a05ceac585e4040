/**
 * The sft-train pipeline end to end on one backend, in one process: shapes world -> SFT mix ->
 * tokenizer -> vision pretraining -> SFT -> held-out answers. On the GPU machine it is bundled like
 * bench/gpu.ts, with sharp (which renders the world) travelling beside the bundle:
 *
 *   bash ../shared/gpu/prepare.sh bench/gpu-sft.ts sharp   # plus sharp's @img/*, detect-libc, semver
 *   bash .device/boot.sh --steps 600                        # there
 *   npx tsx bench/gpu-sft.ts --backend wasm --steps 20      # here
 *   ... --set world=/tmp/w --set width=256                  # any sft-train parameter (repeatable)
 *
 * Prints the pipeline's log lines, then the held-out figures, ms per step and wall time.
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BackendName } from '../src/pipeline/resolve-params.ts';
import { runPipeline } from '../src/pipeline/run-pipeline.ts';
import sftTrain from '../pipelines/sft-train.ts';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const backend = (arg('--backend') ?? 'webgpu') as BackendName;
const steps = Number(arg('--steps') ?? 600);
const out = arg('--out') ?? (await mkdtemp(path.join(os.tmpdir(), 'ff-gpu-sft-')));
// `--set key=value` as the CLI takes it; these win over the defaults below
const sets = process.argv.flatMap((a, i) => (a === '--set' && process.argv[i + 1] ? [process.argv[i + 1]!] : []));
const t0 = performance.now();
const summary = await runPipeline(sftTrain, {
  out, cwd: out, seed: 1, backend,
  // one thread: the CPU data-parallel workers are files of their own, which a bundle does not carry
  params: [`steps=${steps}`, `vision_pretrain_steps=${Math.min(300, steps)}`, 'threads=1', ...sets],
  log: (line) => process.stdout.write(line + '\n'),
});
const r = summary.result as { heldout?: { yesno_accuracy?: number; multichoice_accuracy?: number; loss?: number }; ms_per_step?: number; tokens_per_s?: number };
process.stdout.write(`\n| backend | steps | held-out yes/no | multiple choice | tokens/s | wall |\n|---|---|---|---|---|---|\n`);
process.stdout.write(`| ${backend} | ${steps} | ${r.heldout?.yesno_accuracy ?? '-'} | ${r.heldout?.multichoice_accuracy ?? '-'} | ${r.tokens_per_s ?? '-'} | ${((performance.now() - t0) / 1000).toFixed(1)} s |\n`);
process.exit(0);
