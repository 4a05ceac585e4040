/**
 * Writers for the raw formats of the datasets the shapes world imitates. Big files are
 * written record by record through a buffered writer that honours `drain`, under a `.tmp`
 * name, and renamed only when complete, so 100k-image worlds run in bounded memory and a
 * half-written world never looks finished.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { once } from 'node:events';

/**
 * JSON text as Python's `json.dumps` writes it by default (separators ", " and ": ",
 * non-ASCII escaped), which is how the official VQA-v2, COCO, A-OKVQA and POPE files look.
 */
export function pyJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return '[' + value.map(pyJson).join(', ') + ']';
  if (typeof value === 'object') {
    return '{' + Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).map(([k, v]) => `${pyJson(k)}: ${pyJson(v)}`).join(', ') + '}';
  }
  throw new TypeError(`cannot serialise ${typeof value}`);
}

/** `JSON.stringify(value, null, 2)` with every line indented by `depth` more levels. */
export function indentedJson(value: unknown, depth: number): string {
  const pad = '  '.repeat(depth);
  return JSON.stringify(value, null, 2).split('\n').map((l) => pad + l).join('\n');
}

const FLUSH_BYTES = 1 << 16;

/** A buffered text file writer with backpressure; writes `<path>.tmp`, renames on `close`. */
export class TextFileWriter {
  readonly path: string;
  private readonly tmp: string;
  private readonly stream: WriteStream;
  private buffer: string[] = [];
  private buffered = 0;
  private failure: Error | undefined;
  bytes = 0;

  constructor(path: string) {
    this.path = path;
    this.tmp = `${path}.tmp`;
    this.stream = createWriteStream(this.tmp);
    this.stream.on('error', (e) => {
      this.failure ??= e;
    });
  }

  async write(text: string): Promise<void> {
    if (this.failure) throw this.failure;
    this.buffer.push(text);
    this.buffered += text.length;
    if (this.buffered >= FLUSH_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.buffer.length === 0) return;
    const chunk = this.buffer.join('');
    this.buffer = [];
    this.buffered = 0;
    this.bytes += Buffer.byteLength(chunk);
    if (!this.stream.write(chunk)) await once(this.stream, 'drain');
    if (this.failure) throw this.failure;
  }

  /** Appends another file's bytes (streamed). */
  async append(file: string): Promise<void> {
    await this.flush();
    for await (const chunk of createReadStream(file)) {
      this.bytes += (chunk as Buffer).length;
      if (!this.stream.write(chunk)) await once(this.stream, 'drain');
    }
    if (this.failure) throw this.failure;
  }

  /** Flushes, closes and renames into place. */
  async close(): Promise<void> {
    await this.flush();
    this.stream.end();
    await once(this.stream, 'close');
    if (this.failure) throw this.failure;
    await rename(this.tmp, this.path);
  }

  /** Closes and deletes the temporary file (after a failure). */
  async discard(): Promise<void> {
    this.stream.destroy();
    await unlink(this.tmp).catch(() => undefined);
  }
}

/** A JSON array written element by element between a fixed head and tail. */
export class JsonArrayWriter {
  private count = 0;
  constructor(
    private readonly out: TextFileWriter,
    private readonly separator: string,
    private readonly tail: string,
  ) {}
  static async open(out: TextFileWriter, head: string, separator: string, tail: string): Promise<JsonArrayWriter> {
    await out.write(head);
    return new JsonArrayWriter(out, separator, tail);
  }
  get length(): number {
    return this.count;
  }
  async add(text: string): Promise<void> {
    await this.out.write(this.count === 0 ? text : this.separator + text);
    this.count++;
  }
  async finish(): Promise<void> {
    await this.out.write(this.tail);
  }
}

// ---------------------------------------------------------------------------
// Fixed headers of each format
// ---------------------------------------------------------------------------

export const VQA_INFO = {
  description: 'This is v2.0 of the VQA dataset.',
  url: 'http://visualqa.org',
  version: '2.0',
  year: 2017,
  contributor: 'VQA Team',
  date_created: '2017-04-26 17:00:44',
};

export const VQA_LICENSE = { url: 'http://creativecommons.org/licenses/by/4.0/', name: 'Creative Commons Attribution 4.0 International License' };

/** Head of `v2_OpenEnded_mscoco_train2014_questions.json` up to the `questions` array. */
export function vqaQuestionsHead(subtype: string): string {
  const head = pyJson({ info: VQA_INFO, task_type: 'Open-Ended', data_type: 'mscoco', license: VQA_LICENSE, data_subtype: subtype });
  return head.slice(0, -1) + ', "questions": [';
}

/** Head of `v2_mscoco_train2014_annotations.json`; key order as the real files (emma fixture). */
export function vqaAnnotationsHead(subtype: string): string {
  const head = pyJson({ info: VQA_INFO, license: VQA_LICENSE, data_subtype: subtype, data_type: 'mscoco' });
  return head.slice(0, -1) + ', "annotations": [';
}

export const COCO_INFO = {
  description: 'COCO 2014 Dataset',
  url: 'http://cocodataset.org',
  version: '1.0',
  year: 2014,
  contributor: 'COCO Consortium',
  date_created: '2017/09/01',
};

/** The eight licences COCO's annotation files list (ids 1-8). */
export const COCO_LICENSES = [
  { url: 'http://creativecommons.org/licenses/by-nc-sa/2.0/', id: 1, name: 'Attribution-NonCommercial-ShareAlike License' },
  { url: 'http://creativecommons.org/licenses/by-nc/2.0/', id: 2, name: 'Attribution-NonCommercial License' },
  { url: 'http://creativecommons.org/licenses/by-nc-nd/2.0/', id: 3, name: 'Attribution-NonCommercial-NoDerivs License' },
  { url: 'http://creativecommons.org/licenses/by/2.0/', id: 4, name: 'Attribution License' },
  { url: 'http://creativecommons.org/licenses/by-sa/2.0/', id: 5, name: 'Attribution-ShareAlike License' },
  { url: 'http://creativecommons.org/licenses/by-nd/2.0/', id: 6, name: 'Attribution-NoDerivs License' },
  { url: 'http://flickr.com/commons/usage/', id: 7, name: 'No known copyright restrictions' },
  { url: 'http://www.usgovxml.com/copyright.html', id: 8, name: 'United States Government Work' },
];

/** COCO captions: head up to `images`, and the middle between `images` and `annotations`. */
export function cocoCaptionsHead(): string {
  return `{"info": ${pyJson(COCO_INFO)}, "images": [`;
}
export function cocoCaptionsMiddle(): string {
  return `], "licenses": ${pyJson(COCO_LICENSES)}, "annotations": [`;
}

/** Flickr30k Entities `Annotations/<id>.xml`: 1-based inclusive pixel corners, tab-indented. */
export function flickrXml(
  filename: string,
  width: number,
  height: number,
  entities: readonly { chainId: number; boxes: readonly (readonly [number, number, number, number])[]; scene: boolean; nobndbox: boolean }[],
): string {
  const lines = ['<annotation>', `\t<filename>${filename}</filename>`, '\t<size>', `\t\t<width>${width}</width>`, `\t\t<height>${height}</height>`, '\t\t<depth>3</depth>', '\t</size>'];
  for (const e of entities) {
    for (const [x0, y0, x1, y1] of e.boxes) {
      // ground-truth boxes are 0-based with exclusive ends; Flickr30k uses 1-based inclusive corners
      lines.push('\t<object>', `\t\t<name>${e.chainId}</name>`, '\t\t<bndbox>', `\t\t\t<xmin>${x0 + 1}</xmin>`, `\t\t\t<ymin>${y0 + 1}</ymin>`, `\t\t\t<xmax>${x1}</xmax>`, `\t\t\t<ymax>${y1}</ymax>`, '\t\t</bndbox>', '\t</object>');
    }
  }
  for (const e of entities) {
    if (e.boxes.length > 0) continue;
    lines.push('\t<object>', `\t\t<name>${e.chainId}</name>`, `\t\t<nobndbox>${e.nobndbox ? 1 : 0}</nobndbox>`, `\t\t<scene>${e.scene ? 1 : 0}</scene>`, '\t</object>');
  }
  lines.push('</annotation>');
  return lines.join('\n') + '\n';
}
