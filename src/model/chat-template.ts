/**
 * The Vicuna v1 conversation template as LLaVA-RLHF uses it:
 *
 *   <s>{system} USER: {human} ASSISTANT: {gpt}</s>USER: {human} ASSISTANT: {gpt}</s>...
 *
 * `<image>` in the first human turn becomes `imageTokens` placeholder positions, where the model
 * puts the projected visual features. Each piece is tokenised on its own (system+question, answer,
 * next question, ...), so a prompt for generation is exactly the prefix of the training sequence
 * and the loss mask lands on exactly the answer tokens and their </s>.
 */
import { BadRecordError } from '../errors.ts';
import type { TextTokenizer } from './tokenizer.ts';

export const VICUNA_SYSTEM_PROMPT =
  "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";
export const IMAGE_TAG = '<image>';

export interface Turn {
  from: 'human' | 'gpt';
  value: string;
}

export interface EncodedConversation {
  ids: number[];
  /** 1 exactly on assistant answer tokens (including each answer's </s>), else 0. */
  lossMask: number[];
  /** Sequence positions of the visual tokens, in order; empty when there is no image. */
  imagePositions: number[];
}

export interface TemplateOptions {
  /** Visual tokens per image (the model's imageTokenCount); 0 drops the <image> tag. */
  imageTokens: number;
  /** Overrides the tokenizer's system prompt (see systemPromptOf). */
  systemPrompt?: string;
}

/** The system prompt a tokenizer's conversations open with: its own (tokenizer_config.json), else Vicuna v1's. */
export function systemPromptOf(tok: Pick<TextTokenizer, 'systemPrompt'>): string {
  return tok.systemPrompt ?? VICUNA_SYSTEM_PROMPT;
}

/** "{system} USER:", or "USER:" when there is no system prompt. */
function firstPrefix(system: string): string {
  return system.trim() === '' ? 'USER:' : `${system} USER:`;
}

interface Builder {
  ids: number[];
  lossMask: number[];
  imagePositions: number[];
}

function push(b: Builder, ids: readonly number[], loss: 0 | 1): void {
  for (const id of ids) {
    b.ids.push(id);
    b.lossMask.push(loss);
  }
}

/** Adds a human turn ("USER: ... ASSISTANT:"), expanding <image> when it is the first turn. */
function pushHuman(b: Builder, tok: TextTokenizer, text: string, first: boolean, options: TemplateOptions, index: number): void {
  const parts = text.split(IMAGE_TAG);
  if (parts.length > 2) throw new BadRecordError(`turn ${index} holds ${parts.length - 1} ${IMAGE_TAG} tags; at most one image per conversation`, { fix: 'keep a single <image> in the first human turn' });
  if (parts.length === 2 && !first) throw new BadRecordError(`${IMAGE_TAG} in turn ${index}; only the first human turn may hold it`, { fix: 'move <image> to the first human turn' });
  const prefix = first ? firstPrefix(options.systemPrompt ?? systemPromptOf(tok)) : 'USER:';
  if (parts.length === 1 || options.imageTokens === 0) {
    const body = parts.map((p) => p.trim()).filter((p) => p.length > 0).join(' ');
    push(b, tok.encode(`${prefix} ${body} ASSISTANT:`), 0);
    return;
  }
  // "<image>\nquestion" (LLaVA) or "question\n<image>": text pieces around the visual tokens
  const before = parts[0]!.trim();
  const after = parts[1]!.trim();
  push(b, tok.encode(before ? `${prefix} ${before}` : prefix), 0);
  for (let i = 0; i < options.imageTokens; i++) {
    b.imagePositions.push(b.ids.length);
    push(b, [tok.imageId], 0);
  }
  push(b, tok.encode(after ? `${after} ASSISTANT:` : 'ASSISTANT:'), 0);
}

function checkTurns(turns: readonly Turn[], endWith: 'gpt' | 'human'): void {
  if (turns.length === 0) throw new BadRecordError('conversation has no turns', { fix: 'give at least one human turn' });
  turns.forEach((t, i) => {
    const want = i % 2 === 0 ? 'human' : 'gpt';
    if (t.from !== want) throw new BadRecordError(`turn ${i} is from "${t.from}", expected "${want}" (turns alternate human/gpt starting with human)`, { fix: 'fix the turn order' });
    if (typeof t.value !== 'string') throw new BadRecordError(`turn ${i} has no text`, { fix: 'give every turn a string value' });
  });
  const last = turns[turns.length - 1]!.from;
  if (last !== endWith) throw new BadRecordError(`conversation ends with a "${last}" turn, expected "${endWith}"`, { fix: endWith === 'gpt' ? 'end with an answer' : 'end with a question' });
}

/** Token ids, loss mask and image positions of a whole conversation (for training). */
export function encodeConversation(tok: TextTokenizer, turns: readonly Turn[], options: TemplateOptions): EncodedConversation {
  checkTurns(turns, 'gpt');
  const b: Builder = { ids: [], lossMask: [], imagePositions: [] };
  push(b, [tok.bosId], 0);
  turns.forEach((t, i) => {
    if (t.from === 'human') pushHuman(b, tok, t.value, i === 0, options, i);
    else {
      push(b, tok.encode(t.value.trim()), 1);
      push(b, [tok.eosId], 1);
    }
  });
  return b;
}

/**
 * The prompt for generation: every turn (the last one human), ending with "ASSISTANT:". Equal to
 * the prefix of encodeConversation's ids when the answer is appended.
 */
export function encodePrompt(tok: TextTokenizer, turns: readonly Turn[], options: TemplateOptions): EncodedConversation {
  checkTurns(turns, 'human');
  const b: Builder = { ids: [], lossMask: [], imagePositions: [] };
  push(b, [tok.bosId], 0);
  turns.forEach((t, i) => {
    if (t.from === 'human') pushHuman(b, tok, t.value, i === 0, options, i);
    else {
      push(b, tok.encode(t.value.trim()), 0);
      push(b, [tok.eosId], 0);
    }
  });
  return b;
}
