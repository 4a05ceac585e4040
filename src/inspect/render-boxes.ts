import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { BadInputError, InvalidOptionError } from '../errors.ts';
import { findBoxes, type GroundedPhrase } from './find-boxes.ts';
import { readRecords } from './read-records.ts';

export interface RenderBoxesOptions {
  /** Records to render (those with an image); default 3. */
  n?: number;
  /** Folder the records' `image` paths are relative to. */
  images: string;
  /** Folder to write PNGs into (created). */
  to: string;
  /** Only records whose text holds at least one box count towards `n`; default false. */
  withBoxes?: boolean;
  /** Shorter images are upscaled so their longer side is this many pixels; default 768. */
  minSide?: number;
  signal?: AbortSignal;
}

export interface RenderedImage {
  readonly id: string;
  readonly image: string;
  /** Written PNG (absolute path). */
  readonly file: string;
  readonly phrases: readonly GroundedPhrase[];
  readonly width: number;
  readonly height: number;
}

const COLORS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6', '#bfef45', '#fabed4', '#469990'];

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** The texts of a record that may hold boxes: turns, responses, answers. */
export function recordTexts(record: Record<string, unknown>): string[] {
  const texts: string[] = [];
  if (Array.isArray(record.conversations)) {
    for (const t of record.conversations as { value?: unknown }[]) if (typeof t?.value === 'string') texts.push(t.value);
  }
  for (const k of ['response', 'output_1', 'output_2', 'question', 'model_answer']) {
    if (typeof record[k] === 'string') texts.push(record[k] as string);
  }
  return texts;
}

/** An SVG the size of the image with each box outlined and its phrase on a filled tag. */
export function boxOverlaySvg(phrases: readonly GroundedPhrase[], width: number, height: number): string {
  const font = Math.max(14, Math.round(Math.max(width, height) / 40));
  const stroke = Math.max(2, Math.round(font / 6));
  const parts: string[] = [];
  phrases.forEach((p, i) => {
    const color = COLORS[i % COLORS.length]!;
    for (const [x0, y0, x1, y1] of p.boxes) {
      const x = x0 * width;
      const y = y0 * height;
      const w = Math.max(1, (x1 - x0) * width);
      const h = Math.max(1, (y1 - y0) * height);
      parts.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${w.toFixed(1)}" height="${h.toFixed(1)}" fill="none" stroke="${color}" stroke-width="${stroke}"/>`);
      const label = escapeXml(p.label || `box ${i + 1}`);
      const tagW = Math.min(width, Math.round(font * 0.62 * (p.label || `box ${i + 1}`).length + font * 0.6));
      const tagH = Math.round(font * 1.4);
      // tag above the box when there is room, else inside its top edge
      const ty = y - tagH >= 0 ? y - tagH : y;
      const tx = Math.min(Math.max(0, x), Math.max(0, width - tagW));
      parts.push(`<rect x="${tx.toFixed(1)}" y="${ty.toFixed(1)}" width="${tagW}" height="${tagH}" fill="${color}" fill-opacity="0.85"/>`);
      parts.push(`<text x="${(tx + font * 0.3).toFixed(1)}" y="${(ty + tagH * 0.75).toFixed(1)}" font-family="DejaVu Sans, sans-serif" font-size="${font}" fill="#ffffff">${label}</text>`);
    }
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${parts.join('')}</svg>`;
}

function safeName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80) || 'record';
}

/**
 * Writes PNGs of the first `n` records' images (records with an image) with every box found
 * in their text drawn and labelled; images are upscaled so labels stay legible.
 */
export async function renderBoxes(target: string, options: RenderBoxesOptions): Promise<RenderedImage[]> {
  const n = options.n ?? 3;
  if (!Number.isInteger(n) || n < 1) throw new InvalidOptionError('n', `expected a positive integer, got ${JSON.stringify(options.n)}`);
  if (typeof options.images !== 'string' || options.images === '') {
    throw new InvalidOptionError('images', 'expected the image root folder', { fix: 'pass --images DIR: the folder the records\' image paths are relative to' });
  }
  if (typeof options.to !== 'string' || options.to === '') throw new InvalidOptionError('to', 'expected an output folder', { fix: 'pass --to DIR' });
  const minSide = options.minSide ?? 768;
  const root = path.resolve(options.images);
  const to = path.resolve(options.to);
  await mkdir(to, { recursive: true });

  const out: RenderedImage[] = [];
  for await (const { record } of readRecords(target, { signal: options.signal })) {
    if (out.length >= n) break;
    const r = record as Record<string, unknown>;
    if (typeof r.image !== 'string' || r.image === '') continue;
    const phrases = recordTexts(r).flatMap(findBoxes);
    if (options.withBoxes && phrases.length === 0) continue;
    const file = path.resolve(root, r.image);
    let meta: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
    try {
      meta = await sharp(file).metadata();
    } catch (e) {
      throw new BadInputError(`cannot read the image of record "${String(r.id ?? r.question_id ?? out.length)}"`, {
        file,
        cause: e,
        fix: '--images must be the folder the records\' image paths are relative to',
      });
    }
    const w0 = meta.autoOrient?.width ?? meta.width ?? 0;
    const h0 = meta.autoOrient?.height ?? meta.height ?? 0;
    const scale = Math.max(1, minSide / Math.max(w0, h0, 1));
    const width = Math.round(w0 * scale);
    const height = Math.round(h0 * scale);
    const id = String(r.id ?? r.question_id ?? out.length);
    const dest = path.join(to, `${String(out.length).padStart(3, '0')}-${safeName(id)}.png`);
    await sharp(file)
      .autoOrient()
      // tiny images (the shapes world's are 64 px) stay crisp with nearest-neighbour upscaling
      .resize(width, height, { kernel: scale >= 3 ? 'nearest' : 'lanczos3' })
      .composite([{ input: Buffer.from(boxOverlaySvg(phrases, width, height)), top: 0, left: 0 }])
      .png()
      .toFile(dest);
    out.push({ id, image: r.image, file: dest, phrases, width, height });
  }
  return out;
}
