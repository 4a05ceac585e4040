/**
 * Every source takes a local path or an http(s) URL. `inputFile` turns either into a local
 * file (downloading URLs through the cache once) and fingerprints it for the manifest.
 */
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { BadInputError } from '../src/errors.ts';
import type { InputFingerprint } from '../src/stream/stage.ts';
import { fetchToCache, sha256File, type FetchOptions, type FetchProgress } from './http-fetch.ts';

export function isUrl(input: string): boolean {
  return /^https?:\/\//i.test(input);
}

/** Download options a source passes through to `fetchToCache` (without the per-file sha256). */
export type HttpOptions = Omit<FetchOptions, 'sha256' | 'signal'>;

export interface InputFile {
  /** The path or URL as given. */
  readonly input: string;
  /**
   * A local path to read: the file itself, or its cached download. `note` receives download
   * progress lines (at most one a second), e.g. a source's `ctx.note`.
   */
  local(signal?: AbortSignal, note?: (text: string) => void): Promise<string>;
  fingerprint(signal?: AbortSignal): Promise<InputFingerprint>;
}

/**
 * A lazily resolved input file. Local paths must exist (BadInputError naming the path);
 * URLs are fetched into the cache on first use, checked against `sha256` when given.
 */
export function inputFile(input: string, options: HttpOptions & { sha256?: string } = {}): InputFile {
  let localPath: Promise<string> | undefined;
  let print: Promise<InputFingerprint> | undefined;
  const local = (signal?: AbortSignal, note?: (text: string) => void): Promise<string> => {
    localPath ??= (async () => {
      if (isUrl(input)) {
        let last = 0;
        const onProgress = (p: FetchProgress): void => {
          options.onProgress?.(p);
          const now = Date.now();
          if (!note || now - last < 1000) return;
          last = now;
          const mb = (n: number) => (n / 1e6).toFixed(1);
          note(`downloading ${input}: ${mb(p.received)}${p.total !== undefined ? ` of ${mb(p.total)}` : ''} MB`);
        };
        return (await fetchToCache(input, { ...options, signal, onProgress })).path;
      }
      const path = resolve(input);
      const st = await stat(path).catch(() => undefined);
      if (!st) throw new BadInputError('file not found', { file: input, fix: 'check the path (or give an http(s) URL)' });
      if (!st.isFile()) throw new BadInputError('expected a file, found a folder', { file: input, fix: 'give the file inside it' });
      return path;
    })();
    localPath.catch(() => { localPath = undefined; }); // a failed resolve may be retried
    return localPath;
  };
  return {
    input,
    local,
    fingerprint(signal) {
      print ??= (async () => {
        const path = await local(signal);
        const st = await stat(path);
        return { path: input, bytes: st.size, sha256: await sha256File(path) };
      })();
      return print;
    },
  };
}

/**
 * A folder input (Flickr30k Entities). Its fingerprint hashes the sorted listing
 * (relative path and size of every file), not the contents: tens of thousands of small
 * files would otherwise cost a full read on every run.
 */
export async function folderFingerprint(dir: string, label = dir): Promise<InputFingerprint> {
  const root = resolve(dir);
  const entries: string[] = [];
  let bytes = 0;
  const walk = async (d: string): Promise<void> => {
    const items = await readdir(d, { withFileTypes: true });
    for (const item of items) {
      const p = join(d, item.name);
      if (item.isDirectory()) await walk(p);
      else if (item.isFile()) {
        const size = (await stat(p)).size;
        bytes += size;
        entries.push(`${relative(root, p).split('\\').join('/')}\t${size}`);
      }
    }
  };
  try {
    await walk(root);
  } catch (err) {
    throw new BadInputError(`cannot list folder: ${(err as Error).message}`, { file: dir, cause: err, fix: 'check the path' });
  }
  entries.sort();
  const hash = createHash('sha256');
  for (const e of entries) hash.update(e + '\n');
  return { path: label, bytes, sha256: hash.digest('hex') };
}
