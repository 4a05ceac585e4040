/**
 * Joins facts to records by image, for the factually augmented reward model
 * (DESIGN.md "Facts"): COCO captions for COCO images (five each), A-OKVQA rationales plus
 * the correct answer, Flickr30k captions.
 *
 * Facts come from providers, each a source read once when the stage starts (inside the run,
 * so its rejections reach this stage's dead letters) into a table keyed by image. The tables
 * are bounded by the number of images (COCO train2014: 83k images, ~40 MB of caption text).
 *
 * Image keys: records name images by path (`coco/train2017/000000461751.jpg`), COCO files by
 * `COCO_val2014_000000461751.jpg` or the bare id. `imageKey` reduces all of them to
 * `<dataset>:<number>`: the last run of digits of the basename without leading zeros, and the
 * dataset `flickr30k` when the path mentions flickr (Flickr30k and COCO ids overlap), else `coco`.
 *
 * Merge: the record's own facts first (e.g. an A-OKVQA prompt's rationales), then each
 * provider's in order, exact duplicates dropped, at most `maxFacts`.
 */
import { InvalidOptionError } from '../src/errors.ts';
import { originOf, withOrigin } from '../src/stream/origin.ts';
import type { Source, SourceContext, Stage, StageContext } from '../src/stream/stage.ts';
import type { AokvqaItem } from '../schemas/aokvqa-item.ts';
import type { CocoCaptionsItem } from '../schemas/coco-captions-item.ts';
import type { Flickr30kItem } from '../schemas/flickr30k-item.ts';
import { aokvqaFactsOf } from './aokvqa-multichoice.ts';

/** Facts by image key (see `imageKey`). */
export type FactTable = ReadonlyMap<string, readonly string[]>;

export interface FactLoadContext {
  readonly signal: AbortSignal;
  readonly seed: number;
  reject: StageContext['reject'];
  note(text: string): void;
}

/** Something that can build a fact table (once per run). */
export interface FactProvider {
  readonly name: string;
  load(ctx: FactLoadContext): Promise<FactTable>;
}

/** `coco:461751`, `flickr30k:4945942737`; null when the path holds no number. */
export function imageKey(image: string): string | null {
  const base = image.split(/[/\\]/).pop() ?? image;
  const runs = base.match(/\d+/g);
  if (!runs) return null;
  const n = runs[runs.length - 1]!.replace(/^0+(?=\d)/, '');
  return `${/flickr/i.test(image) ? 'flickr30k' : 'coco'}:${n}`;
}

function sourceContext(name: string, ctx: FactLoadContext): SourceContext {
  return {
    name,
    signal: ctx.signal,
    seed: ctx.seed,
    // Facts must cover every image whatever share of the records this run processes.
    partition: { index: 0, count: 1 },
    counts: { in: 0, out: 0, rejected: 0 },
    reject: ctx.reject,
    setTotal() {},
    note: ctx.note,
  };
}

/** Builds a provider from any source and a function giving each item's image key and facts. */
export function factsFrom<T>(source: Source<T>, extract: (item: T) => { key: string | null; facts: readonly string[] }): FactProvider {
  return {
    name: source.name,
    async load(ctx) {
      const table = new Map<string, string[]>();
      for await (const item of source.read(sourceContext(source.name, ctx))) {
        const { key, facts } = extract(item);
        if (key === null || facts.length === 0) continue;
        const list = table.get(key);
        if (list) list.push(...facts);
        else table.set(key, [...facts]);
      }
      return table;
    },
  };
}

/** COCO captions, keyed by the COCO image id. */
export function cocoCaptionFacts(source: Source<CocoCaptionsItem>): FactProvider {
  return factsFrom(source, (item) => ({ key: `coco:${item.image_id}`, facts: item.captions }));
}

/** A-OKVQA rationales and the correct answer of every question on an image. */
export function aokvqaFacts(source: Source<AokvqaItem>): FactProvider {
  return factsFrom(source, (item) => ({ key: `coco:${item.image_id}`, facts: aokvqaFactsOf(item) }));
}

/** Flickr30k captions (plain text, markup removed, detokenised). */
export function flickr30kFacts(source: Source<Flickr30kItem>): FactProvider {
  return factsFrom(source, (item) => ({
    key: `flickr30k:${item.id.replace(/^0+(?=\d)/, '')}`,
    facts: item.sentences.map((s) => s.text.replace(/\s+/g, ' ').replace(/ ([.,!?;:])/g, '$1').trim()).filter((s) => s !== ''),
  }));
}

/** A ready table: image paths (or keys) to facts, e.g. an `image_to_caption.json` mapping. */
export function factTable(entries: Iterable<readonly [string, readonly string[]]>, name = 'fact-table'): FactProvider {
  const table = new Map<string, string[]>();
  for (const [image, facts] of entries) {
    const key = image.includes(':') ? image : imageKey(image);
    if (key === null) continue;
    table.set(key, [...(table.get(key) ?? []), ...facts]);
  }
  return { name, load: async () => table };
}

export interface AttachFactsOptions {
  /** Where facts come from; loaded once when the stage starts. */
  readonly from: readonly FactProvider[];
  /** Image key of a record (default: `imageKey(record.image)`). */
  readonly keyOf?: (image: string) => string | null;
  /** What to do with a record that gets no facts: `keep` it with `facts: []` (default) or `reject` it. */
  readonly missing?: 'keep' | 'reject';
  /** Keep at most this many facts per record (default unlimited). */
  readonly maxFacts?: number;
  /** Stage name (default `attach-facts`). */
  readonly name?: string;
}

export interface FactsReport {
  readonly records: number;
  readonly withFacts: number;
  readonly without: number;
  readonly tableImages: number;
}

type WithImage = { readonly image: string | null; readonly facts?: readonly string[] };

/** Adds `facts: string[]` to each record from the providers' tables (see the module comment). */
export function attachFacts<T extends WithImage>(options: AttachFactsOptions): Stage<T, T & { facts: string[] }> & { report(): FactsReport } {
  if (!Array.isArray(options?.from) || options.from.some((p) => typeof p?.load !== 'function')) {
    throw new InvalidOptionError('from', 'must be a list of fact providers (cocoCaptionFacts, aokvqaFacts, flickr30kFacts, factTable)');
  }
  const missing = options.missing ?? 'keep';
  if (missing !== 'keep' && missing !== 'reject') throw new InvalidOptionError('missing', `must be "keep" or "reject", got ${JSON.stringify(missing)}`);
  const maxFacts = options.maxFacts ?? Infinity;
  if (!(maxFacts >= 0)) throw new InvalidOptionError('maxFacts', `must be >= 0, got ${String(maxFacts)}`);
  const keyOf = options.keyOf ?? imageKey;
  const name = options.name ?? 'attach-facts';
  let report: FactsReport = { records: 0, withFacts: 0, without: 0, tableImages: 0 };

  return {
    name,
    report: () => report,
    async *run(input: AsyncIterable<T>, ctx: StageContext): AsyncIterable<T & { facts: string[] }> {
      const tables: FactTable[] = [];
      for (const p of options.from) tables.push(await p.load({ signal: ctx.signal, seed: ctx.seed, reject: ctx.reject, note: ctx.note }));
      const images = new Set<string>();
      for (const t of tables) for (const k of t.keys()) images.add(k);
      let records = 0;
      let withFacts = 0;
      for await (const rec of input) {
        records++;
        const facts: string[] = [];
        const seen = new Set<string>();
        const add = (f: string): void => {
          const t = f.trim();
          if (t !== '' && !seen.has(t) && facts.length < maxFacts) { seen.add(t); facts.push(t); }
        };
        for (const f of rec.facts ?? []) add(f);
        const key = rec.image === null ? null : keyOf(rec.image);
        if (key !== null) for (const t of tables) for (const f of t.get(key) ?? []) add(f);
        if (facts.length === 0 && missing === 'reject') {
          ctx.reject(rec, `no facts for image ${JSON.stringify(rec.image)} (key ${String(key)}) in ${options.from.map((p) => p.name).join(', ') || 'no providers'}`, originOf(rec));
          continue;
        }
        if (facts.length > 0) withFacts++;
        yield withOrigin({ ...rec, facts } as T & { facts: string[] }, originOf(rec));
      }
      report = { records, withFacts, without: records - withFacts, tableImages: images.size };
      ctx.note(`${withFacts} of ${records} records got facts (${images.size} images in the fact tables)`);
    },
  };
}
