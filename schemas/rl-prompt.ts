/**
 * PPO prompt: one human turn, the kind of caption it asks for (which drives the
 * correctness bonus) and the facts the factually augmented reward model reads.
 */
import type { FieldSpec, RecordSchema } from './field.ts';
import { checkFacts, checkImagePath, checkNonEmpty, checkTurns, defineRecordSchema, FACTS_TYPE, firstReason, TURNS_TYPE, type Turn } from './validate-util.ts';

/** 1 general, 2-5 answer A-D, 6 "No", 7 "Yes". */
export type CaptionType = 1 | 2 | 3 | 4 | 5 | 6 | 7;

export interface RlPrompt {
  id: string;
  image: string | null;
  /** Exactly one human turn. */
  conversations: Turn[];
  caption_type: CaptionType;
  /** Scales the length term of the reward; default 1. */
  length_bonus: number;
  facts: string[];
}

export const RL_PROMPT_FIELDS: readonly FieldSpec[] = [
  { name: 'id', type: 'string' },
  { name: 'image', type: 'string', nullable: true },
  { name: 'conversations', type: TURNS_TYPE },
  { name: 'caption_type', type: 'int8' },
  { name: 'length_bonus', type: 'float32' },
  { name: 'facts', type: FACTS_TYPE },
];

/** The prompt rules, shared with rollout records (which carry the prompt fields). */
export function checkRlPrompt(r: RlPrompt): string | null {
  return firstReason(
    () => checkNonEmpty(r.id, 'id'),
    () => checkImagePath(r.image),
    () => checkTurns(r.conversations, { image: r.image, ending: 'human', exactly: 1 }),
    () => (r.caption_type >= 1 && r.caption_type <= 7 ? null : `field "caption_type" must be in 1..7, got ${r.caption_type}.`),
    () => (r.length_bonus > 0 ? null : `field "length_bonus" must be > 0, got ${r.length_bonus}.`),
    () => checkFacts(r.facts),
  );
}

export const rlPromptSchema: RecordSchema<RlPrompt> = defineRecordSchema<RlPrompt>({
  name: 'rl-prompt',
  version: 1,
  fields: RL_PROMPT_FIELDS,
  rules: checkRlPrompt,
});
