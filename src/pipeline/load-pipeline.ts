import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BadInputError, FactflowError } from '../errors.ts';
import type { ParamSpecs, PipelineConfig } from './define-pipeline.ts';
import { checkPipelineConfig } from './resolve-params.ts';

/** The factflow checkout/package root (holds the embedded `pipelines/`). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXTENSIONS = ['.ts', '.mts', '.js', '.mjs'];

export interface LoadedPipeline {
  readonly config: PipelineConfig<ParamSpecs>;
  /** Absolute path of the definition file. */
  readonly file: string;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Folders searched for bare pipeline names: `<cwd>/pipelines`, then the package's own. */
export function pipelineDirs(cwd = process.cwd()): string[] {
  const dirs = [path.resolve(cwd, 'pipelines'), path.join(PACKAGE_ROOT, 'pipelines')];
  return [...new Set(dirs)].filter((d) => existsSync(d));
}

/**
 * Finds a definition file: a path relative to `cwd`, or a bare name (`sft-mix`) looked up as
 * `pipelines/<name>.ts` in `cwd`, then in the factflow package.
 */
export function resolvePipelineFile(ref: string, options: { cwd?: string } = {}): string {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const direct = path.resolve(cwd, ref);
  if (isFile(direct)) return direct;
  const tried = [direct];
  const bare = !ref.includes('/') && !ref.includes('\\') && !EXTENSIONS.includes(path.extname(ref));
  if (bare) {
    for (const dir of [path.resolve(cwd, 'pipelines'), path.join(PACKAGE_ROOT, 'pipelines')]) {
      for (const ext of EXTENSIONS) {
        const candidate = path.join(dir, ref + ext);
        if (isFile(candidate)) return candidate;
        if (ext === '.ts') tried.push(candidate);
      }
    }
  } else if (!path.extname(ref)) {
    for (const ext of EXTENSIONS) if (isFile(direct + ext)) return direct + ext;
  }
  const names = pipelineDirs(cwd).flatMap((d) => {
    try {
      return readdirSync(d).filter((f) => EXTENSIONS.includes(path.extname(f))).map((f) => path.basename(f, path.extname(f)));
    } catch {
      return [];
    }
  });
  throw new BadInputError(`no pipeline definition file found (looked for ${[...new Set(tried)].join(', ')})`, {
    file: ref,
    fix: names.length
      ? `give a path to a definition file or one of the known names: ${[...new Set(names)].sort().join(', ')}`
      : 'give a path to a definition file (a .ts file whose default export is definePipeline({...}))',
  });
}

/**
 * Imports a pipeline definition file (tsx must be registered for `.ts`, as `bin/pipeline.js`
 * and the test runner do) and checks that its default export is a pipeline definition.
 */
export async function loadPipeline(ref: string, options: { cwd?: string } = {}): Promise<LoadedPipeline> {
  const file = resolvePipelineFile(ref, options);
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (e) {
    // an option check failing at the definition's top level keeps its own code
    if (e instanceof FactflowError) throw e.locate({ file });
    const reason = e instanceof Error ? e.message : String(e);
    throw new BadInputError(`could not load the pipeline definition: ${reason}`, { file, cause: e, fix: 'fix the error in the definition file (run it with FACTFLOW_DEBUG=1 for the stack)' });
  }
  if (mod.default === undefined) {
    throw new BadInputError('the file has no default export', { file, fix: 'end the file with: export default definePipeline({ name, description, params, run })' });
  }
  return { config: checkPipelineConfig(mod.default, file), file };
}
