/**
 * VQA-v2 -> multi-round QA conversations (DESIGN.md "Dataset conversion"): an image's
 * questions, in input order, become the rounds of one LLaVA conversation; past `maxRounds`
 * the next conversation starts. The first human turn opens with `<image>\n`; each question
 * is followed by `\n` + `suffix`; the answer is `multiple_choice_answer`, capitalised.
 *
 * Grouping is by consecutive `image_id` (the official annotations keep an image's questions
 * together), so only one image's questions are held at a time. If the same image shows up
 * again later (input not grouped), it gets further conversations with the next numbers;
 * a small Map image_id -> next number keeps ids unique (~40 bytes per image seen).
 */
import { InvalidOptionError } from '../src/errors.ts';
import { originOf, withOrigin } from '../src/stream/origin.ts';
import type { Stage, StageContext } from '../src/stream/stage.ts';
import type { Conversation, Turn } from '../schemas/conversation.ts';
import type { Vqav2Item } from '../schemas/vqav2-item.ts';

export interface Vqav2MultiroundOptions {
  /** Most question/answer rounds per conversation (default 10); more start the next one. */
  readonly maxRounds?: number;
  /** Appended to each question after a newline; '' disables it. */
  readonly suffix?: string;
  /**
   * Image path relative to the image root. Placeholders: `{image_id}`, `{image_id:012}`
   * (zero-padded to 12 digits, any width 1-20), `{subtype}` (the files' data_subtype).
   * Default `coco/train2017/{image_id:012}.jpg` (COCO 2017 holds the 2014 train+val images).
   */
  readonly imagePath?: string;
  /** Capitalise the answer's first letter ("yes" -> "Yes"); default true. */
  readonly capitalize?: boolean;
  /** Conversation ids are `<idPrefix>-<image_id>-<k>` (default `vqav2`). */
  readonly idPrefix?: string;
  /** Stage name (default `vqav2-multiround`). */
  readonly name?: string;
}

export const DEFAULT_VQA_SUFFIX = 'Answer the question using a single word or phrase.';
export const DEFAULT_VQA_IMAGE_PATH = 'coco/train2017/{image_id:012}.jpg';

type PathFn = (imageId: number, subtype: string) => string;

/** Compiles the image path template; throws InvalidOptionError('imagePath') on a bad one. */
export function compileImagePath(template: string, option = 'imagePath'): { render: PathFn; usesSubtype: boolean } {
  if (typeof template !== 'string' || template.trim() === '') throw new InvalidOptionError(option, 'must be a non-empty path template');
  if (template.startsWith('/') || template.startsWith('\\') || /^[A-Za-z]:/.test(template)) {
    throw new InvalidOptionError(option, `must be relative to the image root, got ${JSON.stringify(template)}`);
  }
  const pieces: (string | ((id: number, sub: string) => string))[] = [];
  let usesSubtype = false;
  let last = 0;
  const re = /\{([^{}]*)\}/g;
  for (let m = re.exec(template); m !== null; m = re.exec(template)) {
    pieces.push(template.slice(last, m.index));
    const spec = m[1]!;
    const pad = /^image_id:0(\d{1,2})$/.exec(spec);
    if (spec === 'image_id') pieces.push((id) => String(id));
    else if (pad && Number(pad[1]) >= 1 && Number(pad[1]) <= 20) {
      const width = Number(pad[1]);
      pieces.push((id) => String(id).padStart(width, '0'));
    } else if (spec === 'subtype') {
      usesSubtype = true;
      pieces.push((_id, sub) => sub);
    } else {
      throw new InvalidOptionError(option, `unknown placeholder {${spec}} in ${JSON.stringify(template)}; use {image_id}, {image_id:012} or {subtype}`);
    }
    last = re.lastIndex;
  }
  pieces.push(template.slice(last));
  for (const p of pieces) {
    if (typeof p === 'string' && (p.includes('{') || p.includes('}'))) {
      throw new InvalidOptionError(option, `unbalanced brace in ${JSON.stringify(template)}; placeholders look like {image_id:012}`);
    }
  }
  if (template.split(/[/\\]/).includes('..')) throw new InvalidOptionError(option, `must not contain a ".." segment, got ${JSON.stringify(template)}`);
  const render: PathFn = (id, sub) => {
    let out = '';
    for (const p of pieces) out += typeof p === 'string' ? p : p(id, sub);
    return out;
  };
  return { render, usesSubtype };
}

/** Uppercases the first character ("yes" -> "Yes", "2" -> "2"). */
export function capitalizeFirst(text: string): string {
  return text.length === 0 ? text : text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Groups consecutive same-image `Vqav2Item`s into conversations. The stage regroups records
 * on purpose, so it carries `conserves: false` (items in = items in conversations + rejected,
 * not conversations out).
 */
export function vqav2Multiround(options: Vqav2MultiroundOptions = {}): Stage<Vqav2Item, Conversation> & { readonly conserves: false } {
  const maxRounds = options.maxRounds ?? 10;
  if (!Number.isInteger(maxRounds) || maxRounds < 1) throw new InvalidOptionError('maxRounds', `must be an integer >= 1, got ${String(maxRounds)}`);
  const suffix = options.suffix ?? DEFAULT_VQA_SUFFIX;
  if (typeof suffix !== 'string') throw new InvalidOptionError('suffix', `must be a string ('' disables it), got ${typeof suffix}`);
  if (suffix.includes('<image>')) throw new InvalidOptionError('suffix', 'must not contain "<image>" (it belongs only at the start of the first turn)');
  const capitalize = options.capitalize ?? true;
  if (typeof capitalize !== 'boolean') throw new InvalidOptionError('capitalize', `must be a boolean, got ${typeof capitalize}`);
  const idPrefix = options.idPrefix ?? 'vqav2';
  if (typeof idPrefix !== 'string' || idPrefix === '' || /\s/.test(idPrefix)) throw new InvalidOptionError('idPrefix', `must be a non-empty string without spaces, got ${JSON.stringify(idPrefix)}`);
  const name = options.name ?? 'vqav2-multiround';
  const imagePath = compileImagePath(options.imagePath ?? DEFAULT_VQA_IMAGE_PATH);
  const tail = suffix === '' ? '' : `\n${suffix}`;

  function build(group: Vqav2Item[], k: number): Conversation {
    const first = group[0]!;
    const turns: Turn[] = [];
    for (let i = 0; i < group.length; i++) {
      const item = group[i]!;
      const q = item.question.trim() + tail;
      const a = item.answer.trim();
      turns.push({ from: 'human', value: i === 0 ? `<image>\n${q}` : q });
      turns.push({ from: 'gpt', value: capitalize ? capitalizeFirst(a) : a });
    }
    const conv: Conversation = {
      id: `${idPrefix}-${first.image_id}-${k}`,
      image: imagePath.render(first.image_id, first.subtype),
      conversations: turns,
      source: 'vqav2',
      meta: JSON.stringify({ question_ids: group.map((x) => x.question_id), subtype: first.subtype }),
    };
    return withOrigin(conv, originOf(first));
  }

  /** Null when the item can be turned into a round, else the reason. */
  function check(item: Vqav2Item): string | null {
    if (typeof item !== 'object' || item === null) return `expected a VQA-v2 item, got ${item === null ? 'null' : typeof item}`;
    const who = `question_id ${String(item.question_id)}`;
    if (!Number.isSafeInteger(item.image_id) || item.image_id < 0) return `${who}: "image_id" must be a non-negative integer, got ${JSON.stringify(item.image_id)}`;
    if (typeof item.question !== 'string' || item.question.trim() === '') return `${who}: "question" is empty or not a string`;
    if (typeof item.answer !== 'string' || item.answer.trim() === '') return `${who}: "answer" (multiple_choice_answer) is empty or not a string`;
    if (item.question.includes('<image>') || item.answer.includes('<image>')) return `${who}: the text holds "<image>", which belongs only at the start of the first turn`;
    if (imagePath.usesSubtype && (typeof item.subtype !== 'string' || item.subtype === '')) return `${who}: imagePath uses {subtype} but the item has no data_subtype`;
    return null;
  }

  return {
    name,
    conserves: false,
    async *run(input: AsyncIterable<Vqav2Item>, ctx: StageContext): AsyncIterable<Conversation> {
      const nextK = new Map<number, number>();
      let group: Vqav2Item[] = [];
      let imageId = -1;
      const flush = (): Conversation | undefined => {
        if (group.length === 0) return undefined;
        const k = nextK.get(imageId) ?? 0;
        nextK.set(imageId, k + 1);
        const conv = build(group, k);
        group = [];
        return conv;
      };
      for await (const item of input) {
        const reason = check(item);
        if (reason !== null) {
          ctx.reject(item, reason, originOf(item));
          continue;
        }
        if (item.image_id !== imageId || group.length >= maxRounds) {
          const conv = flush();
          if (conv) yield conv;
          imageId = item.image_id;
        }
        group.push(item);
      }
      const conv = flush();
      if (conv) yield conv;
    },
  };
}
