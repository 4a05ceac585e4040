/**
 * One answered evaluation question (MMHal-Bench style or POPE), with the judge's verdict.
 */
import type { RecordSchema } from './field.ts';
import { checkFacts, checkImagePath, checkNonEmpty, defineRecordSchema, firstReason } from './validate-util.ts';

export interface EvalRecord {
  question_id: string;
  image: string;
  question: string;
  /** e.g. MMHal's attribute/adversarial/comparison/..., or POPE's random/popular/adversarial. */
  question_type: string;
  gt_answer: string;
  facts: string[];
  model_answer: string;
  /** Judge score (MMHal 0-6); null when not judged. */
  score: number | null;
  hallucinated: boolean | null;
  /** The judge's full reply ("" when judged by rule). */
  judge_text: string;
}

export const evalSchema: RecordSchema<EvalRecord> = defineRecordSchema<EvalRecord>({
  name: 'eval',
  version: 1,
  fields: [
    { name: 'question_id', type: 'string' },
    { name: 'image', type: 'string' },
    { name: 'question', type: 'string' },
    { name: 'question_type', type: 'string' },
    { name: 'gt_answer', type: 'string' },
    { name: 'facts', type: { list: 'string' } },
    { name: 'model_answer', type: 'string' },
    { name: 'score', type: 'int8', nullable: true },
    { name: 'hallucinated', type: 'bool', nullable: true },
    { name: 'judge_text', type: 'string' },
  ],
  rules: (r) =>
    firstReason(
      () => checkNonEmpty(r.question_id, 'question_id'),
      () => checkNonEmpty(r.image, 'image'),
      () => checkImagePath(r.image),
      () => checkNonEmpty(r.question, 'question'),
      () => checkFacts(r.facts),
    ),
});
