/**
 * The shapes world's `ground_truth.jsonl` (one GroundTruth per image) as a Map keyed by
 * the image path relative to `<world>/images` (`coco/val2014/COCO_val2014_…jpg`), for the
 * rule judge. Small by construction (a few hundred images); `split` keeps only `eval` or
 * `train` images.
 */
import { BadInputError, BadRecordError, InvalidOptionError } from '../src/errors.ts';
import type { GroundTruth } from '../schemas/shapes-world.ts';
import { readLines } from './line-records.ts';

export interface LoadShapesTruthOptions {
  /** Keep only images of this split; default all. */
  split?: GroundTruth['split'];
  signal?: AbortSignal;
}

function check(obj: unknown): string | null {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return 'expected a JSON object';
  const g = obj as Record<string, unknown>;
  if (typeof g.image !== 'string' || g.image === '') return '"image" must be a non-empty string';
  if (typeof g.width !== 'number' || typeof g.height !== 'number') return '"width" and "height" must be numbers';
  if (typeof g.background !== 'string') return '"background" must be a string';
  if (!Array.isArray(g.objects)) return '"objects" must be a list';
  for (const o of g.objects as unknown[]) {
    const s = o as Record<string, unknown> | null;
    if (!s || typeof s.shape !== 'string' || typeof s.color !== 'string' || typeof s.size !== 'string' || !Array.isArray(s.box) || s.box.length !== 4) {
      return 'each object needs shape, color, size and a 4-number box';
    }
  }
  return null;
}

export async function loadShapesTruth(file: string, options: LoadShapesTruthOptions = {}): Promise<Map<string, GroundTruth>> {
  if (typeof file !== 'string' || file === '') throw new InvalidOptionError('truth', 'must be the path of a shapes-world ground_truth.jsonl');
  if (options.split !== undefined && options.split !== 'eval' && options.split !== 'train') {
    throw new InvalidOptionError('split', `must be "eval" or "train", got ${JSON.stringify(options.split)}`);
  }
  const out = new Map<string, GroundTruth>();
  try {
    for await (const { text, line } of readLines(file, { signal: options.signal })) {
      if (text.trim() === '') continue;
      let obj: unknown;
      try {
        obj = JSON.parse(text);
      } catch (cause) {
        throw new BadRecordError(`not a JSON object: ${(cause as Error).message}`, { file, line, cause, fix: 'regenerate the shapes world' });
      }
      const reason = check(obj);
      if (reason) throw new BadRecordError(`not a ground-truth line: ${reason}`, { file, line, fix: 'regenerate the shapes world' });
      const gt = obj as GroundTruth;
      if (options.split !== undefined && gt.split !== options.split) continue;
      if (out.has(gt.image)) throw new BadRecordError(`image ${gt.image} appears twice`, { file, line, fix: 'regenerate the shapes world' });
      out.set(gt.image, gt);
    }
  } catch (err) {
    if (err instanceof BadInputError) {
      throw new BadInputError(`cannot read the ground truth (${err.detail})`, { file, cause: err, fix: 'point truth= at <world>/ground_truth.jsonl (run pipelines/shapes-world.ts first)' });
    }
    throw err;
  }
  return out;
}
