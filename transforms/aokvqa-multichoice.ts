/**
 * A-OKVQA -> multiple-choice conversations (DESIGN.md "Dataset conversion").
 *
 * Direct mode (LLaVA-1.5's prompt):
 *   human: `<image>\n{question}\nA. {c0}\nB. {c1}\nC. {c2}\nD. {c3}\nAnswer with the option's letter from the given choices directly.`
 *   gpt:   `D`
 * Reasoning mode: the same options, another instruction, and the answer is a rationale
 * followed by ` So the correct option is D.` (the PPO correctness check looks for
 * "correct option is X."). Which rationale: the first (default), all of them, or one picked
 * by a seeded hash of the question id. Mixed mode: each question is asked one way or the other,
 * by a seeded hash of its id (about half each), as LLaVA-1.5 mixes answer formats: the
 * rationale answers restate what the image shows before the letter, which a small model learns
 * from far sooner than from letters alone, and the direct ones keep the short format asked.
 *
 * Rounds: with `maxRounds` > 1 the questions of one image become the rounds of one
 * conversation (the first turn alone holds `<image>`). Questions are grouped by image over
 * the whole input, so pending groups are held until full or until the input ends (A-OKVQA has
 * 17k questions: small). The ground-truth letters go into `meta.answers`, with the question
 * ids, choices' texts and rationales (so RL prompts and facts can use them).
 *
 * Rejected: a `correct_choice_idx` missing (test split) or out of range, fewer than two or
 * more than 26 choices, empty choices.
 */
import { InvalidOptionError } from '../src/errors.ts';
import { originOf, withOrigin } from '../src/stream/origin.ts';
import { hash32 } from '../src/stream/random.ts';
import type { Stage, StageContext } from '../src/stream/stage.ts';
import type { Conversation, Turn } from '../schemas/conversation.ts';
import type { AokvqaItem } from '../schemas/aokvqa-item.ts';
import { compileImagePath } from './vqav2-multiround.ts';

export type AokvqaMode = 'direct' | 'reasoning' | 'mixed';

export interface AokvqaMultichoiceOptions {
  /** `direct` (answer is the letter), `reasoning` (rationale, then "So the correct option is X.") or `mixed` (each question one of the two, by a seeded hash); default `direct`. */
  readonly mode?: AokvqaMode;
  /** The last line of the question; default per mode (see DIRECT_INSTRUCTION / REASONING_INSTRUCTION). */
  readonly instruction?: string;
  /** Reasoning mode: which rationale(s) to write (default `first`). */
  readonly rationale?: 'first' | 'all' | 'hash';
  /** Questions of one image per conversation (default 1). */
  readonly maxRounds?: number;
  /**
   * Image path relative to the image root; placeholders `{image_id}`, `{image_id:012}`,
   * `{subtype}` (= `<split>2017`). Default `coco/{subtype}/{image_id:012}.jpg`.
   */
  readonly imagePath?: string;
  /** Stage name (default `aokvqa-multichoice`). */
  readonly name?: string;
}

export const DIRECT_INSTRUCTION = "Answer with the option's letter from the given choices directly.";
export const REASONING_INSTRUCTION = 'Explain your reasoning briefly, then state the correct option.';
export const DEFAULT_AOKVQA_IMAGE_PATH = 'coco/{subtype}/{image_id:012}.jpg';
export const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/**
 * How RL prompts should ask A-OKVQA questions of a policy whose SFT mix used `sftMode`: as the
 * SFT data taught it. A policy trained on direct answers alone has never seen the reasoning
 * instruction and answers it with noise (measured: "The shapes purple Answer a large ...");
 * a reasoning or mixed mix taught the reasoning format, which the RL correctness check reads.
 * Unknown (data not made by sft-train): reasoning, DESIGN.md's default.
 */
export function rlPromptMode(sftMode: unknown): 'direct' | 'reasoning' {
  return sftMode === 'direct' ? 'direct' : 'reasoning';
}

/** Null when the item can be asked as a multiple-choice question, else the reason. */
export function checkMultichoice(item: AokvqaItem): string | null {
  const who = `question_id ${item.question_id}`;
  const n = item.choices.length;
  if (n < 2 || n > LETTERS.length) return `${who}: needs 2 to ${LETTERS.length} choices, got ${n}`;
  if (item.choices.some((c) => c.trim() === '')) return `${who}: a choice is empty`;
  const idx = item.correct_choice_idx;
  if (idx === null) return `${who}: no "correct_choice_idx" (test split items have no answer)`;
  if (!Number.isInteger(idx) || idx < 0 || idx >= n) return `${who}: "correct_choice_idx" ${idx} is out of range for ${n} choices (0..${n - 1})`;
  if (item.question.includes('<image>') || item.choices.some((c) => c.includes('<image>'))) return `${who}: the text holds "<image>"`;
  return null;
}

/** `Question\nA. c0\nB. c1\n...\n<instruction>` (no image token). */
export function multichoicePrompt(item: AokvqaItem, instruction: string): string {
  const lines = [item.question.trim(), ...item.choices.map((c, i) => `${LETTERS[i]}. ${c.trim()}`)];
  if (instruction !== '') lines.push(instruction);
  return lines.join('\n');
}

/** The correct option's letter (call after `checkMultichoice`). */
export function correctLetter(item: AokvqaItem): string {
  return LETTERS[item.correct_choice_idx!]!;
}

function sentence(text: string): string {
  const t = text.trim();
  return /[.!?]["')\]]?$/.test(t) ? t : `${t}.`;
}

/** Reasoning-mode answer: rationale(s), then ` So the correct option is X.` */
export function reasoningAnswer(item: AokvqaItem, which: 'first' | 'all' | 'hash', seed = 0): string {
  const rs = item.rationales.map((r) => r.trim()).filter((r) => r !== '');
  const chosen = rs.length === 0 ? [] : which === 'all' ? rs : which === 'hash' ? [rs[hash32(item.question_id, seed) % rs.length]!] : [rs[0]!];
  const lead = chosen.map(sentence).join(' ');
  const tail = `So the correct option is ${correctLetter(item)}.`;
  return lead === '' ? tail : `${lead} ${tail}`;
}

/**
 * Facts an A-OKVQA question contributes for the reward model: its rationales and a caption
 * naming the correct answer.
 */
export function aokvqaFactsOf(item: AokvqaItem): string[] {
  const out = item.rationales.map((r) => r.trim()).filter((r) => r !== '').map(sentence);
  const idx = item.correct_choice_idx;
  if (idx !== null && idx >= 0 && idx < item.choices.length) {
    out.push(`The answer to "${item.question.trim()}" is ${item.choices[idx]!.trim()}.`);
  }
  return out;
}

export interface AokvqaMeta {
  question_ids: string[];
  /** Ground-truth letters, one per round. */
  answers: string[];
  split: string;
  /** Facts of the questions (rationales + correct answer). */
  facts: string[];
}

/** A-OKVQA questions -> multiple-choice conversations (see the module comment). */
export function aokvqaMultichoice(options: AokvqaMultichoiceOptions = {}): Stage<AokvqaItem, Conversation> & { readonly conserves?: false } {
  const mode = options.mode ?? 'direct';
  if (mode !== 'direct' && mode !== 'reasoning' && mode !== 'mixed') throw new InvalidOptionError('mode', `must be "direct", "reasoning" or "mixed", got ${JSON.stringify(mode)}`);
  if (mode === 'mixed' && options.instruction !== undefined) {
    throw new InvalidOptionError('instruction', 'mixed mode asks each question with its own mode\'s instruction', { fix: 'leave instruction out, or choose mode direct or reasoning' });
  }
  const instruction = options.instruction ?? (mode === 'reasoning' ? REASONING_INSTRUCTION : DIRECT_INSTRUCTION);
  if (typeof instruction !== 'string' || instruction.includes('<image>')) throw new InvalidOptionError('instruction', 'must be a string without "<image>"');
  const rationale = options.rationale ?? 'first';
  if (!['first', 'all', 'hash'].includes(rationale)) throw new InvalidOptionError('rationale', `must be "first", "all" or "hash", got ${JSON.stringify(rationale)}`);
  const maxRounds = options.maxRounds ?? 1;
  if (!Number.isInteger(maxRounds) || maxRounds < 1) throw new InvalidOptionError('maxRounds', `must be an integer >= 1, got ${String(maxRounds)}`);
  const imagePath = compileImagePath(options.imagePath ?? DEFAULT_AOKVQA_IMAGE_PATH);
  const name = options.name ?? 'aokvqa-multichoice';

  function build(group: AokvqaItem[], seed: number): Conversation {
    const first = group[0]!;
    const turns: Turn[] = [];
    group.forEach((item, i) => {
      const asked = mode === 'mixed' ? ((hash32(`${item.question_id}#mode`, seed) & 1) === 0 ? 'direct' : 'reasoning') : mode;
      const q = multichoicePrompt(item, mode === 'mixed' ? (asked === 'direct' ? DIRECT_INSTRUCTION : REASONING_INSTRUCTION) : instruction);
      turns.push({ from: 'human', value: i === 0 ? `<image>\n${q}` : q });
      turns.push({ from: 'gpt', value: asked === 'direct' ? correctLetter(item) : reasoningAnswer(item, rationale, seed) });
    });
    const meta: AokvqaMeta = {
      question_ids: group.map((g) => g.question_id),
      answers: group.map(correctLetter),
      split: first.split,
      facts: group.flatMap(aokvqaFactsOf),
    };
    const conv: Conversation = {
      id: `aokvqa-${first.question_id}`,
      image: imagePath.render(first.image_id, first.split === '' ? 'train2017' : `${first.split}2017`),
      conversations: turns,
      source: 'aokvqa',
      meta: JSON.stringify(meta),
    };
    return withOrigin(conv, originOf(first));
  }

  return {
    name,
    // One question -> one record unless rounds group several.
    ...(maxRounds > 1 ? { conserves: false as const } : {}),
    async *run(input: AsyncIterable<AokvqaItem>, ctx: StageContext): AsyncIterable<Conversation> {
      const pending = new Map<number, AokvqaItem[]>();
      for await (const item of input) {
        const reason = checkMultichoice(item);
        if (reason) {
          ctx.reject(item, reason, originOf(item));
          continue;
        }
        if (maxRounds === 1) {
          yield build([item], ctx.seed);
          continue;
        }
        const group = pending.get(item.image_id);
        if (group) group.push(item);
        else pending.set(item.image_id, [item]);
        if ((group?.length ?? 1) >= maxRounds) {
          pending.delete(item.image_id);
          yield build(group ?? [item], ctx.seed);
        }
      }
      for (const group of pending.values()) yield build(group, ctx.seed);
    },
  };
}
