/**
 * One A-OKVQA question (`aokvqa_v1p0_{train,val,test}.json`): what `sources/aokvqa.ts`
 * emits and `transforms/aokvqa-multichoice.ts` consumes. An in-flight record, never written
 * to shards, so it has a type but no Arrow schema.
 */
export interface AokvqaItem {
  /** `train` | `val` | `test`. */
  readonly split: string;
  /** COCO 2017 image id. */
  readonly image_id: number;
  readonly question_id: string;
  readonly question: string;
  /** Four answer options in the official data. */
  readonly choices: readonly string[];
  /** Index into `choices`; null in the test split (answers are hidden there). */
  readonly correct_choice_idx: number | null;
  readonly direct_answers: readonly string[];
  readonly difficult_direct_answer: boolean;
  /** Three free-text explanations; empty in the test split. */
  readonly rationales: readonly string[];
}
