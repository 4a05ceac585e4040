/**
 * Checks each record's image with sharp: the path stays inside the image root, the file
 * exists, decodes, and has a sane size. Policy `reject` (default) sends a record with a bad
 * image to the dead letters with the reason; `keep` passes it on and counts it. A path that
 * leaves the image root (absolute, or a `..` segment) is always rejected: it is never opened.
 *
 * Decoding: `full` (default) decodes the pixels with sharp's `failOn: 'truncated'`, so cut
 * files fail (images over 2048 px per side decode through JPEG shrink-on-load, which still reads
 * every byte); `header` only reads the header.
 *
 * Optional preprocessing writes a copy of each good image under `preprocess.out` at the same
 * relative path: padded to a square with the CLIP mean colour (LLaVA's `expand2square` with
 * `int(0.48145466*255), int(0.4578275*255), int(0.40821073*255)` = (122, 116, 104)) and resized
 * to `size` x `size` (one sharp `contain` resize, centred), or with `pad: false` resized on the
 * short side and centre-cropped (CLIP's own preprocessing). Records keep their relative path,
 * so the copies are used by pointing the image root at `preprocess.out`.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import sharp from 'sharp';
import { BadRecordError, InvalidOptionError } from '../src/errors.ts';
import { map } from '../src/stream/map.ts';
import type { Stage, StageContext } from '../src/stream/stage.ts';

export const CLIP_MEAN_RGB = { r: 122, g: 116, b: 104 } as const;

export interface ImageCheckOptions {
  /** Folder the records' image paths are relative to. */
  readonly root: string;
  /** `reject` (default) or `keep` records whose image fails. */
  readonly policy?: 'reject' | 'keep';
  /** `full` (default) decodes the pixels; `header` reads only the header. */
  readonly decode?: 'full' | 'header';
  /** Smallest allowed width/height in pixels (default 8). */
  readonly minSide?: number;
  /** Largest allowed width/height in pixels (default 16384). */
  readonly maxSide?: number;
  /** Write padded/resized copies. */
  readonly preprocess?: { readonly out: string; readonly size?: number; readonly pad?: boolean; readonly quality?: number };
  /** Images checked at once (default 4). */
  readonly concurrency?: number;
  /** Stage name (default `image-check`). */
  readonly name?: string;
}

export interface ImageCheckReport {
  checked: number;
  ok: number;
  bad: number;
  /** Bad images passed on under policy `keep`. */
  kept: number;
  written: number;
  noImage: number;
}

/** The absolute path of `image` under `root`, or why it is refused. */
export function resolveUnderRoot(root: string, image: string): string | { reason: string } {
  if (isAbsolute(image) || /^[A-Za-z]:/.test(image) || image.startsWith('\\')) return { reason: `image path ${JSON.stringify(image)} is absolute; it must be relative to the image root` };
  if (image.split(/[/\\]/).includes('..')) return { reason: `image path ${JSON.stringify(image)} leaves the image root (".." segment)` };
  const abs = resolve(root, image);
  const rel = relative(resolve(root), abs);
  if (rel.startsWith('..') || isAbsolute(rel)) return { reason: `image path ${JSON.stringify(image)} leaves the image root` };
  return abs;
}

type WithImage = { readonly image: string | null };

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code !== 'ENOENT' && code !== 'ENOTDIR'; // e.g. EACCES: there, but unreadable
  }
}

/** Image checking (and optional preprocessing) stage; see the module comment. */
export function imageCheck<T extends WithImage>(options: ImageCheckOptions): Stage<T, T> & { report(): ImageCheckReport } {
  if (typeof options?.root !== 'string' || options.root === '') throw new InvalidOptionError('root', 'must be the image root folder');
  const policy = options.policy ?? 'reject';
  if (policy !== 'reject' && policy !== 'keep') throw new InvalidOptionError('policy', `must be "reject" or "keep", got ${JSON.stringify(policy)}`);
  const decode = options.decode ?? 'full';
  if (decode !== 'full' && decode !== 'header') throw new InvalidOptionError('decode', `must be "full" or "header", got ${JSON.stringify(decode)}`);
  const minSide = options.minSide ?? 8;
  const maxSide = options.maxSide ?? 16384;
  if (!Number.isInteger(minSide) || minSide < 1) throw new InvalidOptionError('minSide', `must be an integer >= 1, got ${String(minSide)}`);
  if (!Number.isInteger(maxSide) || maxSide < minSide) throw new InvalidOptionError('maxSide', `must be an integer >= minSide, got ${String(maxSide)}`);
  const pre = options.preprocess;
  const size = pre?.size ?? 336;
  if (pre !== undefined) {
    if (typeof pre.out !== 'string' || pre.out === '') throw new InvalidOptionError('preprocess.out', 'must be a folder');
    if (resolve(pre.out) === resolve(options.root)) throw new InvalidOptionError('preprocess.out', 'must differ from the image root (copies would overwrite the originals)');
    if (!Number.isInteger(size) || size < 1 || size > 4096) throw new InvalidOptionError('preprocess.size', `must be an integer in 1..4096, got ${String(size)}`);
  }
  const concurrency = options.concurrency ?? 4;
  const root = resolve(options.root);
  const name = options.name ?? 'image-check';
  const report: ImageCheckReport = { checked: 0, ok: 0, bad: 0, kept: 0, written: 0, noImage: 0 };

  /** Null when the image is fine, else the reason. */
  async function check(abs: string, image: string): Promise<string | null> {
    let meta: Awaited<ReturnType<ReturnType<typeof sharp>["metadata"]>>;
    try {
      meta = await sharp(abs, { failOn: 'truncated' }).metadata();
    } catch (err) {
      // Ask the filesystem, not sharp's wording: sharp tells "missing" from "unsupported format"
      // by reading libvips' shared error buffer, which concurrent decodes overwrite.
      if (!(await exists(abs))) return `image ${image} does not exist under the image root ${root}`;
      return `image ${image} cannot be read: ${(err as Error).message}`;
    }
    const w = meta.autoOrient?.width ?? meta.width ?? 0;
    const h = meta.autoOrient?.height ?? meta.height ?? 0;
    if (w < minSide || h < minSide || w > maxSide || h > maxSide) return `image ${image} is ${w}x${h}, outside the allowed ${minSide}..${maxSide} pixels per side`;
    if (decode === 'full') {
      try {
        // Photo-sized images decode fastest as they are; big ones shrink on load (JPEG DCT scaling).
        const img = sharp(abs, { failOn: 'truncated' });
        await (Math.max(w, h) <= 2048 ? img : img.resize(256, 256, { fit: 'inside', fastShrinkOnLoad: true })).raw().toBuffer();
      } catch (err) {
        return `image ${image} does not decode: ${(err as Error).message}`;
      }
    }
    return null;
  }

  async function write(abs: string, image: string): Promise<void> {
    const out = join(resolve(pre!.out), image);
    await mkdir(dirname(out), { recursive: true });
    let img = sharp(abs).resize(size, size, pre!.pad === false
      ? { fit: 'cover', position: 'centre' }
      : { fit: 'contain', position: 'centre', background: CLIP_MEAN_RGB });
    if (/\.jpe?g$/i.test(out)) img = img.jpeg({ quality: pre!.quality ?? 95 });
    await img.toFile(out);
    report.written++;
  }

  const stage = map<T, T>(async (rec) => {
    if (rec.image === null) {
      report.noImage++;
      return rec;
    }
    const abs = resolveUnderRoot(root, rec.image);
    if (typeof abs !== 'string') {
      report.bad++;
      throw new BadRecordError(abs.reason, { fix: 'image paths must be relative to the image root and stay inside it' });
    }
    report.checked++;
    const reason = await check(abs, rec.image);
    if (reason) {
      report.bad++;
      if (policy === 'keep') {
        report.kept++;
        return rec;
      }
      throw new BadRecordError(reason, { fix: 'restore the image file, or run with image_check=keep/off' });
    }
    report.ok++;
    if (pre) await write(abs, rec.image);
    return rec;
  }, { concurrency, name });

  return {
    name,
    report: () => ({ ...report }),
    async *run(input: AsyncIterable<T>, ctx: StageContext): AsyncIterable<T> {
      Object.assign(report, { checked: 0, ok: 0, bad: 0, kept: 0, written: 0, noImage: 0 });
      yield* stage.run(input, ctx);
      ctx.note(`${report.ok} images ok, ${report.bad} bad${policy === 'keep' ? ` (${report.kept} kept)` : ''}, ${report.written} written, ${report.noImage} without image`);
    },
  };
}
