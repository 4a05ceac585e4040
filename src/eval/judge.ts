/**
 * One interface for every MMHal-style judge: an LLM behind an OpenAI-compatible API
 * (openai-judge.ts) or the shapes world's rule judge (rule-judge.ts).
 */
import type { GroundTruth } from '../../schemas/shapes-world.ts';

/** What the rule judge needs to know about a shapes-world image. */
export type ShapesTruth = Pick<GroundTruth, 'objects' | 'width' | 'height' | 'background'>;

export interface JudgeItem {
  /** For messages and caches; not used to judge. */
  question_id?: string | number;
  question_type?: string;
  /** Object names in the image (MMHal `image_content`). */
  image_content: readonly string[];
  question: string;
  gt_answer: string;
  /** The model's answer to judge. */
  response: string;
  /** Shapes world only: the image's ground truth (the rule judge needs it). */
  truth?: ShapesTruth;
}

export interface JudgeResult {
  /** Rating 0-6 (MMHal rubric). */
  score: number;
  /** Whether the answer was judged to hallucinate (for LLM judges: score < 3). */
  hallucinated: boolean;
  /** The judge's text: the LLM's reply, or the rule judge's reasons. */
  explanation: string;
  /** True when the verdict came from the on-disk cache (LLM judges). */
  cached?: boolean;
}

export interface JudgeOptions {
  signal?: AbortSignal;
}

export interface Judge {
  readonly name: string;
  /** One result per item, in the items' order. */
  judge(items: readonly JudgeItem[], options?: JudgeOptions): Promise<JudgeResult[]>;
}
