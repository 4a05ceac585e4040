/**
 * What a run's path inputs were when it ran, so `ctx.ensure` can tell a finished output made
 * from inputs that have changed since (a world made again, a mix rebuilt) from one still good.
 *
 * A path param's fingerprint is the run that made it: the nearest `summary.json` in the path or
 * above it (at most 3 folders up, never the run's own folder), identified by its `run_id` (older
 * summaries: by size and mtime). A path no run made is identified by its size and mtime.
 * URLs and the words "" / "none" are not fingerprinted.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ParamSpecs } from './define-pipeline.ts';

export interface InputFingerprint {
  /** The param (`vqav2`, or `vqav2[1]` for the second of a comma-separated list). */
  param: string;
  /** Absolute path as given. */
  path: string;
  /** The run that made it: its folder and id. */
  made_by?: { out: string; id: string };
  /** Otherwise the file or folder itself. */
  size?: number;
  mtime_ms?: number;
  missing?: true;
}

const UP = 3;

async function statOrNull(p: string): Promise<{ size: number; mtimeMs: number; isDirectory(): boolean } | null> {
  try { return await stat(p); } catch { return null; }
}

/** The id of the run whose summary.json is in `dir`, or null. */
async function runId(dir: string): Promise<string | null> {
  const file = path.join(dir, 'summary.json');
  const s = await statOrNull(file);
  if (!s) return null;
  try {
    const id = (JSON.parse(await readFile(file, 'utf8')) as { run_id?: unknown }).run_id;
    if (typeof id === 'string' && id !== '') return id;
  } catch { /* unreadable: fall back to size and mtime */ }
  return `size:${s.size};mtime:${Math.round(s.mtimeMs)}`;
}

async function fingerprintPath(param: string, p: string, ownOut: string): Promise<InputFingerprint> {
  const own = path.resolve(ownOut);
  let dir = p;
  for (let i = 0; i <= UP; i++) {
    if (path.resolve(dir) === own) break;
    const id = await runId(dir);
    if (id) return { param, path: p, made_by: { out: dir, id } };
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  const s = await statOrNull(p);
  return s ? { param, path: p, size: s.size, mtime_ms: Math.round(s.mtimeMs) } : { param, path: p, missing: true };
}

/** Fingerprints of every path param's value(s) (after the run, when its inputs exist). */
export async function fingerprintInputs(specs: ParamSpecs, params: Readonly<Record<string, unknown>>, ownOut: string): Promise<InputFingerprint[]> {
  const out: InputFingerprint[] = [];
  for (const [key, spec] of Object.entries(specs)) {
    if (spec.type !== 'path') continue;
    const value = params[key];
    if (typeof value !== 'string') continue;
    const parts = value.split(',').map((s) => s.trim()).filter((s) => s !== '' && s !== 'none' && !/^[a-z][a-z0-9+.-]*:\/\//i.test(s) && path.isAbsolute(s));
    for (const [i, p] of parts.entries()) out.push(await fingerprintPath(parts.length > 1 ? `${key}[${i}]` : key, p, ownOut));
  }
  return out;
}

/** Why recorded inputs no longer hold (empty: all still as they were). */
export async function changedInputs(recorded: readonly InputFingerprint[], ownOut: string): Promise<string[]> {
  const reasons: string[] = [];
  for (const r of recorded) {
    const now = await fingerprintPath(r.param, r.path, ownOut);
    if (r.made_by) {
      if (!now.made_by || now.made_by.out !== r.made_by.out) reasons.push(`${r.param}: ${r.path} is no longer the output of a finished run`);
      else if (now.made_by.id !== r.made_by.id) reasons.push(`${r.param}: ${r.made_by.out} was made again`);
    } else if (r.missing) {
      if (!now.missing) reasons.push(`${r.param}: ${r.path} exists now`);
    } else if (now.missing) reasons.push(`${r.param}: ${r.path} is gone`);
    else if (now.made_by || now.size !== r.size || now.mtime_ms !== r.mtime_ms) reasons.push(`${r.param}: ${r.path} changed`);
  }
  return reasons;
}
