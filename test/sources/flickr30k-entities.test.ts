import test, { type ExecutionContext } from 'ava';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flickr30kEntitiesSource, parseFlickr30kSentence, parseFlickr30kXml } from '../../sources/flickr30k-entities.ts';
import { readSource } from './harness.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/flickr30k', import.meta.url));

test('reads the real Sentences file with its Annotations XML', async (t) => {
  const { items, rejected } = await readSource(flickr30kEntitiesSource({ dir: FIXTURE }));
  t.deepEqual(rejected, []);
  t.is(items.length, 1);
  const item = items[0]!;
  t.is(item.id, '4945942737');
  t.is(item.width, 500);
  t.is(item.height, 375);
  t.is(item.sentences.length, 5);
  t.is(item.sentences[0]!.text, 'A girl with brown hair sits on the edge of a cement area overlooking water .');
  t.deepEqual(item.sentences[0]!.parts[0], { chainId: '221796', types: ['people'], text: 'A girl' });
  t.deepEqual(item.boxes['221799'], [{ xmin: 1, ymin: 281, xmax: 250, ymax: 375 }, { xmin: 301, ymin: 291, xmax: 500, ymax: 375 }]);
  t.deepEqual(item.scene, ['221798']);
  t.deepEqual(item.nobndbox, ['221800', '221802']);
  t.true(item.files.annotations.endsWith(join('Annotations', '4945942737.xml')));
});

test('phrase syntax: several types, chain 0 notvisual, plain text kept', (t) => {
  const s = parseFlickr30kSentence('[/EN#12/bodyparts/people His hand] waves at [/EN#0/notvisual him] .', 3);
  t.deepEqual(s.parts, [
    { chainId: '12', types: ['bodyparts', 'people'], text: 'His hand' },
    ' waves at ',
    { chainId: '0', types: ['notvisual'], text: 'him' },
    ' .',
  ]);
  t.is(s.text, 'His hand waves at him .');
  t.is(s.line, 3);
  t.throws(() => parseFlickr30kSentence('[/EN#12/people A man rides', 2), { message: /line 2: unbalanced or malformed phrase markup/ });
});

test('XML: one box shared by several names, comments skipped', (t) => {
  const xml = '<annotation><size><width>10</width><height>20</height></size><!-- <object><name>9</name></object> -->'
    + '<object><name>1</name><name>6</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>';
  const p = parseFlickr30kXml(xml);
  t.deepEqual(p.boxes, { '1': [{ xmin: 1, ymin: 2, xmax: 3, ymax: 4 }], '6': [{ xmin: 1, ymin: 2, xmax: 3, ymax: 4 }] });
});

async function copyFixture(t: ExecutionContext): Promise<string> {
  const dir = await tempDir(t, 'ff-flickr-');
  await cp(FIXTURE, dir, { recursive: true });
  return dir;
}

test('bad input: XML without <size> is rejected naming the file', async (t) => {
  const dir = await copyFixture(t);
  await writeFile(join(dir, 'Sentences', '111.txt'), '[/EN#1/people A man] runs .\n');
  await writeFile(join(dir, 'Annotations', '111.xml'), '<annotation>\n\t<filename>111.jpg</filename>\n\t<object>\n\t\t<name>1</name>\n\t\t<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox>\n\t</object>\n</annotation>\n');
  const { items, rejected } = await readSource(flickr30kEntitiesSource({ dir }));
  t.deepEqual(items.map((i) => i.id), ['4945942737']);
  t.is(rejected.length, 1);
  t.regex(rejected[0]!.reason, /image 111: annotation XML has no <size> element/);
  t.is(rejected[0]!.origin?.file, join(dir, 'Annotations', '111.xml'));
});

test('bad input: missing XML and malformed sentence markup are rejected with file and line', async (t) => {
  const dir = await copyFixture(t);
  await writeFile(join(dir, 'Sentences', '222.txt'), '[/EN#1/people A man] runs .\n');
  await writeFile(join(dir, 'Sentences', '333.txt'), 'ok line .\n[/EN#1/people A man runs .\n');
  await writeFile(join(dir, 'Annotations', '333.xml'), '<annotation><size><width>5</width><height>5</height></size></annotation>');
  const { rejected } = await readSource(flickr30kEntitiesSource({ dir }));
  t.is(rejected.length, 2);
  t.regex(rejected[0]!.reason, /image 222: no Annotations file/);
  t.is(rejected[0]!.origin?.file, join(dir, 'Annotations', '222.xml'));
  t.regex(rejected[1]!.reason, /image 333: line 2: unbalanced/);
  t.is(rejected[1]!.origin?.file, join(dir, 'Sentences', '333.txt'));
  t.is(rejected[1]!.origin?.line, 2);
});

test('id list file selects images (comments and blank lines skipped); partitions split the list', async (t) => {
  const dir = await copyFixture(t);
  for (const id of ['5', '6', '7']) {
    await writeFile(join(dir, 'Sentences', `${id}.txt`), `[/EN#1/people Person ${id}] .\n`);
    await writeFile(join(dir, 'Annotations', `${id}.xml`), '<annotation><size><width>5</width><height>5</height></size><object><name>1</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>');
  }
  const list = join(dir, 'train.txt');
  await writeFile(list, '# ids\n7\n\n5\n6\n');
  const { items } = await readSource(flickr30kEntitiesSource({ dir, ids: list }));
  t.deepEqual(items.map((i) => i.id), ['7', '5', '6']);
  const p0 = await readSource(flickr30kEntitiesSource({ dir, ids: list }), { partition: { index: 0, count: 2 } });
  const p1 = await readSource(flickr30kEntitiesSource({ dir, ids: list }), { partition: { index: 1, count: 2 } });
  t.deepEqual([...p0.items, ...p1.items].map((i) => i.id).sort(), ['5', '6', '7']);
  const src = flickr30kEntitiesSource({ dir, ids: ['6'] });
  const fp = await src.inputs!();
  t.is(fp.length, 1);
  t.regex(fp[0]!.sha256, /^[0-9a-f]{64}$/);
});

test('options are checked at the factory', (t) => {
  t.throws(() => flickr30kEntitiesSource({ dir: '' }), { code: 'FF_ERR_INVALID_OPTION' } as never);
  t.throws(() => flickr30kEntitiesSource({ dir: 'https://example.org/flickr' }), { message: /option "ids"/ });
  t.throws(() => flickr30kEntitiesSource({ dir: 'x', prefetch: 0 }), { message: /option "prefetch"/ });
});

test('a folder without Sentences/ is a clear error', async (t) => {
  const dir = await tempDir(t, 'ff-flickr-empty-');
  await mkdir(join(dir, 'Annotations'));
  const err = await t.throwsAsync(readSource(flickr30kEntitiesSource({ dir })));
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.true(err!.message.includes(join(dir, 'Sentences')));
});
