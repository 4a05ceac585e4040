/**
 * Chooses the tfjs backend: `webgpu` (GPU through Dawn, npm `webgpu`, registered by hand since
 * tfjs only registers it in browsers), `tensorflow` (only if the user installed
 * `@tensorflow/tfjs-node-gpu` or `@tensorflow/tfjs-node`: never a dependency, their install
 * downloads libtensorflow and needs CUDA 11.2 / cuDNN 8), `wasm` (the CPU default, XNNPACK; tfjs
 * runs it single-threaded in Node), `cpu` (plain JS, always there). `auto` takes the first that
 * works and says why each earlier one was not taken. Module loading is injectable for tests.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendError, InvalidOptionError } from '../errors.ts';
import { shareWasmIdentity } from './wasm-identity.ts';

export type BackendName = 'webgpu' | 'tensorflow' | 'wasm' | 'cpu';
export type BackendChoice = 'auto' | BackendName;
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'webgpu', 'tensorflow', 'wasm', 'cpu'];
const AUTO_ORDER: readonly BackendName[] = ['webgpu', 'tensorflow', 'wasm', 'cpu'];

export interface BackendSelection {
  name: BackendName;
  /** One line per backend considered: taken, or why not. */
  reasons: string[];
  /** e.g. the GPU adapter's description, or "SIMD, 1 thread". */
  detail: string;
}

export interface SelectBackendOptions {
  log?: (line: string) => void;
  /** Module loader (default: dynamic import); tests pass one that pretends packages are missing. */
  importModule?: (specifier: string) => Promise<unknown>;
  /** Accept a software (CPU-emulated) WebGPU adapter under `auto`. Default false: it is slower than wasm. */
  allowSoftwareGpu?: boolean;
}

/**
 * Literal imports where the package is ours, so a bundler (the GPU machine runs an esbuild bundle)
 * can see them; tfjs-node is never a dependency, so it is looked up by name at run time.
 */
const KNOWN: Record<string, () => Promise<unknown>> = {
  webgpu: () => import('webgpu'),
  '@tensorflow/tfjs-backend-webgpu': () => import('@tensorflow/tfjs-backend-webgpu'),
  '@tensorflow/tfjs-backend-wasm': () => import('@tensorflow/tfjs-backend-wasm'),
};
const defaultImport = (specifier: string): Promise<unknown> => (KNOWN[specifier] ?? (() => import(specifier)))();

function missing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
}

interface GpuAdapterLike {
  info?: { description?: string; vendor?: string; architecture?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
  limits: Record<string, number>;
  requestDevice(descriptor?: unknown): Promise<unknown>;
}

async function tryWebgpu(load: (s: string) => Promise<unknown>, allowSoftware: boolean): Promise<string> {
  let dawn: { create: (flags: string[]) => { requestAdapter(o?: unknown): Promise<GpuAdapterLike | null> }; globals: object };
  try {
    dawn = (await load('webgpu')) as typeof dawn;
  } catch (e) {
    throw new BackendError(missing(e) ? 'the optional package "webgpu" (Dawn) is not installed' : `cannot load "webgpu": ${(e as Error).message}`, { cause: e, fix: 'npm install webgpu, or use --backend wasm' });
  }
  let webgpuBackend: { WebGPUBackend: new (device: unknown, info?: unknown) => tf.KernelBackend };
  try {
    webgpuBackend = (await load('@tensorflow/tfjs-backend-webgpu')) as typeof webgpuBackend;
  } catch (e) {
    throw new BackendError(`cannot load @tensorflow/tfjs-backend-webgpu: ${(e as Error).message}`, { cause: e, fix: 'npm install, or use --backend wasm' });
  }
  Object.assign(globalThis, dawn.globals);
  const gpu = dawn.create([]);
  Object.defineProperty(globalThis, 'navigator', { value: { ...(globalThis as { navigator?: object }).navigator, gpu }, configurable: true, writable: true });
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new BackendError('no WebGPU adapter found (no GPU/Vulkan driver?); use --backend wasm', { fix: 'install the GPU driver and Vulkan loader (libvulkan1), or choose --backend wasm' });
  }
  const desc = [adapter.info?.vendor, adapter.info?.architecture, adapter.info?.description].filter(Boolean).join(' ') || 'unknown adapter';
  const software = adapter.isFallbackAdapter || adapter.info?.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe/i.test(desc);
  if (software && !allowSoftware) {
    throw new BackendError(`only a software WebGPU adapter (${desc}) is available, slower than wasm`, { fix: 'use --backend wasm, or --backend webgpu to force it' });
  }
  // ask for the adapter's own limits: the defaults cap buffers far below what training needs
  const limits: Record<string, number> = {};
  for (const k of ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxStorageBuffersPerShaderStage']) {
    if (typeof adapter.limits[k] === 'number') limits[k] = adapter.limits[k]!;
  }
  const device = await adapter.requestDevice({ requiredLimits: limits });
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new webgpuBackend.WebGPUBackend(device, adapter.info), 3);
  if (!(await tf.setBackend('webgpu'))) throw new BackendError('tfjs could not initialise the webgpu backend', { fix: 'use --backend wasm' });
  return desc;
}

async function tryTensorflow(load: (s: string) => Promise<unknown>): Promise<string> {
  const tried: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await load(pkg);
    } catch (e) {
      tried.push(missing(e) ? `${pkg} not installed` : `${pkg} failed to load (${(e as Error).message.split('\n')[0]})`);
      continue;
    }
    if (tf.findBackendFactory('tensorflow') && (await tf.setBackend('tensorflow'))) return pkg;
    tried.push(`${pkg} loaded but registered no "tensorflow" backend with this tfjs (version mismatch?)`);
  }
  throw new BackendError(tried.join('; '), { fix: 'npm install @tensorflow/tfjs-node-gpu (needs CUDA 11.2 + cuDNN 8) or @tensorflow/tfjs-node, or use --backend wasm' });
}

async function tryWasm(load: (s: string) => Promise<unknown>): Promise<string> {
  try {
    await load('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    throw new BackendError(`cannot load @tensorflow/tfjs-backend-wasm: ${(e as Error).message}`, { cause: e, fix: 'npm install, or use --backend cpu' });
  }
  if (!tf.findBackendFactory('wasm') || !(await tf.setBackend('wasm'))) {
    throw new BackendError('the wasm backend did not initialise', { fix: 'use --backend cpu' });
  }
  shareWasmIdentity();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  // tfjs disables wasm threads under Node (tfjs issue #3830), so one core does the work
  return `${simd ? 'SIMD' : 'no SIMD'}, 1 thread`;
}

async function tryOne(name: BackendName, load: (s: string) => Promise<unknown>, options: SelectBackendOptions, forced: boolean): Promise<string> {
  switch (name) {
    case 'webgpu': return tryWebgpu(load, forced || options.allowSoftwareGpu === true);
    case 'tensorflow': return tryTensorflow(load);
    case 'wasm': return tryWasm(load);
    case 'cpu':
      if (!(await tf.setBackend('cpu'))) throw new BackendError('the cpu backend did not initialise');
      return 'plain JavaScript';
  }
}

/**
 * Sets the tfjs backend. A named backend that cannot be used throws BackendError (no silent
 * fallback); `auto` walks webgpu, tensorflow, wasm, cpu and returns the first that works.
 */
export async function selectBackend(choice: BackendChoice = 'auto', options: SelectBackendOptions = {}): Promise<BackendSelection> {
  if (!BACKEND_CHOICES.includes(choice)) throw new InvalidOptionError('backend', `must be one of ${BACKEND_CHOICES.join(', ')}, got ${JSON.stringify(choice)}`);
  // the same choice again in one process (the demo selects once per stage) keeps the backend it
  // took: probing WebGPU again costs seconds and makes Dawn print its warnings each time
  if (options.importModule === undefined && lastSelection?.choice === choice && tf.getBackend() === lastSelection.selection.name) {
    options.log?.(`backend ${lastSelection.selection.name} (${lastSelection.selection.detail}; already selected)`);
    return lastSelection.selection;
  }
  const selection = await probe(choice, options);
  if (options.importModule === undefined) lastSelection = { choice, selection };
  return selection;
}

let lastSelection: { choice: BackendChoice; selection: BackendSelection } | undefined;

async function probe(choice: BackendChoice, options: SelectBackendOptions): Promise<BackendSelection> {
  const load = options.importModule ?? defaultImport;
  // PROD silences tfjs's console advice (only src/cli prints) and skips debug checks
  tf.env().set('PROD', true);
  const reasons: string[] = [];
  const candidates = choice === 'auto' ? AUTO_ORDER : [choice];
  for (const name of candidates) {
    try {
      const detail = await tryOne(name, load, options, choice !== 'auto');
      reasons.push(`${name}: selected (${detail})`);
      options.log?.(`backend ${name} (${detail})`);
      return { name, reasons, detail };
    } catch (e) {
      if (choice !== 'auto') throw e instanceof BackendError ? e : new BackendError(`backend ${name}: ${(e as Error).message}`, { cause: e });
      const why = e instanceof BackendError ? e.detail : (e as Error).message;
      reasons.push(`${name}: not used: ${why}`);
      options.log?.(`backend ${name} not used: ${why}`);
    }
  }
  throw new BackendError(`no backend could be initialised: ${reasons.join('; ')}`);
}
