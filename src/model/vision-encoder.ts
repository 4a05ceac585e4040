/**
 * ViT-style image encoder: patches flattened and embedded by one matmul, learned positions,
 * pre-norm transformer blocks. Its output is the grid of features from before and after the last
 * block, concatenated per patch (as LLaVA-RLHF feeds its projector), then normalised.
 */
import * as tf from '@tensorflow/tfjs';
import { initStdFor, type ModelConfig } from './config.ts';
import { layerNorm, linear } from './ops.ts';
import type { ParameterStore } from './parameters.ts';
import { addBlockParameters, transformerBlock, type BlockShape } from './transformer-block.ts';

export function visionBlockShape(config: ModelConfig): BlockShape {
  const v = config.vision;
  return { width: v.width, heads: v.heads, mlpRatio: v.mlpRatio, activation: config.activation };
}

export function addVisionParameters(store: ParameterStore, config: ModelConfig): void {
  const v = config.vision;
  const std = (fanIn: number) => initStdFor(config, fanIn);
  const patchDim = v.patchSize * v.patchSize * 3;
  const tokens = (v.imageSize / v.patchSize) ** 2;
  store.add('vision.patch_embed.weight', 'vision.embed', [patchDim, v.width], { kind: 'normal', std: std(patchDim) });
  store.add('vision.patch_embed.bias', 'vision.embed', [v.width], { kind: 'zeros' });
  store.add('vision.pos_embed', 'vision.embed', [tokens, v.width], { kind: 'normal', std: std(v.width) }, { decay: false });
  for (let i = 0; i < v.layers; i++) addBlockParameters(store, `vision.blocks.${i}`, visionBlockShape(config), std, Math.sqrt(2 * v.layers));
  store.add('vision.ln_out.weight', 'vision.ln_out', [2 * v.width], { kind: 'ones' });
  store.add('vision.ln_out.bias', 'vision.ln_out', [2 * v.width], { kind: 'zeros' });
}

/**
 * Rearranges HWC images [count, size, size, 3] into rows of flattened patches
 * [count * patches, patch * patch * 3] (row-major patch grid; each patch row-major HWC).
 * Plain JS: it is input preparation, needs no gradient, and avoids a rank-6 transpose.
 */
export function patchify(pixels: Float32Array, count: number, size: number, patch: number): Float32Array {
  const side = size / patch;
  const patchDim = patch * patch * 3;
  const out = new Float32Array(count * side * side * patchDim);
  let o = 0;
  for (let n = 0; n < count; n++) {
    const base = n * size * size * 3;
    for (let py = 0; py < side; py++) {
      for (let px = 0; px < side; px++) {
        for (let y = 0; y < patch; y++) {
          const start = base + ((py * patch + y) * size + px * patch) * 3;
          out.set(pixels.subarray(start, start + patch * 3), o);
          o += patch * 3;
        }
      }
    }
  }
  return out;
}

/**
 * Encodes `count` images given as patch rows [count * patches, patchDim]; returns features
 * [count * patches, 2 * width] (before and after the last block, normalised).
 */
export function encodeImages(store: ParameterStore, config: ModelConfig, patches: tf.Tensor2D, count: number): tf.Tensor2D {
  const v = config.vision;
  const tokens = (v.imageSize / v.patchSize) ** 2;
  const shape = visionBlockShape(config);
  const emb = linear(patches, store.get('vision.patch_embed.weight') as tf.Tensor2D, store.get('vision.patch_embed.bias') as tf.Tensor1D);
  let x = tf.reshape(tf.add(tf.reshape(emb, [count, tokens, v.width]), store.get('vision.pos_embed')), [count * tokens, v.width]) as tf.Tensor2D;
  let before = x;
  for (let i = 0; i < v.layers; i++) {
    before = x;
    x = transformerBlock(store, `vision.blocks.${i}`, shape, x, { batch: count, length: tokens, bias: null, eps: config.layerNormEps }).y;
  }
  const both = tf.concat([before, x], 1) as tf.Tensor2D;
  return layerNorm(both, store.get('vision.ln_out.weight') as tf.Tensor1D, store.get('vision.ln_out.bias') as tf.Tensor1D, config.layerNormEps);
}
