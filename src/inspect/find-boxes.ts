/**
 * Finds grounding boxes in text, Shikra's convention as the Flickr30k conversion writes them:
 * `A man [0.120,0.340,0.560,0.980] rides a horse [0.1,0.5,0.3,0.9;0.4,0.5,0.6,0.9].`
 */
export type Box = readonly [number, number, number, number];

export interface GroundedPhrase {
  /** The phrase the boxes follow (up to 6 words since the previous box or clause break). */
  readonly label: string;
  /** Normalised [x0, y0, x1, y1] in [0, 1]. */
  readonly boxes: readonly Box[];
}

const NUM = String.raw`\s*(?:0|1|0?\.\d+|[01]\.\d*)\s*`;
const ONE = `${NUM},${NUM},${NUM},${NUM}`;
const GROUP = new RegExp(String.raw`\[(${ONE}(?:;${ONE})*)\]`, 'g');
const MAX_LABEL_WORDS = 6;
const LEADING_JOINERS = new Set(['and', 'or', 'with', 'while', 'as', 'but']);

function parseBoxes(inner: string): Box[] {
  const boxes: Box[] = [];
  for (const part of inner.split(';')) {
    const v = part.split(',').map((x) => Number(x.trim()));
    if (v.length !== 4 || v.some((x) => !Number.isFinite(x) || x < 0 || x > 1)) continue;
    const [x0, y0, x1, y1] = v as [number, number, number, number];
    if (x1 < x0 || y1 < y0) continue;
    boxes.push([x0, y0, x1, y1]);
  }
  return boxes;
}

/** Every `[x0,y0,x1,y1(;...)]` group in `text`, each with the phrase before it. */
export function findBoxes(text: string): GroundedPhrase[] {
  const out: GroundedPhrase[] = [];
  let last = 0;
  for (const m of text.matchAll(GROUP)) {
    const boxes = parseBoxes(m[1]!);
    const before = text.slice(last, m.index).replace(/<image>/g, ' ');
    last = m.index! + m[0].length;
    if (boxes.length === 0) continue;
    // the phrase: after the last clause break, at most a few words
    const clause = before.split(/[.,;:!?\n]/).pop() ?? '';
    const words = clause.trim().split(/\s+/).filter(Boolean);
    // "... [box] and a large star [box]": the conjunction is not part of the phrase
    while (words.length > 1 && LEADING_JOINERS.has(words[0]!.toLowerCase())) words.shift();
    out.push({ label: words.slice(-MAX_LABEL_WORDS).join(' '), boxes });
  }
  return out;
}
