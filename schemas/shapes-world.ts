/**
 * The shapes world's ground truth: what every generated image really contains.
 * Shared by the generator (sources/), the rule judge (src/eval/) and evaluation,
 * so all of them speak one vocabulary.
 */
export const SHAPES = ['circle', 'square', 'triangle', 'star', 'diamond', 'hexagon'] as const;
export const COLORS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange', 'white', 'black'] as const;
export const SIZES = ['small', 'large'] as const;
export const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'] as const;

export type Shape = (typeof SHAPES)[number];
export type Color = (typeof COLORS)[number];
export type Size = (typeof SIZES)[number];

export interface ShapeObject {
  shape: Shape;
  color: Color;
  size: Size;
  /** Pixel box, 0-based, [x0, y0, x1, y1] with x1/y1 exclusive. */
  box: [number, number, number, number];
}

/** One line of `<world>/ground_truth.jsonl`. */
export interface GroundTruth {
  /** Path relative to `<world>/images`, e.g. `coco/train2017/000000000042.jpg`. */
  image: string;
  /** Numeric id as the dataset names it (COCO image_id or Flickr30k id). */
  image_id: number;
  dataset: 'coco' | 'flickr30k';
  /** `train` images feed SFT/RM/PPO; `eval` images only POPE/MMHal. */
  split: 'train' | 'eval';
  width: number;
  height: number;
  background: string;
  objects: ShapeObject[];
}

/** "red circle" style key used for co-occurrence and hallucination checks. */
export function objectKey(o: { color: string; shape: string }): string {
  return `${o.color} ${o.shape}`;
}
