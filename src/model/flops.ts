/**
 * Matmul FLOPs of the model, for throughput reports (achieved FLOP/s against a roofline).
 * Counts 2 * m * k * n per product (projections, attention scores and mixing, heads); elementwise
 * work is left out. A training step costs about 3x the forward (backward = two products per one).
 */
import { imageTokenCount, type ModelConfig } from './config.ts';

export interface FlopShape {
  batch: number;
  length: number;
  /** Rows whose image goes through the vision encoder. */
  imageRows: number;
  /** Hidden rows the LM head runs on (loss tokens in training; batch in decoding). */
  headRows: number;
}

function blockFlops(tokens: number, seqs: number, length: number, keys: number, width: number, mlpRatio: number): number {
  const proj = 2 * tokens * width * width * 4;
  const mlp = 2 * tokens * width * width * mlpRatio * 2;
  const attn = 2 * seqs * length * keys * width * 2;
  return proj + mlp + attn;
}

/** Forward-pass matmul FLOPs; `keys` defaults to `length` (no cache). */
export function forwardFlops(config: ModelConfig, s: FlopShape & { keys?: number }): number {
  const v = config.vision;
  const l = config.language;
  const n = imageTokenCount(config);
  let f = 0;
  if (s.imageRows > 0) {
    const tokens = s.imageRows * n;
    f += 2 * tokens * v.patchSize * v.patchSize * 3 * v.width;
    f += v.layers * blockFlops(tokens, s.imageRows, n, n, v.width, v.mlpRatio);
    f += 2 * tokens * 2 * v.width * l.width; // projector
    f += 2 * s.imageRows * s.length * n * l.width; // placement product
  }
  const tokens = s.batch * s.length;
  f += l.layers * blockFlops(tokens, s.batch, s.length, s.keys ?? s.length, l.width, l.mlpRatio);
  f += 2 * s.headRows * l.width * l.vocabSize;
  return f;
}

/** One training step (forward + backward) ~ 3x the forward. */
export function trainingFlops(config: ModelConfig, s: FlopShape): number {
  return 3 * forwardFlops(config, s);
}
