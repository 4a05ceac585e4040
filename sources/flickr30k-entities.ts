/**
 * Flickr30k Entities (Plummer et al. 2015): `Sentences/<id>.txt` (five captions with
 * `[/EN#<chain>/<type>[/<type2>] words]` phrases) paired with `Annotations/<id>.xml`
 * (`<size>`, `<object>`s with one or more `<name>` chain ids and either a `<bndbox>` or
 * `<nobndbox>`/`<scene>` flags). One item per image; both files are small, so each is read
 * whole, a few at a time ahead of the consumer (bounded prefetch, order kept).
 *
 * The XML has a fixed, flat layout, so a small tag scanner reads it (no XML dependency).
 * Boxes are kept exactly as written (1-based inclusive pixel corners); checking them against
 * the image size and normalising is the transform's job.
 *
 * Ids come from an id list (`train.txt`-style file or an array) or, for a local folder,
 * from the `Sentences/*.txt` names (sorted). A remote folder (http(s) base URL) needs `ids`.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BadInputError, InvalidOptionError } from '../src/errors.ts';
import { withOrigin } from '../src/stream/origin.ts';
import type { InputFingerprint, Source, SourceContext } from '../src/stream/stage.ts';
import type { Flickr30kBox, Flickr30kItem, Flickr30kPart, Flickr30kSentence } from '../schemas/flickr30k-item.ts';
import { readLines } from './line-records.ts';
import { fetchToCache } from './http-fetch.ts';
import { folderFingerprint, inputFile, isUrl, type HttpOptions } from './resolve-input.ts';

export type { Flickr30kBox, Flickr30kItem, Flickr30kPart, Flickr30kPhrase, Flickr30kSentence } from '../schemas/flickr30k-item.ts';

export interface Flickr30kSourceOptions {
  /** Folder (or http(s) base URL) holding `Sentences/` and `Annotations/`. */
  readonly dir: string;
  /**
   * Which images: an id list file (`train.txt`: one id per line; `#` comments and blank
   * lines skipped), or the ids themselves. Default: every `Sentences/*.txt` (local only).
   */
  readonly ids?: string | readonly string[];
  /** Files read ahead of the consumer (default 16). */
  readonly prefetch?: number;
  readonly http?: HttpOptions;
  /** Source name (default `flickr30k`). */
  readonly name?: string;
}

// `[/EN#221796/people A girl]`: chain id, '/'-separated types, one space, the words.
const PHRASE_RE = /\[\/EN#(\d+)((?:\/[^\s\]/]+)+) ([^\]]*)\]/g;

/** Parses one Sentences line into text pieces and phrases; throws a reason string on bad markup. */
export function parseFlickr30kSentence(text: string, line: number): Flickr30kSentence {
  const parts: Flickr30kPart[] = [];
  let plain = '';
  let last = 0;
  PHRASE_RE.lastIndex = 0;
  for (let m = PHRASE_RE.exec(text); m !== null; m = PHRASE_RE.exec(text)) {
    const before = text.slice(last, m.index);
    checkNoMarkup(before, line);
    if (before) parts.push(before);
    const words = m[3]!.trim();
    parts.push({ chainId: m[1]!, types: m[2]!.slice(1).split('/'), text: words });
    plain += before + words;
    last = PHRASE_RE.lastIndex;
  }
  const rest = text.slice(last);
  checkNoMarkup(rest, line);
  if (rest) parts.push(rest);
  plain += rest;
  return { line, parts, text: plain.trim() };
}

function checkNoMarkup(piece: string, line: number): void {
  const at = piece.search(/\[\/EN#|\[|\]/);
  if (at >= 0) throw new Error(`line ${line}: unbalanced or malformed phrase markup near ${JSON.stringify(piece.slice(Math.max(0, at - 10), at + 30))}`);
}

interface ParsedXml {
  width: number;
  height: number;
  boxes: Record<string, Flickr30kBox[]>;
  nobndbox: string[];
  scene: string[];
}

function tagText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>\\s*([^<]*?)\\s*</${tag}>`).exec(xml);
  return m ? m[1] : undefined;
}

function intTag(xml: string, tag: string, where: string): number {
  const t = tagText(xml, tag);
  if (t === undefined) throw new Error(`${where} has no <${tag}>`);
  if (!/^-?\d+(\.0+)?$/.test(t)) throw new Error(`${where}: <${tag}> is not an integer (${JSON.stringify(t)})`);
  return Number(t);
}

/** Parses an Annotations XML; throws an Error whose message is the reason. */
export function parseFlickr30kXml(xml: string): ParsedXml {
  const body = xml.replace(/<!--[\s\S]*?-->/g, '');
  if (!/<annotation[\s>]/.test(body)) throw new Error('not a Flickr30k Entities annotation (no <annotation> element)');
  const size = /<size>([\s\S]*?)<\/size>/.exec(body);
  if (!size) throw new Error('has no <size> element (width and height are needed to normalise boxes)');
  const width = intTag(size[1]!, 'width', '<size>');
  const height = intTag(size[1]!, 'height', '<size>');
  if (width <= 0 || height <= 0) throw new Error(`<size> must be positive, got ${width}x${height}`);
  const boxes: Record<string, Flickr30kBox[]> = {};
  const nobndbox: string[] = [];
  const scene: string[] = [];
  const objRe = /<object>([\s\S]*?)<\/object>/g;
  let k = 0;
  for (let m = objRe.exec(body); m !== null; m = objRe.exec(body), k++) {
    const obj = m[1]!;
    const names = [...obj.matchAll(/<name>\s*([^<]*?)\s*<\/name>/g)].map((n) => n[1]!);
    if (names.length === 0) throw new Error(`<object> #${k} has no <name>`);
    const bnd = /<bndbox>([\s\S]*?)<\/bndbox>/.exec(obj);
    if (bnd) {
      const where = `<object> #${k} (name ${names.join(',')}) <bndbox>`;
      const box: Flickr30kBox = {
        xmin: intTag(bnd[1]!, 'xmin', where),
        ymin: intTag(bnd[1]!, 'ymin', where),
        xmax: intTag(bnd[1]!, 'xmax', where),
        ymax: intTag(bnd[1]!, 'ymax', where),
      };
      for (const n of names) (boxes[n] ??= []).push(box);
      continue;
    }
    // No box: the official loader reads both flags; either may be absent in hand-made files.
    const nb = tagText(obj, 'nobndbox');
    const sc = tagText(obj, 'scene');
    if (nb === undefined && sc === undefined) throw new Error(`<object> #${k} (name ${names.join(',')}) has neither <bndbox> nor <nobndbox>/<scene>`);
    for (const n of names) {
      if (Number(nb) > 0 && !nobndbox.includes(n)) nobndbox.push(n);
      if (Number(sc) > 0 && !scene.includes(n)) scene.push(n);
    }
  }
  return { width, height, boxes, nobndbox, scene };
}

interface Paths {
  sentences: string;
  annotations: string;
}

/** Reads Flickr30k Entities images as `Flickr30kItem`s (see the module comment). */
export function flickr30kEntitiesSource(options: Flickr30kSourceOptions): Source<Flickr30kItem> {
  if (typeof options?.dir !== 'string' || options.dir === '') throw new InvalidOptionError('dir', 'must be the folder (or base URL) holding Sentences/ and Annotations/');
  const { dir, ids } = options;
  const remote = isUrl(dir);
  if (remote && ids === undefined) {
    throw new InvalidOptionError('ids', 'a remote Flickr30k folder needs an id list', { fix: 'pass ids: a train.txt path/URL or an array of image ids' });
  }
  if (ids !== undefined && typeof ids !== 'string' && !(Array.isArray(ids) && ids.every((i) => typeof i === 'string' && /^\w+$/.test(i)))) {
    throw new InvalidOptionError('ids', 'must be an id list file (path or URL) or an array of image ids (word characters only)');
  }
  const prefetch = options.prefetch ?? 16;
  if (!Number.isInteger(prefetch) || prefetch < 1) throw new InvalidOptionError('prefetch', `must be a positive integer, got ${String(prefetch)}`);
  const name = options.name ?? 'flickr30k';
  const idFile = typeof ids === 'string' ? inputFile(ids, options.http) : undefined;
  const base = remote ? dir.replace(/\/+$/, '') : dir;
  const pathsOf = (id: string): Paths => remote
    ? { sentences: `${base}/Sentences/${id}.txt`, annotations: `${base}/Annotations/${id}.xml` }
    : { sentences: join(base, 'Sentences', `${id}.txt`), annotations: join(base, 'Annotations', `${id}.xml`) };

  async function listIds(ctx: SourceContext): Promise<string[]> {
    if (Array.isArray(ids)) return [...ids];
    if (idFile) {
      const out: string[] = [];
      const file = await idFile.local(ctx.signal, ctx.note);
      for await (const { text, line } of readLines(file, { signal: ctx.signal })) {
        const t = text.trim();
        if (t === '' || t.startsWith('#')) continue;
        const id = t.split(/\s+/)[0]!.replace(/\.(jpg|txt|xml)$/, '');
        if (!/^\w+$/.test(id)) throw new BadInputError(`not an image id: ${JSON.stringify(t)}`, { file: idFile.input, line, fix: 'an id list holds one image id per line' });
        out.push(id);
      }
      return out;
    }
    let names: string[];
    try {
      names = await readdir(join(dir, 'Sentences'));
    } catch (err) {
      throw new BadInputError('cannot list Sentences/ (is this the Flickr30k Entities folder?)', {
        file: join(dir, 'Sentences'), cause: err, fix: 'pass the folder that holds Sentences/ and Annotations/',
      });
    }
    return names.filter((n) => n.endsWith('.txt')).map((n) => n.slice(0, -4)).sort();
  }

  async function readText(path: string, signal: AbortSignal): Promise<string | undefined> {
    try {
      if (remote) return await readFile((await fetchToCache(path, { ...options.http, signal })).path, 'utf8');
      return await readFile(path, 'utf8');
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ENOENT' || (code === 'FF_ERR_HTTP' && (err as { status?: number }).status === 404)) return undefined;
      throw err;
    }
  }

  /** The item, or the reason it cannot be made (with the file and line to blame). */
  async function load(id: string, signal: AbortSignal): Promise<Flickr30kItem | { reason: string; file: string; line?: number }> {
    const files = pathsOf(id);
    const [txt, xml] = await Promise.all([readText(files.sentences, signal), readText(files.annotations, signal)]);
    if (txt === undefined) return { reason: `image ${id}: no Sentences file`, file: files.sentences };
    if (xml === undefined) return { reason: `image ${id}: no Annotations file`, file: files.annotations };
    let parsed: ParsedXml;
    try {
      parsed = parseFlickr30kXml(xml);
    } catch (err) {
      return { reason: `image ${id}: annotation XML ${(err as Error).message}`, file: files.annotations };
    }
    const sentences: Flickr30kSentence[] = [];
    const lines = txt.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const text = lines[i]!.replace(/\r$/, '');
      if (text.trim() === '') continue;
      try {
        sentences.push(parseFlickr30kSentence(text, i + 1));
      } catch (err) {
        return { reason: `image ${id}: ${(err as Error).message}`, file: files.sentences, line: i + 1 };
      }
    }
    if (sentences.length === 0) return { reason: `image ${id}: the Sentences file has no captions`, file: files.sentences };
    return { id, width: parsed.width, height: parsed.height, sentences, boxes: parsed.boxes, nobndbox: parsed.nobndbox, scene: parsed.scene, files };
  }

  return {
    name,
    async inputs(): Promise<InputFingerprint[]> {
      const out: InputFingerprint[] = [];
      if (idFile) out.push(await idFile.fingerprint());
      if (!remote) out.push(await folderFingerprint(dir));
      return out;
    },
    async *read(ctx: SourceContext): AsyncIterable<Flickr30kItem> {
      const { index: part, count: parts } = ctx.partition;
      const all = await listIds(ctx);
      const mine = parts > 1 ? all.filter((_, i) => i % parts === part) : all;
      ctx.setTotal(mine.length);
      // Bounded, ordered prefetch: at most `prefetch` images are being read or waiting.
      const queue: { id: string; index: number; job: Promise<Awaited<ReturnType<typeof load>>> }[] = [];
      let next = 0;
      const fill = (): void => {
        while (queue.length < prefetch && next < mine.length) {
          const id = mine[next]!;
          const job = load(id, ctx.signal);
          job.catch(() => undefined); // awaited in order below
          queue.push({ id, index: next++, job });
        }
      };
      fill();
      while (queue.length > 0) {
        const { index, job } = queue.shift()!;
        const got = await job;
        fill();
        if ('reason' in got) {
          ctx.reject({ id: mine[index] }, got.reason, { file: got.file, line: got.line, index });
          continue;
        }
        yield withOrigin(got, { file: got.files.sentences, index });
      }
    },
  };
}
