/**
 * Converter benches: Flickr30k Entities -> spotting captions (records/s), and image
 * checking with sharp (images/s), each against a plain baseline measured in the same run.
 *
 * Data is generated under `bench/.data/` (gitignored, reused): Flickr30k-format folders
 * (Sentences/*.txt with five annotated captions, Annotations/*.xml with 2-6 objects, some
 * multi-box, nobndbox and scene entities) and 640x480 JPEGs with noise (so decoding costs
 * what a photo costs). Full: 31,783 Flickr images (the dataset's size) and 400 JPEGs;
 * quick: a tenth. The full `sft-mix` on a 50k-image shapes world is not run here (generating
 * the world alone takes minutes on two cores).
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { Rng } from '../src/stream/random.ts';
import { runFlow } from '../src/stream/flow.ts';
import type { Sink } from '../src/stream/stage.ts';
import { flickr30kEntitiesSource } from '../sources/flickr30k-entities.ts';
import { flickr30kSpotting } from '../transforms/flickr30k-spotting.ts';
import { imageCheck } from '../transforms/image-check.ts';
import type { BenchFn, BenchRow } from './types.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

const PEOPLE = ['A man', 'A woman', 'Two children', 'A girl', 'An older man', 'A group of people'];
const THINGS = ['a red shirt', 'a bicycle', 'a dog', 'a blue umbrella', 'a hat', 'a guitar'];
const SCENES = ['the street', 'a park', 'the beach', 'a crowded market'];

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

/** Flickr30k-format folder with `n` images (deterministic). */
async function generateFlickr(dir: string, n: number): Promise<void> {
  if (await exists(path.join(dir, '.complete'))) return;
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.join(dir, 'Sentences'), { recursive: true });
  await mkdir(path.join(dir, 'Annotations'), { recursive: true });
  const rng = new Rng(30_000);
  for (let i = 0; i < n; i++) {
    const id = String(1_000_000_000 + i * 7919);
    const w = rng.range(300, 500);
    const h = rng.range(300, 500);
    const c = 100_000 + i * 10;
    const box = () => {
      const x0 = rng.range(1, w - 20);
      const y0 = rng.range(1, h - 20);
      return `\t\t<bndbox>\n\t\t\t<xmin>${x0}</xmin>\n\t\t\t<ymin>${y0}</ymin>\n\t\t\t<xmax>${rng.range(x0 + 1, w)}</xmax>\n\t\t\t<ymax>${rng.range(y0 + 1, h)}</ymax>\n\t\t</bndbox>\n`;
    };
    let xml = `<annotation>\n\t<filename>${id}.jpg</filename>\n\t<size>\n\t\t<width>${w}</width>\n\t\t<height>${h}</height>\n\t\t<depth>3</depth>\n\t</size>\n`;
    xml += `\t<object>\n\t\t<name>${c}</name>\n${box()}\t</object>\n`;
    xml += `\t<object>\n\t\t<name>${c + 1}</name>\n${box()}\t</object>\n\t<object>\n\t\t<name>${c + 1}</name>\n${box()}\t</object>\n`;
    xml += `\t<object>\n\t\t<name>${c + 2}</name>\n\t\t<scene>1</scene>\n\t\t<nobndbox>0</nobndbox>\n\t</object>\n`;
    xml += `\t<object>\n\t\t<name>${c + 3}</name>\n\t\t<scene>0</scene>\n\t\t<nobndbox>1</nobndbox>\n\t</object>\n</annotation>\n`;
    const lines: string[] = [];
    for (let k = 0; k < 5; k++) {
      lines.push(`[/EN#${c}/people ${rng.pick(PEOPLE)}] with [/EN#${c + 1}/clothing ${rng.pick(THINGS)}] walks through [/EN#${c + 2}/scene ${rng.pick(SCENES)}] , looking at [/EN#${c + 3}/other something] .`);
    }
    await writeFile(path.join(dir, 'Sentences', `${id}.txt`), lines.join('\n') + '\n');
    await writeFile(path.join(dir, 'Annotations', `${id}.xml`), xml);
  }
  await writeFile(path.join(dir, '.complete'), `${n}\n`);
}

/** `n` noisy 640x480 JPEGs under `<dir>/images/`. */
async function generateImages(dir: string, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `images/${String(i).padStart(12, '0')}.jpg`);
  if (await exists(path.join(dir, '.complete'))) return names;
  await mkdir(path.join(dir, 'images'), { recursive: true });
  const rng = new Rng(640_480);
  const raw = Buffer.alloc(640 * 480 * 3);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < raw.length; p++) raw[p] = ((p >> 7) * 13 + rng.int(64)) & 255;
    const tmp = path.join(dir, `${names[i]!}.tmp`);
    await sharp(raw, { raw: { width: 640, height: 480, channels: 3 } }).jpeg({ quality: 90 }).toFile(tmp);
    await rename(tmp, path.join(dir, names[i]!));
  }
  await writeFile(path.join(dir, '.complete'), `${n}\n`);
  return names;
}

function countSink<T>(): Sink<T, number> {
  return { name: 'count', async write(input) { let n = 0; for await (const _ of input) n++; return n; } };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - t0) / 1000, value };
}

export const bench: BenchFn = async ({ quick }) => {
  const rows: BenchRow[] = [];
  const nFlickr = quick ? 3178 : 31_783;
  const flickrDir = path.join(here, '.data', `flickr30k-${nFlickr}`);
  await generateFlickr(flickrDir, nFlickr);
  const dead = path.join(here, '.data', 'converters-rejected.jsonl');

  // Baseline: reading both files of every image, nothing else.
  const ids = Array.from({ length: nFlickr }, (_, i) => String(1_000_000_000 + i * 7919));
  const base = await timed(async () => {
    let bytes = 0;
    for (const id of ids) {
      bytes += (await readFile(path.join(flickrDir, 'Sentences', `${id}.txt`))).length;
      bytes += (await readFile(path.join(flickrDir, 'Annotations', `${id}.xml`))).length;
    }
    return bytes;
  });
  const conv = await timed(() => runFlow(
    { source: flickr30kEntitiesSource({ dir: flickrDir }), stages: [flickr30kSpotting()], sink: countSink() },
    { seed: 1, deadLetterPath: dead },
  ));
  const records = conv.value.result as number;
  rows.push({ suite: 'converters', case: `Flickr30k files read only (${nFlickr} images, sequential)`, value: nFlickr / base.seconds, unit: 'images/s', note: `${base.seconds.toFixed(2)} s` });
  rows.push({
    suite: 'converters', case: `Flickr30k Entities -> spotting captions (${nFlickr} images)`, value: records / conv.seconds, unit: 'records/s',
    ratio: (nFlickr / conv.seconds) / (nFlickr / base.seconds), baseline: 'files read only (images/s)',
    note: `${records} captions, ${(nFlickr / conv.seconds).toFixed(0)} images/s, ${conv.value.rejected} rejected, ${conv.seconds.toFixed(2)} s; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
  });

  const nImages = quick ? 40 : 400;
  const imgDir = path.join(here, '.data', `images-640x480-${nImages}`);
  const names = await generateImages(imgDir, nImages);
  const recs = names.map((image, i) => ({ id: String(i), image }));
  const read = await timed(async () => {
    let bytes = 0;
    for (const n of names) bytes += (await readFile(path.join(imgDir, n))).length;
    return bytes;
  });
  const run = async (decode: 'full' | 'header') => timed(() => runFlow(
    { source: { name: 'records', async *read() { yield* recs; } }, stages: [imageCheck({ root: imgDir, decode })], sink: countSink() },
    { seed: 1, deadLetterPath: dead },
  ));
  const header = await run('header');
  const full = await run('full');
  rows.push({ suite: 'converters', case: `image files read only (${nImages} JPEG 640x480)`, value: nImages / read.seconds, unit: 'images/s', note: `${(read.value / nImages / 1024).toFixed(0)} KiB each` });
  rows.push({ suite: 'converters', case: 'image-check, header only (sharp metadata)', value: nImages / header.seconds, unit: 'images/s', ratio: read.seconds / header.seconds, baseline: 'files read only', note: `${header.value.result as number} ok` });
  rows.push({ suite: 'converters', case: 'image-check, full decode (sharp)', value: nImages / full.seconds, unit: 'images/s', ratio: read.seconds / full.seconds, baseline: 'files read only', note: `${full.value.result as number} ok, concurrency 4` });
  await rm(dead, { force: true });
  return rows;
};
