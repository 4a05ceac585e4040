/**
 * The reward model's input, after LLaVA-RLHF's `fact_rlhf_reward_prompt.txt`: the conversation
 * with the response as the assistant's last turn, then an evaluation request that lists the
 * criteria and, for Fact-RLHF, the captions the response must be supported by:
 *
 *   {system} USER: <image> {question} ASSISTANT: {response}</s>USER: Please evaluate the quality
 *   of your last response. A good response is accurate, helpful, natural and concise. The response
 *   should be fully supported by the combination of the following captions:
 *   {caption}
 *   {caption} ASSISTANT: The quality score of my last response is
 *
 * The reward head reads the last token. Vanilla RLHF (facts off, or no facts) is the same text
 * without the captions block.
 *
 * `factsAt: 'start'` moves the captions before the conversation (after the system prompt, under
 * FACTS_FIRST_HEADER) and the request then points at "the captions above". Why: a causal model
 * can only check a response word against captions it has already read. With the captions after
 * the response, every check has to happen at the last few tokens; with them first, each response
 * token can look back at the captions itself and the last token only has to ask whether any of
 * them failed. On the shapes world a 2-layer reward model learned nothing in 100 steps with the
 * captions at the end (held-out 50%); see the README for the measured difference.
 *
 * The criteria are shortened from the reference (one sentence instead of four paragraphs) so the
 * prompt fits a small model's context.
 *
 * Caption order is a seeded shuffle (seed = hash32(record id, seed)): the model cannot learn a
 * position, and the same record always reads the same order. Truncation drops captions from the
 * end of that order (then the header) and never touches the response; a prompt whose fixed part
 * alone is too long is a BadRecordError.
 */
import { BadRecordError, InvalidOptionError } from '../errors.ts';
import { hash32, Rng } from '../stream/random.ts';
import { encodePrompt, IMAGE_TAG, systemPromptOf, VICUNA_SYSTEM_PROMPT, type Turn } from './chat-template.ts';
import type { TextTokenizer } from './tokenizer.ts';

export const REWARD_REQUEST = 'Please evaluate the quality of your last response. A good response is accurate, helpful, natural and concise.';
export const FACTS_HEADER = 'The response should be fully supported by the combination of the following captions:';
export const REWARD_CLOSING = 'ASSISTANT: The quality score of my last response is';
/** Heads the captions when they come first (`factsAt: 'start'`). */
export const FACTS_FIRST_HEADER = 'Captions of the image:';
/** The criterion that replaces FACTS_HEADER when the captions came first. */
export const FACTS_ABOVE = 'The response should be fully supported by the combination of the captions above.';
/** Where the captions go: after the response, as LLaVA-RLHF does (`end`), or before the conversation (`start`). */
export type FactsPlacement = 'start' | 'end';
export const FACTS_PLACEMENTS: readonly FactsPlacement[] = ['start', 'end'];

/** Text worth adding to a tokenizer's corpus so the fixed parts of the reward prompt tokenize compactly. */
export const REWARD_PROMPT_CORPUS: readonly string[] = Object.freeze([`USER: ${REWARD_REQUEST} ${FACTS_HEADER}`, REWARD_CLOSING]);
/** The pieces `factsAt: 'start'` adds. */
export const FACTS_FIRST_CORPUS: readonly string[] = Object.freeze([FACTS_FIRST_HEADER, FACTS_ABOVE]);

export interface RewardPromptInput {
  /** Record id; seeds the caption order. */
  id: string;
  /** Prompt turns: human first, alternating, ending with the human turn the response answers. */
  turns: readonly Turn[];
  response: string;
  /** Captions / ground-truth facts (read only when `facts` is on). */
  facts?: readonly string[];
  /** Whether the response ended with </s> (a rollout cut at the token limit did not). Default true. */
  endedWithEos?: boolean;
}

export interface RewardPromptOptions {
  /** Fact-RLHF (true) or vanilla RLHF (false). */
  facts: boolean;
  /** Run seed for the caption order. */
  seed: number;
  /** Visual tokens per image (the model's imageTokenCount); 0 when the record has no image. */
  imageTokens: number;
  /** Longest sequence (the model's contextLength). Default: no limit. */
  maxLength?: number;
  /** At most this many captions (the first in the seeded order). Default: all. */
  maxFacts?: number;
  /** Where the captions go; default 'end' (LLaVA-RLHF's order). */
  factsAt?: FactsPlacement;
  /** Default: the tokenizer's (chat-template's systemPromptOf); in rewardPromptText, which has none, Vicuna v1's. */
  systemPrompt?: string;
}

export interface EncodedRewardPrompt {
  ids: number[];
  /** Positions of the visual tokens (empty without an image). */
  imagePositions: number[];
  /** [start, end) of the response tokens (its </s> included) in `ids`. */
  response: [number, number];
  /** Captions given (after cleaning) and kept after truncation; 0 and 0 without facts. */
  factsGiven: number;
  factsKept: number;
  /**
   * Per response token: 1 when its id occurs in the kept captions (each encoded alone) and not in
   * the template's own text (system prompt, evaluation request: "a", "the", "image" say nothing
   * about this image), else 0.
   */
  factMatch: number[];
}

/** Trimmed, non-empty captions in the record's seeded order. */
export function orderFacts(id: string, facts: readonly string[] | undefined, seed: number): string[] {
  const clean = (facts ?? []).map((f) => (typeof f === 'string' ? f.replace(/\s+/g, ' ').trim() : '')).filter((f) => f.length > 0);
  return new Rng(hash32(id, seed)).shuffle(clean);
}

function checkOptions(options: RewardPromptOptions): void {
  if (typeof options?.facts !== 'boolean') throw new InvalidOptionError('facts', `must be true or false, got ${String(options?.facts)}`);
  if (!Number.isInteger(options.seed)) throw new InvalidOptionError('seed', `must be an integer, got ${String(options.seed)}`);
  if (!Number.isInteger(options.imageTokens) || options.imageTokens < 0) throw new InvalidOptionError('imageTokens', `must be a non-negative integer, got ${String(options.imageTokens)}`);
  if (options.maxLength !== undefined && !(Number.isInteger(options.maxLength) && options.maxLength > 0)) {
    throw new InvalidOptionError('maxLength', `must be a positive integer, got ${String(options.maxLength)}`);
  }
  if (options.maxFacts !== undefined && !(Number.isInteger(options.maxFacts) && options.maxFacts >= 0)) {
    throw new InvalidOptionError('maxFacts', `must be a non-negative integer, got ${String(options.maxFacts)}`);
  }
  if (options.factsAt !== undefined && !FACTS_PLACEMENTS.includes(options.factsAt)) {
    throw new InvalidOptionError('factsAt', `must be one of ${FACTS_PLACEMENTS.join(', ')}, got ${JSON.stringify(options.factsAt)}`);
  }
}

function checkInput(input: RewardPromptInput): void {
  if (typeof input?.id !== 'string') throw new BadRecordError('reward prompt: record has no string id');
  if (typeof input.response !== 'string') throw new BadRecordError('reward prompt: the response is not a string');
  // an immediate </s> is a real answer (the policy chose to say nothing) and must be scored, or PPO
  // could never learn that it is bad; empty text that did not end with </s> has no token at all
  if (input.response.trim() === '' && input.endedWithEos === false) throw new BadRecordError('reward prompt: the response is empty and did not end with </s>', { fix: 'score only responses with at least one token' });
  if (input.response.includes(IMAGE_TAG)) throw new BadRecordError(`reward prompt: the response holds ${IMAGE_TAG}`, { fix: 'remove <image> from responses' });
}

/** The evaluation request that follows the response (captions in their seeded order). */
export function evaluationText(captions: readonly string[], factsAt: FactsPlacement = 'end'): string {
  if (factsAt === 'start') return `USER: ${REWARD_REQUEST}${captions.length > 0 ? ` ${FACTS_ABOVE}` : ''} ${REWARD_CLOSING}`;
  const facts = captions.length > 0 ? ` ${FACTS_HEADER}\n${captions.join('\n')}` : '';
  return `USER: ${REWARD_REQUEST}${facts} ${REWARD_CLOSING}`;
}

/** The system prompt, followed by the captions when they come first. */
function systemWithFacts(system: string, captions: readonly string[], factsAt: FactsPlacement): string {
  if (factsAt !== 'start' || captions.length === 0) return system;
  const facts = `${FACTS_FIRST_HEADER}\n${captions.join('\n')}`;
  return system.trim() === '' ? facts : `${system} ${facts}`;
}

/**
 * The whole reward prompt as text (no truncation), as the model reads it: for inspection and
 * tests. `<image>` stays a tag; the tokenizer sees the same pieces (see encodeRewardPrompt).
 */
export function rewardPromptText(input: RewardPromptInput, options: Omit<RewardPromptOptions, 'imageTokens' | 'maxLength'>): string {
  checkInput(input);
  const given = options.facts ? orderFacts(input.id, input.facts, options.seed) : [];
  const captions = options.maxFacts === undefined ? given : given.slice(0, options.maxFacts);
  const factsAt = options.factsAt ?? 'end';
  const system = systemWithFacts(options.systemPrompt ?? VICUNA_SYSTEM_PROMPT, captions, factsAt);
  let text = '';
  input.turns.forEach((t, i) => {
    if (t.from === 'human') text += `${i === 0 && system.trim() !== '' ? `${system} ` : ''}USER: ${t.value.trim()} ASSISTANT:`;
    else text += ` ${t.value.trim()}</s>`;
  });
  const eos = input.endedWithEos === false ? '' : '</s>';
  text += ` ${input.response.trim()}${eos}`;
  return text + (eos ? '' : ' ') + evaluationText(captions, factsAt);
}

const TEMPLATE_IDS = new WeakMap<TextTokenizer, Map<string, ReadonlySet<number>>>();

/** Ids of the template's own text (system prompt, evaluation request, caption headers), once per tokenizer and system prompt. */
function templateIds(tok: TextTokenizer, system: string): ReadonlySet<number> {
  let bySystem = TEMPLATE_IDS.get(tok);
  if (!bySystem) TEMPLATE_IDS.set(tok, (bySystem = new Map()));
  let ids = bySystem.get(system);
  if (!ids) {
    ids = new Set([...tok.encode(system), ...tok.encode(evaluationText([], 'end')), ...tok.encode(`${FACTS_HEADER} ${FACTS_FIRST_HEADER} ${FACTS_ABOVE}`)]);
    bySystem.set(system, ids);
  }
  return ids;
}

/**
 * Token ids and image positions of the reward prompt: the policy's prompt (the chat template's
 * pieces), the response and its </s> as generated, then the evaluation text as one piece, so the
 * prompt part equals what the policy saw when it wrote the response.
 */
export function encodeRewardPrompt(tok: TextTokenizer, input: RewardPromptInput, options: RewardPromptOptions): EncodedRewardPrompt {
  checkOptions(options);
  checkInput(input);
  const given = options.facts ? orderFacts(input.id, input.facts, options.seed) : [];
  const captions = options.maxFacts === undefined ? given : given.slice(0, options.maxFacts);
  const factsAt = options.factsAt ?? 'end';
  const system = options.systemPrompt ?? systemPromptOf(tok);
  const max = options.maxLength ?? Number.POSITIVE_INFINITY;
  const response = tok.encode(input.response.trim());
  if (input.endedWithEos !== false) response.push(tok.eosId);
  const build = (kept: number) => {
    const shown = captions.slice(0, kept);
    const prompt = encodePrompt(tok, input.turns, { imageTokens: options.imageTokens, systemPrompt: systemWithFacts(system, shown, factsAt) });
    return { prompt, evaluation: tok.encode(evaluationText(shown, factsAt)) };
  };
  // captions are dropped from the end of their order until the whole prompt fits
  let kept = captions.length;
  let parts = build(kept);
  const total = () => parts.prompt.ids.length + response.length + parts.evaluation.length;
  while (kept > 0 && total() > max) parts = build(--kept);
  if (total() > max) {
    throw new BadRecordError(`reward prompt has ${total()} tokens without facts (response ${response.length}, with ${parts.prompt.imagePositions.length} image tokens), over the limit ${max}`, {
      fix: 'shorten the conversation or the response, or use a model with a longer context',
    });
  }
  const start = parts.prompt.ids.length;
  const end = start + response.length;
  const ids = [...parts.prompt.ids, ...response, ...parts.evaluation];
  const template = templateIds(tok, system);
  const factIds = new Set(captions.slice(0, kept).flatMap((c) => tok.encode(c)).filter((id) => !template.has(id)));
  const factMatch = response.map((id) => (factIds.has(id) ? 1 : 0));
  return { ids, imagePositions: parts.prompt.imagePositions, response: [start, end], factsGiven: given.length, factsKept: kept, factMatch };
}
