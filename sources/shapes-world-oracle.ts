/**
 * Oracle images of a shapes world: every grid cell an object covers shows the object's colour in
 * its left half and a flat code for its shape in its right half, on mid grey. Colour and shape are
 * then equally plain pixel facts, one patch each, so a policy trained on them shows what the
 * language side can do with a perfect encoder (the default run's policy did no better on them:
 * README). Same ground truth, same questions: only the pixels change.
 */
import sharp from 'sharp';
import { COLOR_RGB, GRID_CELL } from './shapes-world-scene.ts';
import type { GroundTruth, Shape } from '../schemas/shapes-world.ts';

/** Flat code per shape: saturated colours, told apart from each other after JPEG. */
export const ORACLE_SHAPE_RGB: Readonly<Record<Shape, readonly [number, number, number]>> = {
  circle: [255, 0, 0],
  square: [0, 255, 0],
  triangle: [0, 0, 255],
  star: [255, 255, 0],
  diamond: [0, 255, 255],
  hexagon: [255, 0, 255],
};

const BACKGROUND = 128;
/** Least overlap, in pixels along each side, for an object to own a cell (a large object's quarter is >= 8). */
const MIN_OVERLAP = 6;

/** Index (row-major) of each cell's object in `gt.objects`, or -1; a later object wins a shared cell. */
export function oracleCells(gt: Pick<GroundTruth, 'width' | 'height' | 'objects'>, cell = GRID_CELL): Int32Array {
  const cols = Math.ceil(gt.width / cell);
  const rows = Math.ceil(gt.height / cell);
  const owner = new Int32Array(cols * rows).fill(-1);
  gt.objects.forEach((o, k) => {
    const [x0, y0, x1, y1] = o.box;
    for (let cy = 0; cy < rows; cy++) {
      for (let cx = 0; cx < cols; cx++) {
        const ox = Math.min(x1, (cx + 1) * cell) - Math.max(x0, cx * cell);
        const oy = Math.min(y1, (cy + 1) * cell) - Math.max(y0, cy * cell);
        if (ox >= MIN_OVERLAP && oy >= MIN_OVERLAP) owner[cy * cols + cx] = k;
      }
    }
  });
  return owner;
}

/** The oracle image as raw RGB bytes [height * width * 3]. */
export function oraclePixels(gt: Pick<GroundTruth, 'width' | 'height' | 'objects'>, cell = GRID_CELL): Buffer {
  const { width, height } = gt;
  const cols = Math.ceil(width / cell);
  const owner = oracleCells(gt, cell);
  const out = Buffer.alloc(width * height * 3, BACKGROUND);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const k = owner[Math.floor(y / cell) * cols + Math.floor(x / cell)]!;
      if (k < 0) continue;
      const o = gt.objects[k]!;
      const rgb = x % cell < cell / 2 ? COLOR_RGB[o.color] : ORACLE_SHAPE_RGB[o.shape];
      out.set(rgb, (y * width + x) * 3);
    }
  }
  return out;
}

/** Writes the oracle image as a JPEG without chroma subsampling (the halves stay apart). */
export async function writeOracleImage(gt: Pick<GroundTruth, 'width' | 'height' | 'objects'>, file: string): Promise<void> {
  await sharp(oraclePixels(gt), { raw: { width: gt.width, height: gt.height, channels: 3 } }).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toFile(file);
}
