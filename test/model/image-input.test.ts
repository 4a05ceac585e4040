import test from 'ava';
import * as path from 'node:path';
import sharp from 'sharp';
import { CLIP_MEAN, CLIP_STD, createImageLoader, prepareImage } from '../../src/model/image-input.ts';
import { tempDir } from '../helpers/temp-dir.ts';

async function redWide(dir: string): Promise<string> {
  const file = path.join(dir, 'red.png');
  await sharp({ create: { width: 40, height: 20, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toFile(file);
  return file;
}

const norm = (v: number, c: number) => (v / 255 - CLIP_MEAN[c]!) / CLIP_STD[c]!;

test('pads to square with the CLIP mean colour, resizes, normalises (HWC)', async (t) => {
  const dir = await tempDir(t, 'ff-img-');
  const px = await prepareImage(await redWide(dir), 16);
  t.is(px.length, 16 * 16 * 3);
  const at = (x: number, y: number, c: number) => px[(y * 16 + x) * 3 + c]!;
  // centre row: red
  t.true(Math.abs(at(8, 8, 0) - norm(255, 0)) < 0.05 && Math.abs(at(8, 8, 1) - norm(0, 1)) < 0.05);
  // top and bottom bands: the mean colour, i.e. about 0 after normalisation
  for (const y of [0, 15]) for (let c = 0; c < 3; c++) t.true(Math.abs(at(8, y, c)) < 0.02, `${y} ${c}: ${at(8, y, c)}`);
});

test('loader: LRU cache per path; a bad file is a clear error and is not cached', async (t) => {
  const dir = await tempDir(t, 'ff-img-');
  await redWide(dir);
  const loader = createImageLoader({ size: 8, root: dir, cacheSize: 1 });
  const a = await loader.load('red.png');
  const b = await loader.load('red.png');
  t.is(a, b);
  t.is(loader.stats.hits, 1);
  const e = await t.throwsAsync(loader.load('missing.png'));
  t.is((e as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.true(e!.message.includes(path.join(dir, 'missing.png')));
  await t.throwsAsync(loader.load('missing.png'));
  t.is(loader.stats.misses, 3);
  const e2 = t.throws(() => createImageLoader({ size: 0 }));
  t.regex(e2!.message, /images\.size/);
});

test('a square image at the model size is read pixel for pixel (no resampling), RGBA or not', async (t) => {
  const dir = await tempDir(t, 'ff-img-');
  const side = 16;
  const rgb = Buffer.from(Array.from({ length: side * side * 3 }, (_, i) => (i * 97 + 13) % 256));
  for (const channels of [3, 4] as const) {
    const raw = channels === 3 ? rgb : Buffer.from(Array.from({ length: side * side * 4 }, (_, i) => (i % 4 === 3 ? 255 : rgb[(i >> 2) * 3 + (i % 4)]!)));
    const file = path.join(dir, `noise${channels}.png`);
    await sharp(raw, { raw: { width: side, height: side, channels } }).png().toFile(file);
    const px = await prepareImage(file, side);
    t.is(px.length, side * side * 3);
    let worst = 0;
    for (let i = 0; i < px.length; i++) worst = Math.max(worst, Math.abs(px[i]! - norm(rgb[i]!, i % 3)));
    t.true(worst < 1e-6, `${channels} channels: worst difference ${worst}`);
    // at another size it still goes through the resize
    const half = await prepareImage(file, side / 2);
    t.is(half.length, (side / 2) ** 2 * 3);
  }
});
