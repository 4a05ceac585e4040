/**
 * The reward model's starting point: the SFT checkpoint's trunk with a fresh reward head (the LM
 * head is kept only when the reward head reads token likelihoods, ModelConfig.rewardLikelihood).
 * The reward prompt is longer than the policy's conversations (the response is followed by the
 * evaluation request and the captions), so the context can be extended: the
 * learned position table grows, new positions starting as copies of the last trained one (a
 * neutral start that reward training then adapts), everything else copied unchanged.
 */
import * as path from 'node:path';
import { CheckpointError, InvalidOptionError } from '../errors.ts';
import { assignWeights, loadCheckpoint, WEIGHTS_FILE, type LoadedCheckpoint } from './checkpoint.ts';
import type { ModelConfig, RewardPooling } from './config.ts';
import { createModel, type MultimodalModel } from './multimodal-model.ts';
import type { SafeTensor } from './safetensors.ts';

const POSITIONS = 'lm.pos_embed.weight';

export interface LoadRewardTrunkOptions {
  /** Context of the reward model; default (and at least) the checkpoint's. */
  contextLength?: number;
  /** Seed of the fresh reward head. */
  seed?: number;
  /** Which positions the reward head reads (ModelConfig.rewardPooling); default: as the checkpoint says, else 'last'. */
  rewardPooling?: RewardPooling;
  /** Whether the reward head also reads token likelihoods (ModelConfig.rewardLikelihood); default: as the checkpoint says, else false. */
  rewardLikelihood?: boolean;
  /** The caption-match term (ModelConfig.rewardFactMatch, needs rewardLikelihood); default: as the checkpoint says, else false. */
  rewardFactMatch?: boolean;
  label?: string;
}

/** Position table [rows, width] extended to `length` rows by repeating the last row. */
export function extendPositions(table: SafeTensor, length: number): SafeTensor {
  const [rows, width] = table.shape as [number, number];
  if (length <= rows) return table;
  const data = new Float32Array(length * width);
  data.set((table.data as Float32Array).subarray(0, rows * width));
  const last = (table.data as Float32Array).subarray((rows - 1) * width, rows * width);
  for (let r = rows; r < length; r++) data.set(last, r * width);
  return { dtype: 'F32', shape: [length, width], data };
}

/**
 * A reward model from a checkpoint: from an SFT checkpoint (fresh reward head) or a reward
 * checkpoint (its trained head), with the context extended to `contextLength` when longer.
 */
export async function loadRewardTrunk(dir: string, options: LoadRewardTrunkOptions = {}): Promise<{ model: MultimodalModel; checkpoint: LoadedCheckpoint }> {
  const checkpoint = await loadCheckpoint(dir);
  const saved = checkpoint.config.language.contextLength;
  const want = options.contextLength ?? saved;
  if (!Number.isInteger(want) || want <= 0) throw new InvalidOptionError('contextLength', `must be a positive integer, got ${String(want)}`);
  const contextLength = Math.max(want, saved);
  const rewardPooling = options.rewardPooling ?? checkpoint.config.rewardPooling;
  const rewardLikelihood = options.rewardLikelihood ?? checkpoint.config.rewardLikelihood ?? false;
  if (rewardLikelihood && !checkpoint.config.heads.includes('lm')) {
    throw new CheckpointError(`${dir} has no LM head, which a likelihood-reading reward head needs`, { file: dir, fix: 'start from an SFT checkpoint (or a reward checkpoint trained with likelihood=true), or set likelihood=false' });
  }
  const rewardFactMatch = options.rewardFactMatch ?? checkpoint.config.rewardFactMatch ?? false;
  if (rewardFactMatch && !rewardLikelihood) {
    throw new InvalidOptionError('rewardFactMatch', 'the caption-match term is part of the likelihood-reading reward head', { fix: 'set likelihood=true too, or fact_match=false' });
  }
  const { rewardLikelihood: _drop, rewardFactMatch: _dropFact, ...base } = checkpoint.config;
  const config: ModelConfig = {
    ...base,
    heads: rewardLikelihood ? ['reward', 'lm'] : ['reward'],
    language: { ...checkpoint.config.language, contextLength },
    ...(rewardPooling ? { rewardPooling } : {}),
    ...(rewardLikelihood ? { rewardLikelihood } : {}),
    ...(rewardFactMatch ? { rewardFactMatch } : {}),
  };
  const weights = new Map(checkpoint.weights);
  const table = weights.get(POSITIONS);
  // rotary positions have no table: any context works
  if (!table && config.language.positions === 'rotary') return finish(config, weights, checkpoint, options);
  if (!table) throw new CheckpointError(`weights have no "${POSITIONS}"`, { file: path.join(checkpoint.dir, WEIGHTS_FILE), fix: 'the checkpoint is not a factflow model' });
  weights.set(POSITIONS, extendPositions(table, contextLength));
  return finish(config, weights, checkpoint, options);
}

function finish(config: ModelConfig, weights: Map<string, SafeTensor>, checkpoint: LoadedCheckpoint, options: LoadRewardTrunkOptions): { model: MultimodalModel; checkpoint: LoadedCheckpoint } {
  const model = createModel(config, { seed: options.seed ?? 0, label: options.label ?? 'reward' });
  try {
    assignWeights(model, weights, { allowMissing: (name) => name.startsWith('head.'), file: path.join(checkpoint.dir, WEIGHTS_FILE) });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model, checkpoint: { ...checkpoint, config } };
}
