/**
 * Finishes human preference records for the reward model: attaches facts by image
 * (COCO captions for the LLaVA-RLHF data, whose images are COCO train2017) and checks each
 * record against the `preference` schema (a record that fails is rejected with the reason).
 */
import { InvalidOptionError } from '../src/errors.ts';
import { originOf } from '../src/stream/origin.ts';
import type { Stage, StageContext } from '../src/stream/stage.ts';
import { preferenceSchema, type Preference } from '../schemas/preference.ts';
import { attachFacts, type FactProvider, type FactsReport } from './attach-facts.ts';

export interface ToPreferenceOptions {
  /** Fact providers (e.g. `cocoCaptionFacts(cocoCaptionsSource({file}))`); empty keeps facts as they are. */
  readonly facts: readonly FactProvider[];
  /** A record without facts: `keep` (default) or `reject`. */
  readonly missing?: 'keep' | 'reject';
  readonly maxFacts?: number;
  /** Stage name (default `to-preference`). */
  readonly name?: string;
}

export function toPreference(options: ToPreferenceOptions): Stage<Preference, Preference> & { report(): FactsReport } {
  if (!Array.isArray(options?.facts)) throw new InvalidOptionError('facts', 'must be a list of fact providers (may be empty)');
  const name = options.name ?? 'to-preference';
  const attach = attachFacts<Preference>({ from: options.facts, missing: options.missing, maxFacts: options.maxFacts, name });
  return {
    name,
    report: () => attach.report(),
    async *run(input: AsyncIterable<Preference>, ctx: StageContext): AsyncIterable<Preference> {
      for await (const rec of attach.run(input, ctx)) {
        const reason = preferenceSchema.validate(rec);
        if (reason) {
          ctx.reject(rec, `preference ${rec.id}: ${reason}`, originOf(rec));
          continue;
        }
        yield rec;
      }
    },
  };
}
