/**
 * Checkpoint folders:
 *
 *   model.safetensors      weights by parameter name (F32; linear weights stored [in, out])
 *   config.json            the ModelConfig
 *   tokenizer.json         + tokenizer_config.json
 *   optimizer.safetensors  AdamW moments (`m.<name>`, `v.<name>`), when an optimizer is given
 *   trainer_state.json     { step, optimizer: {step, options}, ...the trainer's own fields }
 *
 * Saving is atomic: everything goes to a temporary sibling folder that is renamed into place, so
 * a reader (or a resumed run after kill -9) sees the previous checkpoint or the new one, whole.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CheckpointError } from '../errors.ts';
import type { AdamW, AdamWOptions } from './adamw.ts';
import { resolveModelConfig, type HeadName, type ModelConfig } from './config.ts';
import { createModel, type MultimodalModel } from './multimodal-model.ts';
import { readSafetensors, writeSafetensors, type SafeTensor } from './safetensors.ts';
import { tokenizerFromJson, type TextTokenizer } from './tokenizer.ts';

export const WEIGHTS_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const CONFIG_FILE = 'config.json';
export const STATE_FILE = 'trainer_state.json';

export interface SaveCheckpointOptions {
  model: MultimodalModel;
  tokenizer: TextTokenizer;
  optimizer?: AdamW;
  /** Trainer fields (step, data position, rng state, metrics so far...), stored in trainer_state.json. */
  state?: Record<string, unknown>;
}

/** Weights (or any tensors) as F32 safetensors entries, in the given order. */
export async function tensorsToSafe(entries: Iterable<[string, tf.Tensor]>): Promise<Map<string, SafeTensor>> {
  const out = new Map<string, SafeTensor>();
  for (const [name, t] of entries) out.set(name, { dtype: 'F32', shape: [...t.shape], data: Float32Array.from(await t.data() as Float32Array) });
  return out;
}

async function exists(p: string): Promise<boolean> {
  try { await stat(p); return true; } catch { return false; }
}

/** Writes a whole checkpoint folder atomically (replacing an older one at `dir`). */
export async function saveCheckpoint(dir: string, options: SaveCheckpointOptions): Promise<void> {
  const { model, tokenizer, optimizer } = options;
  const parent = path.dirname(path.resolve(dir));
  await mkdir(parent, { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmp = `${dir}.tmp-${tag}`;
  await mkdir(tmp, { recursive: true });
  try {
    await writeSafetensors(path.join(tmp, WEIGHTS_FILE), await tensorsToSafe(model.parameters().map((p) => [p.name, p.variable])), { format: 'pt', producer: 'factflow' });
    await writeFile(path.join(tmp, CONFIG_FILE), JSON.stringify(model.config, null, 2) + '\n');
    await writeFile(path.join(tmp, 'tokenizer.json'), JSON.stringify(tokenizer.json));
    await writeFile(path.join(tmp, 'tokenizer_config.json'), JSON.stringify(tokenizer.config, null, 2) + '\n');
    const state: Record<string, unknown> = { ...(options.state ?? {}) };
    if (optimizer) {
      const s = await optimizer.state();
      const moments = new Map<string, SafeTensor>([...s.moments].map(([k, x]) => [k, { dtype: 'F32', shape: x.shape, data: x.data }]));
      await writeSafetensors(path.join(tmp, OPTIMIZER_FILE), moments, { step: String(s.step) });
      state.optimizer = { step: s.step, options: optimizer.options };
    }
    await writeFile(path.join(tmp, STATE_FILE), JSON.stringify(state, null, 2) + '\n');
    // swap: old -> .old-*, tmp -> dir, drop old. A crash in between leaves .old-* (loadable).
    const old = `${dir}.old-${tag}`;
    const hadOld = await exists(dir);
    if (hadOld) await rename(dir, old);
    await rename(tmp, dir);
    if (hadOld) await rm(old, { recursive: true, force: true });
  } catch (cause) {
    await rm(tmp, { recursive: true, force: true });
    throw cause;
  }
}

export interface LoadedCheckpoint {
  dir: string;
  config: ModelConfig;
  weights: Map<string, SafeTensor>;
  tokenizer: TextTokenizer;
  /** trainer_state.json (empty object when absent). */
  state: Record<string, unknown>;
  /** AdamW moments and options, when the checkpoint has them. */
  optimizer?: { step: number; options: AdamWOptions; tensors: Map<string, SafeTensor> };
}

/** A run folder's `checkpoint/`, or the folder itself when it is a checkpoint (holds config.json). */
export async function checkpointFolder(dir: string): Promise<string> {
  return (await exists(path.join(dir, CONFIG_FILE))) ? dir : path.join(dir, 'checkpoint');
}

/** Finds the folder to read: `dir`, or the `.old-*` left by a save interrupted mid-swap. */
async function resolveDir(dir: string): Promise<string> {
  if (await exists(path.join(dir, CONFIG_FILE))) return dir;
  const parent = path.dirname(path.resolve(dir));
  const base = path.basename(dir);
  let names: string[] = [];
  try { names = await readdir(parent); } catch { /* parent missing: reported below */ }
  const old = names.filter((n) => n.startsWith(`${base}.old-`)).sort();
  if (old.length > 0) return path.join(parent, old[old.length - 1]!);
  throw new CheckpointError(`no checkpoint at ${dir} (no ${CONFIG_FILE})`, { file: dir, fix: 'train first, or point at a folder written by a trainer (it holds model.safetensors and config.json)' });
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch (cause) {
    throw new CheckpointError(`cannot read ${path.basename(file)}`, { file, cause, fix: 'the checkpoint is incomplete; save it again' });
  }
  try { return JSON.parse(text) as Record<string, unknown>; } catch (cause) {
    throw new CheckpointError(`${path.basename(file)} is not valid JSON: ${(cause as Error).message}`, { file, cause, fix: 'the checkpoint is corrupt; save it again' });
  }
}

/** Reads a checkpoint folder without building a model. */
export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const where = await resolveDir(dir);
  const rawConfig = await readJson(path.join(where, CONFIG_FILE));
  let config: ModelConfig;
  try {
    const raw = rawConfig as Parameters<typeof resolveModelConfig>[0];
    // a config.json without `positions` predates rotary positions: it had a learned table
    const old = raw !== null && typeof raw === 'object' && raw.language !== null && typeof raw.language === 'object';
    config = resolveModelConfig(old ? { ...raw, language: { positions: 'learned', ...raw.language } } : raw);
  } catch (cause) {
    throw new CheckpointError(`config.json is not a valid model config: ${(cause as Error).message}`, { file: path.join(where, CONFIG_FILE), cause });
  }
  const { tensors: weights } = await readSafetensors(path.join(where, WEIGHTS_FILE));
  const tokJson = await readJson(path.join(where, 'tokenizer.json'));
  let tokConfig: Record<string, unknown> = {};
  if (await exists(path.join(where, 'tokenizer_config.json'))) tokConfig = await readJson(path.join(where, 'tokenizer_config.json'));
  const tokenizer = tokenizerFromJson(tokJson, tokConfig, path.join(where, 'tokenizer.json'));
  const state = (await exists(path.join(where, STATE_FILE))) ? await readJson(path.join(where, STATE_FILE)) : {};
  const result: LoadedCheckpoint = { dir: where, config, weights, tokenizer, state };
  if (await exists(path.join(where, OPTIMIZER_FILE))) {
    const { tensors, metadata } = await readSafetensors(path.join(where, OPTIMIZER_FILE));
    const info = (state.optimizer ?? {}) as { step?: number; options?: AdamWOptions };
    result.optimizer = { step: info.step ?? Number(metadata.step ?? 0), options: info.options ?? {}, tensors };
  }
  return result;
}

/**
 * Copies weights into a model by name. Every model parameter must be present except those
 * `allowMissing` accepts (fresh heads); weights the model lacks (e.g. an SFT checkpoint's LM head
 * when building a reward model) are ignored. Shapes must match.
 */
export function assignWeights(model: MultimodalModel, weights: ReadonlyMap<string, SafeTensor>, options: { allowMissing?: (name: string) => boolean; file?: string } = {}): void {
  for (const p of model.parameters()) {
    const w = weights.get(p.name);
    if (!w) {
      if (options.allowMissing?.(p.name)) continue;
      throw new CheckpointError(`weights have no "${p.name}"`, { file: options.file, fix: 'the checkpoint was saved from a different model configuration' });
    }
    if (w.shape.join() !== p.shape.join()) {
      throw new CheckpointError(`"${p.name}" has shape [${w.shape}] in the checkpoint, the model wants [${p.shape}]`, { file: options.file, fix: 'the checkpoint was saved from a different model configuration' });
    }
    const t = tf.tensor(w.data as Float32Array, w.shape, 'float32');
    p.variable.assign(t);
    t.dispose();
  }
}

export interface LoadModelOptions {
  /** Heads to build (default: the checkpoint's). Heads absent from the checkpoint start fresh. */
  heads?: HeadName[];
  /** Seed for fresh heads. */
  seed?: number;
  label?: string;
}

/**
 * Builds a model from a checkpoint: the trunk must be complete; heads asked for but not saved
 * (a reward head on an SFT trunk, a value head on a reward trunk) are initialised fresh, the
 * value head at zero.
 */
export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<{ model: MultimodalModel; checkpoint: LoadedCheckpoint }> {
  const checkpoint = await loadCheckpoint(dir);
  const config: ModelConfig = { ...checkpoint.config, heads: options.heads ?? checkpoint.config.heads };
  const model = createModel(config, { seed: options.seed ?? 0, label: options.label });
  try {
    assignWeights(model, checkpoint.weights, { allowMissing: (name) => name.startsWith('head.'), file: path.join(checkpoint.dir, WEIGHTS_FILE) });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, checkpoint };
}

/** Restores AdamW moments and step from a loaded checkpoint (resume). */
export function restoreOptimizer(optimizer: AdamW, checkpoint: LoadedCheckpoint): void {
  if (!checkpoint.optimizer) throw new CheckpointError('checkpoint has no optimizer state', { file: checkpoint.dir, fix: 'resume from a checkpoint saved with its optimizer, or start a fresh optimizer' });
  const moments = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, v] of checkpoint.optimizer.tensors) moments.set(k, { shape: v.shape, data: v.data as Float32Array });
  optimizer.load({ step: checkpoint.optimizer.step, moments });
}
