import path from 'node:path';
import { InvalidOptionError } from '../errors.ts';
import type { ErrorPolicy } from '../stream/stage.ts';
import type { ParamSpec, ParamSpecs, ParamValues, PipelineConfig } from './define-pipeline.ts';
import { checkPartition, type Partition, WHOLE } from './partition.ts';

/** Parameters as the user gives them: `key=value` strings (`--set`) or a record (strings are parsed, typed values checked). */
export type RawParams = readonly string[] | Readonly<Record<string, unknown>>;

export const BACKENDS = ['auto', 'webgpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
export const POLICIES = ['skip', 'fail'] as const;

const PARAM_TYPES = ['string', 'path', 'number', 'boolean', 'enum'] as const;
const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

/** Everything about a run that `resolvePipeline` turns into resolved values. */
export interface PipelineOptions {
  /** Output folder (relative to `cwd`); default `runs/<pipeline name>`. */
  out?: string;
  params?: RawParams;
  /** Run seed, an integer in 0..2^32-1; default 1. */
  seed?: number;
  /** Share of the input: `{index, count}` or `"i/n"`; default the whole input. */
  partition?: Partition | string;
  /** What a rejected record does: `skip` (dead-letter file, default) or `fail`. */
  policy?: ErrorPolicy;
  backend?: BackendName;
  /**
   * Folder relative paths are resolved against: `out` and every `path` parameter; default
   * `process.cwd()` (the CLI's: the folder the user ran the command in).
   */
  cwd?: string;
}

/** A pipeline with every option checked and defaulted. Only `resolvePipeline` makes one. */
export interface ResolvedPipeline<P extends ParamSpecs = ParamSpecs> {
  readonly config: PipelineConfig<P>;
  readonly name: string;
  readonly params: ParamValues<P>;
  /** Absolute output folder. */
  readonly out: string;
  readonly seed: number;
  readonly partition: Partition;
  readonly policy: ErrorPolicy;
  readonly backend: BackendName;
  readonly cwd: string;
}

function describeSpec(spec: ParamSpec): string {
  if (spec.type === 'enum') return `one of ${spec.values.join('|')}`;
  if (spec.type === 'number') {
    const kind = spec.integer ? 'an integer' : 'a number';
    const lo = spec.min !== undefined ? ` >= ${spec.min}` : '';
    const hi = spec.max !== undefined ? `${lo ? ' and' : ''} <= ${spec.max}` : '';
    return kind + lo + hi;
  }
  if (spec.type === 'boolean') return 'a boolean (true|false)';
  return spec.type === 'path' ? 'a path' : 'a string';
}

/** Values of a `path` parameter that pipelines read as words, not paths ("not given", "leave out"). */
const PATH_WORDS = new Set(['', 'none']);

/**
 * A `path` parameter's value with each relative path made absolute against `cwd`, the folder the
 * user ran the command in, so a pipeline reads the same files whatever folder its own code or a
 * nested `ctx.ensure` works from. Kept as written: "" and "none", URLs (`scheme://...`) and
 * absolute paths. A comma separates several paths (`questions=a.json,b.json`): each is resolved.
 */
export function resolvePathParam(value: string, cwd: string): string {
  if (PATH_WORDS.has(value.trim())) return value;
  return value
    .split(',')
    .map((part) => {
      const p = part.trim();
      return p === '' || /^[a-z][a-z0-9+.-]*:\/\//i.test(p) || path.isAbsolute(p) ? p : path.resolve(cwd, p);
    })
    .join(',');
}

/** `name (type, default X)` lines, for errors and `pipeline list`. */
export function describeParams(specs: ParamSpecs): string[] {
  return Object.entries(specs).map(([key, spec]) => `${key} (${spec.type}, default ${JSON.stringify(spec.default)})`);
}

/** Checks a pipeline's parameter declarations themselves (a wrong default is the author's bug). */
export function checkParamSpecs(specs: unknown, where = 'params'): ParamSpecs {
  if (typeof specs !== 'object' || specs === null || Array.isArray(specs)) {
    throw new InvalidOptionError(where, `expected an object of parameter specs, got ${JSON.stringify(specs)}`);
  }
  for (const [key, raw] of Object.entries(specs)) {
    const at = `${where}.${key}`;
    const spec = raw as ParamSpec;
    if (typeof spec !== 'object' || spec === null || !(PARAM_TYPES as readonly string[]).includes(spec.type)) {
      throw new InvalidOptionError(`${at}.type`, `expected one of ${PARAM_TYPES.join('|')}, got ${JSON.stringify((spec as { type?: unknown })?.type)}`);
    }
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key)) {
      throw new InvalidOptionError(at, 'parameter names must start with a letter or _ and hold no spaces or "="');
    }
    if (spec.type === 'enum' && (!Array.isArray(spec.values) || spec.values.length === 0)) {
      throw new InvalidOptionError(`${at}.values`, 'an enum parameter needs a non-empty list of values');
    }
    // the default must itself be a valid value
    checkValue(spec, spec.default, `${at}.default`);
  }
  return specs as ParamSpecs;
}

function checkValue(spec: ParamSpec, value: unknown, option: string): string | number | boolean {
  const bad = (got: unknown): never => {
    throw new InvalidOptionError(option, `expected ${describeSpec(spec)}, got ${JSON.stringify(got)}`);
  };
  switch (spec.type) {
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return bad(value);
      if (spec.integer && !Number.isInteger(value)) return bad(value);
      if (spec.min !== undefined && value < spec.min) return bad(value);
      if (spec.max !== undefined && value > spec.max) return bad(value);
      return value;
    }
    case 'boolean':
      return typeof value === 'boolean' ? value : bad(value);
    case 'enum':
      return typeof value === 'string' && spec.values.includes(value) ? value : bad(value);
    default:
      return typeof value === 'string' ? value : bad(value);
  }
}

function parseValue(spec: ParamSpec, text: string, option: string): string | number | boolean {
  switch (spec.type) {
    case 'number': {
      const n = text.trim() === '' ? Number.NaN : Number(text);
      if (!Number.isFinite(n)) {
        throw new InvalidOptionError(option, `expected ${describeSpec(spec)}, got "${text}"`);
      }
      return checkValue(spec, n, option);
    }
    case 'boolean': {
      const word = text.trim().toLowerCase();
      if (TRUE_WORDS.has(word)) return true;
      if (FALSE_WORDS.has(word)) return false;
      throw new InvalidOptionError(option, `expected a boolean (true|false), got "${text}"`);
    }
    default:
      return checkValue(spec, text, option);
  }
}

function unknownParam(key: string, option: string, specs: ParamSpecs, pipeline?: string): InvalidOptionError {
  const known = describeParams(specs);
  const of = pipeline ? ` of pipeline "${pipeline}"` : '';
  return new InvalidOptionError(option, `unknown parameter "${key}"${of}; known parameters: ${known.length ? known.join(', ') : '(none)'}`, {
    fix: known.length ? `use one of the known names, e.g. --set ${Object.keys(specs)[0]}=...` : 'this pipeline takes no parameters',
  });
}

/**
 * Turns `--set key=value` strings (or a record of values) into the pipeline's typed, readonly
 * parameters, filling defaults. Unknown keys and badly typed values throw InvalidOptionError
 * naming `--set key` (or `params.key` for a record). With `cwd`, `path` parameters (given or
 * default) are made absolute against it (`resolvePathParam`).
 */
export function resolveParams<P extends ParamSpecs>(specs: P, sets: RawParams = [], options: { pipeline?: string; cwd?: string } = {}): ParamValues<P> {
  checkParamSpecs(specs);
  const given = new Map<string, string | number | boolean>();
  if (Array.isArray(sets)) {
    for (const item of sets as readonly unknown[]) {
      if (typeof item !== 'string') throw new InvalidOptionError('--set', `expected key=value text, got ${JSON.stringify(item)}`);
      const eq = item.indexOf('=');
      if (eq <= 0) {
        throw new InvalidOptionError('--set', `expected key=value, got "${item}"`, { fix: 'write --set name=value (no spaces around "=")' });
      }
      const key = item.slice(0, eq).trim();
      const option = `--set ${key}`;
      const spec = Object.hasOwn(specs, key) ? specs[key] : undefined;
      if (!spec) throw unknownParam(key, option, specs, options.pipeline);
      given.set(key, parseValue(spec, item.slice(eq + 1), option));
    }
  } else if (typeof sets === 'object' && sets !== null) {
    for (const [key, value] of Object.entries(sets)) {
      if (value === undefined) continue;
      const option = `params.${key}`;
      const spec = Object.hasOwn(specs, key) ? specs[key] : undefined;
      if (!spec) throw unknownParam(key, option, specs, options.pipeline);
      given.set(key, typeof value === 'string' ? parseValue(spec, value, option) : checkValue(spec, value, option));
    }
  } else {
    throw new InvalidOptionError('params', `expected a list of "key=value" or a record, got ${JSON.stringify(sets)}`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const value = given.has(key) ? given.get(key) : spec.default;
    out[key] = spec.type === 'path' && options.cwd !== undefined ? resolvePathParam(value as string, options.cwd) : value;
  }
  return Object.freeze(out) as ParamValues<P>;
}

/** Checks the shape of a pipeline definition (a default export may be anything). */
export function checkPipelineConfig(config: unknown, file?: string): PipelineConfig<ParamSpecs> {
  const where = file ? { file } : {};
  const fix = 'export default definePipeline({ name, description, params, run })';
  if (typeof config !== 'object' || config === null) {
    throw new InvalidOptionError('pipeline', `expected a pipeline definition object, got ${config === null ? 'null' : typeof config}`, { ...where, fix });
  }
  const c = config as Partial<PipelineConfig<ParamSpecs>>;
  if (typeof c.name !== 'string' || !/^[a-z0-9][a-z0-9._-]*$/i.test(c.name)) {
    throw new InvalidOptionError('pipeline.name', `expected a name of letters, digits, ".", "_" or "-" (it names the default output folder), got ${JSON.stringify(c.name)}`, { ...where, fix });
  }
  if (typeof c.description !== 'string') {
    throw new InvalidOptionError('pipeline.description', `expected a one-line string, got ${JSON.stringify(c.description)}`, { ...where, fix });
  }
  if (typeof c.run !== 'function') {
    throw new InvalidOptionError('pipeline.run', `expected a function run(ctx), got ${typeof c.run}`, { ...where, fix });
  }
  try {
    checkParamSpecs(c.params, 'pipeline.params');
  } catch (e) {
    if (e instanceof InvalidOptionError && file) e.locate({ file });
    throw e;
  }
  return c as PipelineConfig<ParamSpecs>;
}

/**
 * The one place a `PipelineConfig` plus run options become a readonly `ResolvedPipeline`:
 * every option is checked here, before any folder or stream exists.
 */
export function resolvePipeline<P extends ParamSpecs>(config: PipelineConfig<P>, options: PipelineOptions = {}): ResolvedPipeline<P> {
  checkPipelineConfig(config);
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const seed = options.seed ?? 1;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new InvalidOptionError('seed', `expected an integer in 0..4294967295, got ${JSON.stringify(seed)}`);
  }
  const partition = options.partition === undefined ? WHOLE : checkPartition(options.partition, 'partition');
  const policy = options.policy ?? 'skip';
  if (!(POLICIES as readonly string[]).includes(policy)) {
    throw new InvalidOptionError('policy', `expected one of ${POLICIES.join('|')}, got ${JSON.stringify(policy)}`);
  }
  const backend = options.backend ?? 'auto';
  if (!(BACKENDS as readonly string[]).includes(backend)) {
    throw new InvalidOptionError('backend', `expected one of ${BACKENDS.join('|')}, got ${JSON.stringify(backend)}`);
  }
  if (options.out !== undefined && (typeof options.out !== 'string' || options.out === '')) {
    throw new InvalidOptionError('out', `expected a folder path, got ${JSON.stringify(options.out)}`);
  }
  const params = resolveParams(config.params, options.params ?? [], { pipeline: config.name, cwd });
  const out = path.resolve(cwd, options.out ?? path.join('runs', config.name));
  return Object.freeze({ config, name: config.name, params, out, seed, partition, policy, backend, cwd });
}
