import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { BadInputError, FactflowError } from '../errors.ts';
import type { ParamSpecs } from './define-pipeline.ts';
import { loadPipeline, PACKAGE_ROOT } from './load-pipeline.ts';

export interface PipelineListing {
  /** Absolute path of the definition file. */
  readonly file: string;
  /** Pipeline name (the file's base name when it failed to load). */
  readonly name: string;
  readonly description: string;
  readonly params: ParamSpecs;
  /** Set when the file could not be loaded; the other fields are then placeholders. */
  readonly error?: { readonly code: string; readonly message: string };
}

/**
 * Loads every definition file in a folder (default `<cwd>/pipelines`, else the package's own)
 * and describes it. A file that fails to load is listed with its error instead of failing the list.
 */
export async function listPipelines(options: { dir?: string; cwd?: string } = {}): Promise<PipelineListing[]> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  let dir: string;
  if (options.dir !== undefined) dir = path.resolve(cwd, options.dir);
  else {
    const local = path.join(cwd, 'pipelines');
    dir = existsSync(local) ? local : path.join(PACKAGE_ROOT, 'pipelines');
  }
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new BadInputError('cannot read the pipelines folder', { file: dir, cause: e, fix: 'run from a folder that has pipelines/, or pass --dir' });
  }
  const files = names.filter((f) => /\.(m?ts|m?js)$/.test(f) && !f.endsWith('.d.ts')).sort();
  const out: PipelineListing[] = [];
  for (const f of files) {
    const file = path.join(dir, f);
    try {
      const { config } = await loadPipeline(file, { cwd });
      out.push({ file, name: config.name, description: config.description, params: config.params });
    } catch (e) {
      const code = e instanceof FactflowError ? e.code : 'FF_ERR';
      const message = e instanceof Error ? e.message : String(e);
      out.push({ file, name: path.basename(f, path.extname(f)), description: '', params: {}, error: { code, message } });
    }
  }
  return out;
}
