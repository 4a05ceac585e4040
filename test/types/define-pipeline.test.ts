import test from 'ava';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('definePipeline type tests compile (each @ts-expect-error is a real error)', async (t) => {
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const args = [
    tsc, '--noEmit', '--strict', '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext',
    '--allowImportingTsExtensions', '--skipLibCheck', '--isolatedModules', '--noImplicitOverride', '--types', 'node',
    '--lib', 'ES2023', path.join('test', 'types', 'define-pipeline.test-d.ts'),
  ];
  try {
    await promisify(execFile)(process.execPath, args, { cwd: root });
    t.pass();
  } catch (e) {
    const out = (e as { stdout?: string }).stdout ?? String(e);
    t.fail(`tsc reported:\n${out}`);
  }
});
