/**
 * One VQA-v2 question joined with its annotation: what `sources/vqav2.ts` emits and
 * `transforms/vqav2-multiround.ts` consumes. An in-flight record, never written to shards,
 * so it has a type and the answer-type vocabulary but no Arrow schema.
 */
export const VQA_ANSWER_TYPES = ['yes/no', 'number', 'other'] as const;
export type VqaAnswerType = (typeof VQA_ANSWER_TYPES)[number];

export interface VqaAnswer {
  readonly answer: string;
  /** `"yes"`, `"maybe"` or `"no"` in the official files. */
  readonly answer_confidence: string;
  /** 1..10. */
  readonly answer_id: number;
}

export interface Vqav2Item {
  readonly question_id: number;
  readonly image_id: number;
  readonly question: string;
  /** `multiple_choice_answer`: the most common of the ten human answers (always a string, "2" for counts). */
  readonly answer: string;
  readonly answer_type: VqaAnswerType;
  readonly question_type: string;
  readonly answers: readonly VqaAnswer[];
  /** The files' `data_subtype` (e.g. `train2014`); '' when neither file states it. */
  readonly subtype: string;
}
