/** Every record kind by name, for readers that meet a schema name in a file or manifest. */
import type { RecordSchema } from './field.ts';
import { conversationSchema } from './conversation.ts';
import { evalSchema } from './eval.ts';
import { preferenceSchema } from './preference.ts';
import { rlPromptSchema } from './rl-prompt.ts';
import { rolloutSchema } from './rollout.ts';

export const SCHEMAS: readonly RecordSchema<unknown>[] = [conversationSchema, preferenceSchema, rlPromptSchema, rolloutSchema, evalSchema];

/** The schema called `name`, or undefined. */
export function schemaByName(name: string): RecordSchema<unknown> | undefined {
  return SCHEMAS.find((s) => s.name === name);
}
