/**
 * Flickr30k Entities -> spotting captions (DESIGN.md "Dataset conversion", Shikra's format):
 * the caption with each grounded phrase followed by its boxes,
 *   `A girl [0.320,0.177,0.660,0.901] with brown hair [0.398,0.177,0.520,0.390] sits on ...`
 *
 * Boxes. The XML gives 1-based pixel corners, both inclusive (the official loader subtracts 1
 * from all four). A box covering pixels xmin..xmax spans the continuous interval
 * [xmin-1, xmax] in 0-based pixel edges, so it is normalised as
 *   x0 = (xmin - 1) / width,  y0 = (ymin - 1) / height,  x1 = xmax / width,  y1 = ymax / height
 * (the whole image, 1..W x 1..H, becomes [0,0,1,1]), clamped to [0,1] and written with 3
 * decimals. Several boxes of one entity go inside one bracket joined by `;`, in XML order.
 *
 * Plain text: phrases whose entity is `nobndbox` or `scene`, chain id 0 and `notvisual`.
 * Text is detokenised (the captions are tokenised: "water ." -> "water.").
 *
 * Rejected, with the file (and line) in the dead letter:
 * - an image with a box outside the image: a corner beyond the image by more than
 *   `tolerance` pixels (default 1, for annotators' off-by-one), or xmin > xmax / ymin > ymax;
 * - a caption whose phrase refers to an entity the XML does not annotate at all.
 *
 * The instruction comes from `templates`, picked by `hash32(record id, run seed)`.
 * `captionsPerImage`: `all` (default) makes one record per caption (up to five), `first` one
 * record from the first caption that converts.
 */
import { InvalidOptionError } from '../src/errors.ts';
import { originOf, withOrigin } from '../src/stream/origin.ts';
import { hash32 } from '../src/stream/random.ts';
import type { Stage, StageContext } from '../src/stream/stage.ts';
import type { Conversation } from '../schemas/conversation.ts';
import type { Flickr30kBox, Flickr30kItem, Flickr30kSentence } from '../schemas/flickr30k-item.ts';

export interface Flickr30kSpottingOptions {
  /** `all` (default): one record per caption; `first`: one per image. */
  readonly captionsPerImage?: 'all' | 'first';
  /** Instructions to pick from (seeded hash of the record id). */
  readonly templates?: readonly string[];
  /** Image path relative to the image root; `{id}` is the Flickr image id. Default `flickr30k/{id}.jpg`. */
  readonly imagePath?: string;
  /** Pixels a box may reach beyond the image before it counts as outside (default 1). */
  readonly tolerance?: number;
  /** Remove the spaces the tokenised captions have before punctuation (default true). */
  readonly detokenize?: boolean;
  /** Stage name (default `flickr30k-spotting`). */
  readonly name?: string;
}

export const SPOTTING_TEMPLATES: readonly string[] = [
  'Briefly describe the image. After each object you mention, give its bounding box as [x0,y0,x1,y1] with coordinates between 0 and 1.',
  'Write a one-sentence caption for the image, and ground every object you mention with its bounding box [x0,y0,x1,y1].',
  'Describe the image in one sentence, following each mentioned object with its normalized bounding box.',
  'Give a short caption of the image with the bounding box [x0,y0,x1,y1] of every object you refer to.',
  'What does the image show? Answer in one sentence and mark each object you mention with its box [x0,y0,x1,y1].',
];

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

function fmt(v: number): string {
  return (Math.round(clamp01(v) * 1000) / 1000).toFixed(3);
}

/** One box as `x0,y0,x1,y1` (normalised, 3 decimals), see the module comment. */
export function normalizeBox(box: Flickr30kBox, width: number, height: number): string {
  return [fmt((box.xmin - 1) / width), fmt((box.ymin - 1) / height), fmt(box.xmax / width), fmt(box.ymax / height)].join(',');
}

/** Null when the box lies within the image (give or take `tolerance` pixels), else why not. */
export function checkBox(box: Flickr30kBox, width: number, height: number, tolerance: number): string | null {
  const { xmin, ymin, xmax, ymax } = box;
  if (xmin > xmax || ymin > ymax) return 'is inverted (xmin > xmax or ymin > ymax)';
  if (xmin < 1 - tolerance || ymin < 1 - tolerance || xmax > width + tolerance || ymax > height + tolerance) {
    return `lies outside the ${width}x${height} image`;
  }
  return null;
}

/** Every box in a spotting caption, as numbers (for checks): `[[x0,y0,x1,y1], ...]`. */
export function spottingBoxes(caption: string): number[][] {
  const out: number[][] = [];
  for (const m of caption.matchAll(/\[([^\]]*)\]/g)) {
    for (const box of m[1]!.split(';')) out.push(box.split(',').map(Number));
  }
  return out;
}

export function detokenize(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/ ([.,!?;:])/g, '$1').trim();
}

/**
 * The spotting caption of one sentence, or the reason it cannot be made
 * (a phrase whose entity has no annotation).
 */
export function spottingCaption(item: Flickr30kItem, sentence: Flickr30kSentence, detok = true): string | { reason: string } {
  let out = '';
  for (const part of sentence.parts) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    const boxes = item.boxes[part.chainId];
    if (boxes && boxes.length > 0) {
      out += `${part.text} [${boxes.map((b) => normalizeBox(b, item.width, item.height)).join(';')}]`;
      continue;
    }
    const plain = part.chainId === '0' || part.types.includes('notvisual') || item.nobndbox.includes(part.chainId) || item.scene.includes(part.chainId);
    if (!plain) {
      return { reason: `phrase ${JSON.stringify(part.text)} refers to entity ${part.chainId}, which ${item.files.annotations} does not annotate (no box, nobndbox or scene)` };
    }
    out += part.text;
  }
  return detok ? detokenize(out) : out.replace(/\s+/g, ' ').trim();
}

/** Flickr30k Entities images -> spotting-caption conversations (see the module comment). */
export function flickr30kSpotting(options: Flickr30kSpottingOptions = {}): Stage<Flickr30kItem, Conversation> & { readonly conserves: false } {
  const perImage = options.captionsPerImage ?? 'all';
  if (perImage !== 'all' && perImage !== 'first') throw new InvalidOptionError('captionsPerImage', `must be "all" or "first", got ${JSON.stringify(perImage)}`);
  const templates = options.templates ?? SPOTTING_TEMPLATES;
  if (!Array.isArray(templates) || templates.length === 0 || templates.some((t) => typeof t !== 'string' || t.trim() === '' || t.includes('<image>'))) {
    throw new InvalidOptionError('templates', 'must be a non-empty list of non-empty strings without "<image>"');
  }
  const pathTemplate = options.imagePath ?? 'flickr30k/{id}.jpg';
  if (typeof pathTemplate !== 'string' || !pathTemplate.includes('{id}') || pathTemplate.startsWith('/') || pathTemplate.split('/').includes('..')) {
    throw new InvalidOptionError('imagePath', `must be a relative path template with {id}, got ${JSON.stringify(pathTemplate)}`);
  }
  const tolerance = options.tolerance ?? 1;
  if (!Number.isFinite(tolerance) || tolerance < 0) throw new InvalidOptionError('tolerance', `must be a number >= 0, got ${String(tolerance)}`);
  const detok = options.detokenize ?? true;
  const name = options.name ?? 'flickr30k-spotting';

  return {
    name,
    conserves: false,
    async *run(input: AsyncIterable<Flickr30kItem>, ctx: StageContext): AsyncIterable<Conversation> {
      for await (const item of input) {
        const origin = originOf(item);
        let bad: string | null = null;
        for (const [chain, boxes] of Object.entries(item.boxes)) {
          for (const b of boxes) {
            const why = checkBox(b, item.width, item.height, tolerance);
            if (why) { bad = `image ${item.id}: box of entity ${chain} (xmin ${b.xmin}, ymin ${b.ymin}, xmax ${b.xmax}, ymax ${b.ymax}) ${why}`; break; }
          }
          if (bad) break;
        }
        if (bad) {
          ctx.reject(item, bad, { file: item.files.annotations, index: origin?.index });
          continue;
        }
        const image = pathTemplate.replaceAll('{id}', item.id);
        for (let s = 0; s < item.sentences.length; s++) {
          const sentence = item.sentences[s]!;
          const caption = spottingCaption(item, sentence, detok);
          if (typeof caption !== 'string') {
            ctx.reject({ id: item.id, caption: sentence.text }, `image ${item.id}, caption ${s + 1}: ${caption.reason}`, {
              file: item.files.sentences, line: sentence.line, index: origin?.index,
            });
            continue;
          }
          const id = `flickr30k-${item.id}-${sentence.line}`;
          const template = templates[hash32(id, ctx.seed) % templates.length]!;
          const rec: Conversation = {
            id,
            image,
            conversations: [
              { from: 'human', value: `<image>\n${template}` },
              { from: 'gpt', value: caption },
            ],
            source: 'flickr30k',
            meta: JSON.stringify({ image_id: item.id, caption_line: sentence.line }),
          };
          yield withOrigin(rec, { file: item.files.sentences, line: sentence.line, index: origin?.index });
          if (perImage === 'first') break;
        }
      }
    },
  };
}
