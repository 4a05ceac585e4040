/**
 * Images to model input, as LLaVA prepares them: pad to a square with the CLIP mean colour
 * (centred, LLaVA's expand2square), resize (bicubic), scale to [0, 1] and normalise with the CLIP
 * mean/std. Output: HWC Float32Array [size * size * 3]. A loader keeps an LRU cache per path, since
 * the same image recurs across rounds, epochs, rollouts and reward scoring.
 */
import * as path from 'node:path';
import sharp from 'sharp';
import { BadInputError, InvalidOptionError } from '../errors.ts';

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;
const PAD = CLIP_MEAN.map((m) => Math.round(m * 255)) as [number, number, number];
/** Each channel's normalised value for each byte: (v / 255 - mean) / std, computed once. */
const NORMALISED = [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, v) => (v / 255 - CLIP_MEAN[c]!) / CLIP_STD[c]!));

/** Decodes, pads, resizes and normalises one image (file path or encoded bytes). */
export async function prepareImage(input: string | Buffer, size: number): Promise<Float32Array> {
  const source = typeof input === 'string' ? input : '<buffer>';
  let raw: { data: Buffer; info: { width: number; height: number } };
  try {
    raw = await sharp(input).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  } catch (cause) {
    throw new BadInputError(`cannot decode image: ${(cause as Error).message}`, { file: source, cause, fix: 'check that the file exists and is a JPEG/PNG/WebP image' });
  }
  const { width, height } = raw.info;
  const side = Math.max(width, height);
  let square = sharp(raw.data, { raw: { width, height, channels: 3 } });
  if (width !== height) {
    const left = Math.floor((side - width) / 2);
    const top = Math.floor((side - height) / 2);
    // materialise the padded square first: sharp would otherwise resize before extending
    const padded = await square
      .extend({ left, right: side - width - left, top, bottom: side - height - top, background: { r: PAD[0], g: PAD[1], b: PAD[2] } })
      .raw().toBuffer();
    square = sharp(padded, { raw: { width: side, height: side, channels: 3 } });
  }
  // a square image already at the model's size (the shapes world's) needs no second pass through sharp
  const pixels = side !== size ? await square.resize(size, size, { kernel: 'cubic', fit: 'fill' }).raw().toBuffer()
    : width === height ? raw.data : await square.raw().toBuffer();
  const out = new Float32Array(size * size * 3);
  for (let i = 0; i < out.length; i += 3) {
    out[i] = NORMALISED[0]![pixels[i]!]!;
    out[i + 1] = NORMALISED[1]![pixels[i + 1]!]!;
    out[i + 2] = NORMALISED[2]![pixels[i + 2]!]!;
  }
  return out;
}

export interface ImageLoaderOptions {
  /** Model input side (config.vision.imageSize). */
  size: number;
  /** Folder that relative paths are resolved against. */
  root?: string;
  /** Most images kept in memory. Default 2048 (48 px: ~28 KB each). */
  cacheSize?: number;
}

export interface ImageLoader {
  load(file: string): Promise<Float32Array>;
  readonly stats: { hits: number; misses: number; size: number };
}

export function createImageLoader(options: ImageLoaderOptions): ImageLoader {
  const { size } = options;
  const cacheSize = options.cacheSize ?? 2048;
  if (!Number.isInteger(size) || size <= 0) throw new InvalidOptionError('images.size', `must be a positive integer, got ${size}`);
  if (!Number.isInteger(cacheSize) || cacheSize < 0) throw new InvalidOptionError('images.cacheSize', `must be a non-negative integer, got ${cacheSize}`);
  // Map keeps insertion order: re-inserting on a hit makes the first key the least recently used
  const cache = new Map<string, Promise<Float32Array>>();
  const stats = { hits: 0, misses: 0, size: 0 };
  return {
    stats,
    load(file) {
      const full = options.root ? path.resolve(options.root, file) : path.resolve(file);
      const hit = cache.get(full);
      if (hit) {
        stats.hits++;
        cache.delete(full);
        cache.set(full, hit);
        return hit;
      }
      stats.misses++;
      const p = prepareImage(full, size);
      if (cacheSize > 0) {
        cache.set(full, p);
        // a failed load must not stay cached
        p.catch(() => cache.delete(full));
        while (cache.size > cacheSize) cache.delete(cache.keys().next().value!);
      }
      stats.size = cache.size;
      return p;
    },
  };
}
