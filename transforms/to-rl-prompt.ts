/**
 * Conversation -> PPO prompt (`rl-prompt`): the first human turn only, with
 * `caption_type` saying which correctness bonus applies (LLaVA-RLHF's enum):
 * 1 general, 2-5 the correct A-OKVQA option A-D, 6 a VQA-v2 question whose answer is "No",
 * 7 one whose answer is "Yes".
 *
 * Inference by the record's `source`: `aokvqa` reads the first ground-truth letter from
 * `meta.answers` (written by aokvqa-multichoice); `vqav2` reads the first gpt answer
 * (yes/no; other answers are general); anything else is general. `captionType` overrides.
 * Facts: the record's `meta.facts` (A-OKVQA rationales and answer) when present; image
 * captions are joined later by `attach-facts`.
 */
import { InvalidOptionError } from '../src/errors.ts';
import { originOf, withOrigin } from '../src/stream/origin.ts';
import type { Stage, StageContext } from '../src/stream/stage.ts';
import type { Conversation } from '../schemas/conversation.ts';
import { rlPromptSchema, type CaptionType, type RlPrompt } from '../schemas/rl-prompt.ts';

export interface ToRlPromptOptions {
  /** Length-term multiplier per prompt (default 1). */
  readonly lengthBonus?: number | ((record: Conversation) => number);
  /** Overrides the inferred caption type. */
  readonly captionType?: (record: Conversation) => CaptionType;
  /** Stage name (default `to-rl-prompt`). */
  readonly name?: string;
}

function parseMeta(meta: string): Record<string, unknown> {
  if (meta === '') return {};
  try {
    const m = JSON.parse(meta) as unknown;
    return typeof m === 'object' && m !== null && !Array.isArray(m) ? (m as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The caption type of a conversation's first round, or a reason it has none. */
export function inferCaptionType(record: Conversation): CaptionType | string {
  const meta = parseMeta(record.meta);
  if (record.source === 'aokvqa') {
    const answers = meta['answers'];
    const letter = Array.isArray(answers) ? answers[0] : undefined;
    if (typeof letter !== 'string') return 'an aokvqa record needs meta.answers (the ground-truth letters)';
    const i = 'ABCD'.indexOf(letter);
    if (letter.length !== 1 || i < 0) return `ground-truth option ${JSON.stringify(letter)} is not A-D (caption types 2-5 cover A-D only)`;
    return (2 + i) as CaptionType;
  }
  if (record.source === 'vqav2') {
    const answer = record.conversations[1]?.value.trim().toLowerCase().replace(/[.!]$/, '');
    if (answer === 'yes') return 7;
    if (answer === 'no') return 6;
    return 1;
  }
  return 1;
}

/** Conversations -> rl-prompt records (see the module comment). */
export function toRlPrompt(options: ToRlPromptOptions = {}): Stage<Conversation, RlPrompt> {
  const lb = options.lengthBonus ?? 1;
  if (typeof lb === 'number' && !(Number.isFinite(lb) && lb > 0)) throw new InvalidOptionError('lengthBonus', `must be a number > 0, got ${String(lb)}`);
  if (typeof lb !== 'number' && typeof lb !== 'function') throw new InvalidOptionError('lengthBonus', 'must be a number or a function');
  if (options.captionType !== undefined && typeof options.captionType !== 'function') throw new InvalidOptionError('captionType', 'must be a function');
  const name = options.name ?? 'to-rl-prompt';
  return {
    name,
    async *run(input: AsyncIterable<Conversation>, ctx: StageContext): AsyncIterable<RlPrompt> {
      for await (const rec of input) {
        const origin = originOf(rec);
        const first = rec.conversations[0];
        if (!first || first.from !== 'human') {
          ctx.reject(rec, `record ${rec.id}: no first human turn`, origin);
          continue;
        }
        const type = options.captionType ? options.captionType(rec) : inferCaptionType(rec);
        if (typeof type === 'string') {
          ctx.reject(rec, `record ${rec.id}: ${type}`, origin);
          continue;
        }
        const metaFacts = parseMeta(rec.meta)['facts'];
        const facts = Array.isArray(metaFacts) ? metaFacts.filter((f): f is string => typeof f === 'string' && f.trim() !== '') : [];
        const out: RlPrompt = {
          id: rec.id,
          image: rec.image,
          conversations: [{ from: 'human', value: first.value }],
          caption_type: type,
          length_bonus: typeof lb === 'number' ? lb : lb(rec),
          facts,
        };
        const reason = rlPromptSchema.validate(out);
        if (reason) {
          ctx.reject(rec, `record ${rec.id}: ${reason}`, origin);
          continue;
        }
        yield withOrigin(out, origin);
      }
    },
  };
}
