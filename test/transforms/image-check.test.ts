import test, { type ExecutionContext } from 'ava';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { CLIP_MEAN_RGB, imageCheck, resolveUnderRoot } from '../../transforms/image-check.ts';
import { withOrigin } from '../../src/stream/origin.ts';
import { runStage } from '../sources/harness.ts';
import { tempDir } from '../helpers/temp-dir.ts';

async function makeRoot(t: ExecutionContext): Promise<string> {
  const root = await tempDir(t, 'ff-img-');
  await mkdir(join(root, 'coco'), { recursive: true });
  // 64x32 red image: wide, so padding goes above and below
  const good = await sharp({ create: { width: 64, height: 32, channels: 3, background: { r: 255, g: 0, b: 0 } } }).jpeg().toBuffer();
  await writeFile(join(root, 'coco', 'good.jpg'), good);
  await writeFile(join(root, 'coco', 'cut.jpg'), good.subarray(0, Math.floor(good.length / 2)));
  await writeFile(join(root, 'coco', 'text.jpg'), 'not an image at all');
  await writeFile(join(root, 'coco', 'tiny.png'), await sharp({ create: { width: 4, height: 4, channels: 3, background: '#000' } }).png().toBuffer());
  return root;
}

const rec = (id: string, image: string | null) => withOrigin({ id, image }, { file: 'records.json', index: Number(id) });

test('good images pass; missing, unreadable, truncated, too small and escaping paths are rejected with reasons', async (t) => {
  const root = await makeRoot(t);
  const stage = imageCheck<{ id: string; image: string | null }>({ root });
  const input = [
    rec('0', 'coco/good.jpg'), rec('1', 'coco/missing.jpg'), rec('2', 'coco/text.jpg'), rec('3', 'coco/cut.jpg'),
    rec('4', 'coco/tiny.png'), rec('5', '../outside.jpg'), rec('6', '/etc/passwd'), rec('7', null),
  ];
  const { items, rejected } = await runStage(stage, input);
  t.deepEqual(items.map((r) => r.id), ['0', '7']);
  const reasons = rejected.map((r) => r.reason);
  t.regex(reasons[0]!, /image coco\/missing\.jpg does not exist under the image root/);
  t.regex(reasons[1]!, /image coco\/text\.jpg cannot be read/);
  t.regex(reasons[2]!, /image coco\/cut\.jpg (does not decode|cannot be read)/);
  t.regex(reasons[3]!, /image coco\/tiny\.png is 4x4, outside the allowed 8\.\.16384 pixels per side/);
  t.regex(reasons[4]!, /image path "\.\.\/outside\.jpg" leaves the image root \("\.\." segment\)/);
  t.regex(reasons[5]!, /image path "\/etc\/passwd" is absolute/);
  // the location of each rejected record (its origin) is stamped on the reason
  t.regex(reasons[4]!, /records\.json, record #5/);
  t.deepEqual(stage.report(), { checked: 5, ok: 1, bad: 6, kept: 0, written: 0, noImage: 1 });
});

test('missing images are named missing under concurrency (sharp alone mislabels some as unsupported)', async (t) => {
  // sharp tells a missing file from a bad one by libvips' shared error buffer, which concurrent
  // decodes of broken files overwrite: ~0.5% of missing files came back "unsupported image format".
  const root = await makeRoot(t);
  const stage = imageCheck<{ id: string; image: string | null }>({ root, concurrency: 32, decode: 'header' });
  const n = 1200;
  const input = Array.from({ length: n }, (_, i) => rec(String(i), i % 2 === 0 ? `coco/missing-${i}.jpg` : 'coco/text.jpg'));
  const { items, rejected } = await runStage(stage, input);
  t.is(items.length, 0);
  t.is(rejected.length, n);
  const wrong = rejected.filter((r, i) => !(i % 2 === 0 ? /does not exist under the image root/ : /cannot be read/).test(r.reason));
  t.deepEqual(wrong.map((r) => r.reason), []);
});

test('policy keep passes bad images on (but never paths that leave the root)', async (t) => {
  const root = await makeRoot(t);
  const stage = imageCheck<{ id: string; image: string | null }>({ root, policy: 'keep' });
  const { items, rejected } = await runStage(stage, [rec('0', 'coco/missing.jpg'), rec('1', 'x/../../y.jpg')]);
  t.deepEqual(items.map((r) => r.id), ['0']);
  t.is(rejected.length, 1);
  t.is(stage.report().kept, 1);
});

test('preprocessing writes pad-to-square copies with the CLIP mean colour', async (t) => {
  const root = await makeRoot(t);
  const out = join(await tempDir(t, 'ff-img-out-'), 'pre');
  const stage = imageCheck<{ id: string; image: string | null }>({ root, preprocess: { out, size: 32 } });
  const { items } = await runStage(stage, [rec('0', 'coco/good.jpg')]);
  t.is(items.length, 1);
  const { data, info } = await sharp(await readFile(join(out, 'coco', 'good.jpg'))).raw().toBuffer({ resolveWithObject: true });
  t.is(info.width, 32);
  t.is(info.height, 32);
  const px = (x: number, y: number) => [...data.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3)];
  const near = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]!) <= 6);
  t.true(near(px(16, 1), [CLIP_MEAN_RGB.r, CLIP_MEAN_RGB.g, CLIP_MEAN_RGB.b]), `top padding is ${px(16, 1)}`);
  t.true(near(px(16, 16), [255, 0, 0]), `centre is ${px(16, 16)}`);
  t.is(stage.report().written, 1);
});

test('resolveUnderRoot and options', (t) => {
  t.is(resolveUnderRoot('/data/images', 'coco/a.jpg'), '/data/images/coco/a.jpg');
  t.deepEqual(resolveUnderRoot('/data/images', 'a/../../b.jpg'), { reason: 'image path "a/../../b.jpg" leaves the image root ("..") segment)'.replace('("..") segment)', '(".." segment)') });
  t.throws(() => imageCheck({ root: '' }), { message: /option "root"/ });
  t.throws(() => imageCheck({ root: '/x', policy: 'drop' as never }), { message: /option "policy"/ });
  t.throws(() => imageCheck({ root: '/x', preprocess: { out: '/x' } }), { message: /option "preprocess.out"/ });
});
