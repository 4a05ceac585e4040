import test from 'ava';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/model/backend.ts';

const notFound = (specifier: string) => Object.assign(new Error(`Cannot find package '${specifier}'`), { code: 'ERR_MODULE_NOT_FOUND' });

/** A loader where `missing` packages are absent and `webgpu` (if present) has no adapter. */
function loader(missing: string[], adapter: unknown = null) {
  return async (specifier: string): Promise<unknown> => {
    if (missing.includes(specifier)) throw notFound(specifier);
    if (specifier === 'webgpu') return { globals: {}, create: () => ({ requestAdapter: async () => adapter }) };
    if (specifier === '@tensorflow/tfjs-node' || specifier === '@tensorflow/tfjs-node-gpu') throw notFound(specifier);
    return import(specifier);
  };
}

test.serial('auto: no GPU adapter and no tfjs-node -> wasm, with a reason for each backend skipped', async (t) => {
  const lines: string[] = [];
  const r = await selectBackend('auto', { importModule: loader([]), log: (l) => lines.push(l) });
  t.is(r.name, 'wasm');
  t.is(tf.getBackend(), 'wasm');
  t.regex(r.reasons[0]!, /^webgpu: not used: no WebGPU adapter found/);
  t.regex(r.reasons[1]!, /^tensorflow: not used: @tensorflow\/tfjs-node-gpu not installed; @tensorflow\/tfjs-node not installed/);
  t.regex(r.reasons[2]!, /^wasm: selected \((no )?SIMD, 1 thread\)/);
  t.is(lines.length, 3);
});

test.serial('auto: webgpu package missing -> says so and moves on', async (t) => {
  const r = await selectBackend('auto', { importModule: loader(['webgpu']) });
  t.is(r.name, 'wasm');
  t.regex(r.reasons[0]!, /optional package "webgpu" \(Dawn\) is not installed/);
});

test.serial('auto: wasm missing too -> cpu', async (t) => {
  const r = await selectBackend('auto', { importModule: loader(['webgpu', '@tensorflow/tfjs-backend-wasm']) });
  t.is(r.name, 'cpu');
  t.is(tf.getBackend(), 'cpu');
  t.regex(r.reasons[2]!, /^wasm: not used: cannot load @tensorflow\/tfjs-backend-wasm/);
  t.is(r.reasons[3], 'cpu: selected (plain JavaScript)');
});

test.serial('auto: a software GPU adapter is not taken over wasm', async (t) => {
  const fake = { info: { description: 'SwiftShader Device' }, limits: {}, requestDevice: async () => ({}) };
  const r = await selectBackend('auto', { importModule: loader([], fake) });
  t.is(r.name, 'wasm');
  t.regex(r.reasons[0]!, /software WebGPU adapter \(SwiftShader Device\)/);
});

test.serial('asking for webgpu where no adapter exists (this machine, real Dawn) fails with a clear message', async (t) => {
  let real = true;
  try { await import('webgpu'); } catch { real = false; }
  const e = await t.throwsAsync(selectBackend('webgpu', real ? {} : { importModule: loader([]) }));
  t.is((e as { code?: string }).code, 'FF_ERR_BACKEND');
  t.regex(e!.message, /no WebGPU adapter found \(no GPU\/Vulkan driver\?\); use --backend wasm/);
});

test.serial('asking for tensorflow without tfjs-node: FF_ERR_BACKEND naming both packages; bad choice: invalid option', async (t) => {
  const e = await t.throwsAsync(selectBackend('tensorflow', { importModule: loader([]) }));
  t.is((e as { code?: string }).code, 'FF_ERR_BACKEND');
  t.regex(e!.message, /tfjs-node-gpu not installed; @tensorflow\/tfjs-node not installed/);
  const e2 = await t.throwsAsync(selectBackend('gpu' as 'auto'));
  t.is((e2 as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
  t.regex(e2!.message, /option "backend"/);
});

test.serial('named backends that exist are taken without fallback', async (t) => {
  t.is((await selectBackend('cpu')).name, 'cpu');
  t.is((await selectBackend('wasm')).name, 'wasm');
});

test.serial('the same choice again keeps the backend it took, without probing again', async (t) => {
  const logs: string[] = [];
  const first = await selectBackend('wasm');
  const again = await selectBackend('wasm', { log: (m) => logs.push(m) });
  t.is(again, first);
  t.deepEqual(logs, [`backend wasm (${first.detail}; already selected)`]);
});
