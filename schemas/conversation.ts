/**
 * SFT conversation record (LLaVA format plus provenance): what the dataset
 * conversions emit and the SFT trainer reads.
 */
import type { RecordSchema } from './field.ts';
import { checkImagePath, checkNonEmpty, checkTurns, defineRecordSchema, isPlainObject, TURNS_TYPE, type Turn } from './validate-util.ts';

export type { Turn } from './validate-util.ts';

export interface Conversation {
  id: string;
  /** Path relative to an image root, or null for text-only. */
  image: string | null;
  /** Alternating human/gpt turns starting with human, ending with gpt. */
  conversations: Turn[];
  /** vqav2 | aokvqa | flickr30k | llava | ... */
  source: string;
  /** JSON object text with optional extras; "" when none. */
  meta: string;
}

export const conversationSchema: RecordSchema<Conversation> = defineRecordSchema<Conversation>({
  name: 'conversation',
  version: 1,
  fields: [
    { name: 'id', type: 'string' },
    { name: 'image', type: 'string', nullable: true },
    { name: 'conversations', type: TURNS_TYPE },
    { name: 'source', type: 'string' },
    { name: 'meta', type: 'string' },
  ],
  // The first failing rule's reason, in this order (plain `??`: no closures per record).
  rules: (r) =>
    checkNonEmpty(r.id, 'id') ??
    checkImagePath(r.image) ??
    checkTurns(r.conversations, { image: r.image, ending: 'gpt' }) ??
    checkNonEmpty(r.source, 'source') ??
    checkMeta(r.meta),
});

function checkMeta(meta: string): string | null {
  if (meta === '') return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(meta);
  } catch {
    return 'field "meta" is not valid JSON text.';
  }
  return isPlainObject(parsed) ? null : 'field "meta" must be the JSON text of an object (or "").';
}
