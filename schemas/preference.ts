/**
 * Human preference between two responses to one prompt (LLaVA-RLHF human
 * preference data), with optional facts for the factually augmented reward model.
 */
import type { RecordSchema } from './field.ts';
import { checkFacts, checkImagePath, checkNoImageToken, checkNonEmpty, checkTurns, defineRecordSchema, FACTS_TYPE, firstReason, TURNS_TYPE, type Turn } from './validate-util.ts';

export interface Preference {
  id: string;
  image: string | null;
  /** Prompt turns: human first, alternating, ending with the human turn being answered. */
  conversations: Turn[];
  /** The two candidate responses (value text only). */
  output_1: string;
  output_2: string;
  /** Which output people preferred. */
  preference: 1 | 2;
  /** Whether the annotators flagged a hallucination; null when not annotated. */
  hallucination: boolean | null;
  facts: string[];
}

export const preferenceSchema: RecordSchema<Preference> = defineRecordSchema<Preference>({
  name: 'preference',
  version: 1,
  fields: [
    { name: 'id', type: 'string' },
    { name: 'image', type: 'string', nullable: true },
    { name: 'conversations', type: TURNS_TYPE },
    { name: 'output_1', type: 'string' },
    { name: 'output_2', type: 'string' },
    { name: 'preference', type: 'int8' },
    { name: 'hallucination', type: 'bool', nullable: true },
    { name: 'facts', type: FACTS_TYPE },
  ],
  rules: (r) =>
    firstReason(
      () => checkNonEmpty(r.id, 'id'),
      () => checkImagePath(r.image),
      () => checkTurns(r.conversations, { image: r.image, ending: 'human' }),
      () => checkNonEmpty(r.output_1, 'output_1'),
      () => checkNonEmpty(r.output_2, 'output_2'),
      () => checkNoImageToken(r.output_1, 'output_1'),
      () => checkNoImageToken(r.output_2, 'output_2'),
      () => (r.preference === 1 || r.preference === 2 ? null : `field "preference" must be 1 or 2, got ${r.preference}.`),
      () => checkFacts(r.facts),
    ),
});

