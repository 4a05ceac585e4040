import test from 'ava';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadPipeline, resolvePipelineFile, PACKAGE_ROOT } from '../../src/pipeline/load-pipeline.ts';
import { listPipelines } from '../../src/pipeline/list-pipelines.ts';
import { tempDir } from '../helpers/temp-dir.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixtures = path.join(root, 'test', 'fixtures');

test('PACKAGE_ROOT is the repository root', (t) => {
  t.is(PACKAGE_ROOT, root);
});

test('loads a definition file by path relative to cwd', async (t) => {
  const { config, file } = await loadPipeline('pipelines/tiny-count.ts', { cwd: fixtures });
  t.is(config.name, 'tiny-count');
  t.is(file, path.join(fixtures, 'pipelines', 'tiny-count.ts'));
  t.is(config.params.n?.default, 20);
});

test('resolves bare names in <cwd>/pipelines, with or without extension', async (t) => {
  t.is(resolvePipelineFile('tiny-count', { cwd: fixtures }), path.join(fixtures, 'pipelines', 'tiny-count.ts'));
  t.is(resolvePipelineFile('pipelines/tiny-count', { cwd: fixtures }), path.join(fixtures, 'pipelines', 'tiny-count.ts'));
  const { config } = await loadPipeline('tiny-count', { cwd: fixtures });
  t.is(config.name, 'tiny-count');
});

test('a missing file is a BadInputError naming it and the known names', (t) => {
  const e = t.throws(() => resolvePipelineFile('nope.ts', { cwd: fixtures }));
  t.is((e as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(e!.message, /^nope\.ts: no pipeline definition file found \(looked for .*test\/fixtures\/nope\.ts\)/);
  const e2 = t.throws(() => resolvePipelineFile('nope', { cwd: fixtures }));
  t.regex(e2!.message, /looked for .*fixtures\/nope, .*fixtures\/pipelines\/nope\.ts/);
  t.regex(e2!.message, /known names: .*tiny-count/);
});

test('no default export, a non-pipeline and a throwing file give clear errors naming the file', async (t) => {
  const bad = path.join(fixtures, 'bad-pipelines');
  const e1 = await t.throwsAsync(loadPipeline(path.join(bad, 'no-default.ts')));
  t.is((e1 as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(e1!.message, /bad-pipelines\/no-default\.ts: the file has no default export/);
  const e2 = await t.throwsAsync(loadPipeline(path.join(bad, 'not-a-pipeline.ts')));
  t.is((e2 as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e2!.message, /bad-pipelines\/not-a-pipeline\.ts: option "pipeline\.run": expected a function/);
  const e3 = await t.throwsAsync(loadPipeline(path.join(bad, 'throws.ts')));
  t.is((e3 as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(e3!.message, /bad-pipelines\/throws\.ts: could not load the pipeline definition: boom while loading/);
});

test('listPipelines describes each file and lists broken ones with their error', async (t) => {
  const good = await listPipelines({ dir: 'test/fixtures/pipelines', cwd: root });
  const tiny = good.find((e) => e.name === 'tiny-count');
  t.truthy(tiny);
  t.is(tiny!.description, 'Counts generated records, rejecting some (test fixture)');
  t.deepEqual(Object.keys(tiny!.params), ['n', 'reject_every', 'label']);
  const bad = await listPipelines({ dir: 'test/fixtures/bad-pipelines', cwd: root });
  t.deepEqual(bad.map((e) => [e.name, e.error?.code]), [
    ['no-default', 'FF_ERR_BAD_INPUT'],
    ['not-a-pipeline', 'FF_ERR_INVALID_OPTION'],
    ['throws', 'FF_ERR_BAD_INPUT'],
  ]);
});

test('listPipelines defaults to <cwd>/pipelines', async (t) => {
  const dir = await tempDir(t, 'ff-list-');
  await mkdir(path.join(dir, 'pipelines'));
  await writeFile(path.join(dir, 'pipelines', 'empty.ts'), 'export default { name: "empty", description: "nothing", params: {}, async run() {} };\n');
  const entries = await listPipelines({ cwd: dir });
  t.deepEqual(entries.map((e) => e.name), ['empty']);
});
