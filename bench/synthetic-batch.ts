/** A shapes-world-like training batch for benches: an image in every row at positions 30.., the last `answer` tokens learned. */
import { imageTokenCount, type ModelConfig } from '../src/model/config.ts';
import type { TrainBatch } from '../src/model/train-step.ts';
import type { Rng } from '../src/stream/random.ts';

export function syntheticImageBatch(cfg: ModelConfig, rng: Rng, B: number, T: number, answer: number): TrainBatch {
  const n = imageTokenCount(cfg);
  const px = cfg.vision.imageSize ** 2 * 3;
  const imagePositions = new Int32Array(B * n);
  for (let b = 0; b < B; b++) for (let k = 0; k < n; k++) imagePositions[b * n + k] = 30 + k;
  const lossMask = new Uint8Array(B * T);
  for (let b = 0; b < B; b++) lossMask.fill(1, b * T + T - answer, b * T + T);
  return {
    batch: B, length: T, imagePositions, lossMask,
    ids: Int32Array.from({ length: B * T }, () => 5 + rng.int(cfg.language.vocabSize - 5)),
    images: Float32Array.from({ length: B * px }, () => rng.normal()),
  };
}
