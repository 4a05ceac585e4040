/**
 * Scores existing POPE answers (the reference's summarize mode): fills each POPE eval
 * record's `model_answer` from the answers file of its split (`question_type`), matched by
 * `question_id` (JSON Lines of `{question_id, text}`; ids compare as strings).
 *
 * As `joinPopeAnswers`: a question without an answer, an answer given twice, or answers
 * left over for questions not in the split fail the run (BadInputError naming the answers
 * file), since a silently shorter split would change every metric. The answers of all
 * splits are held in memory: one short line per question.
 */
import { BadInputError, InvalidOptionError } from '../src/errors.ts';
import { readPopeAnswers } from '../src/eval/pope.ts';
import { originOf, withOrigin } from '../src/stream/origin.ts';
import type { Stage, StageContext } from '../src/stream/stage.ts';
import type { EvalRecord } from '../schemas/eval.ts';

export interface AttachPopeAnswersOptions {
  /** Answers file per split name. */
  readonly answers: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  /** Stage name (default `attach-answers`). */
  readonly name?: string;
}

export function attachPopeAnswers(options: AttachPopeAnswersOptions): Stage<EvalRecord, EvalRecord> {
  const given = options?.answers;
  if (given === null || typeof given !== 'object') throw new InvalidOptionError('answers', 'must map each split name to its answers file');
  const files = new Map<string, string>(given instanceof Map ? given : Object.entries(given as Record<string, string>));
  if (files.size === 0) throw new InvalidOptionError('answers', 'names no answers file');
  for (const [split, file] of files) {
    if (typeof file !== 'string' || file === '') throw new InvalidOptionError(`answers.${split}`, 'must be an answers file path');
  }

  async function load(signal: AbortSignal): Promise<Map<string, Map<string, string>>> {
    const out = new Map<string, Map<string, string>>();
    for (const [split, file] of files) {
      const byId = new Map<string, string>();
      for await (const a of readPopeAnswers(file, { signal })) {
        const key = String(a.question_id);
        if (byId.has(key)) throw new BadInputError(`question_id ${key} is answered twice`, { file, line: originOf(a)?.line, fix: 'keep one answer per question' });
        byId.set(key, a.text);
      }
      out.set(split, byId);
    }
    return out;
  }

  return {
    name: options.name ?? 'attach-answers',
    async *run(input: AsyncIterable<EvalRecord>, ctx: StageContext): AsyncIterable<EvalRecord> {
      let answers: Map<string, Map<string, string>> | undefined;
      for await (const r of input) {
        answers ??= await load(ctx.signal);
        const split = r.question_type;
        const byId = answers.get(split);
        if (!byId) {
          throw new BadInputError(`no answers file for split "${split}"`, { fix: `give one answers file per question file (answers=a.jsonl,b.jsonl or answers=DIR/{split}.jsonl)` });
        }
        const text = byId.get(r.question_id);
        if (text === undefined) {
          throw new BadInputError(`no answer for question_id ${r.question_id} of split "${split}"`, {
            file: files.get(split),
            fix: 'answer every question of the split (JSON Lines of {"question_id", "text"})',
          });
        }
        byId.delete(r.question_id);
        yield withOrigin({ ...r, model_answer: text }, originOf(r));
      }
      answers ??= await load(ctx.signal);
      for (const [split, byId] of answers) {
        if (byId.size === 0) continue;
        const extra = [...byId.keys()].slice(0, 3).join(', ');
        throw new BadInputError(`${byId.size} answer(s) for question_ids not in split "${split}" (e.g. ${extra})`, {
          file: files.get(split),
          fix: 'use the answers made for this question file',
        });
      }
    },
  };
}
