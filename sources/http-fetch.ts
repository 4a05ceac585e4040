/**
 * Downloads a URL into a cache folder with retries, exponential backoff with jitter,
 * resume by HTTP Range after a broken transfer, and an optional sha256 check.
 *
 * The transfer goes to `<cache>/<key>-<basename>.part` and is renamed to its final name only
 * when complete (and verified), so a cached file is always whole. Two processes fetching the
 * same URL into the same cache at once are not supported.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, stat, truncate, unlink } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, interceptors, request, type Dispatcher } from 'undici';
import { AbortedError, HttpError, InvalidOptionError } from '../src/errors.ts';
import { hash32, Rng } from '../src/stream/random.ts';

export interface FetchProgress {
  readonly url: string;
  /** Bytes on disk so far (including a resumed part). */
  readonly received: number;
  /** Total size when the server said it. */
  readonly total?: number;
}

export interface FetchOptions {
  /** Cache folder; default `$FACTFLOW_CACHE` or `.cache/factflow` under the working folder. */
  readonly cacheDir?: string;
  /** Expected sha256 (hex) of the whole file; a mismatch is an HttpError and the file is removed. */
  readonly sha256?: string;
  /** Further attempts after a failed one that made no progress (5xx, 429, network errors); default 5. */
  readonly retries?: number;
  /** First backoff delay; doubles each retry, with jitter; default 500 ms. */
  readonly backoffMs?: number;
  /** Cap on one backoff delay; default 30 s. */
  readonly maxBackoffMs?: number;
  /** Per-request headers and body idle timeout; default 60 s. */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: FetchProgress) => void;
  /** An undici dispatcher (proxy, mock); default an Agent following up to 5 redirects. */
  readonly dispatcher?: Dispatcher;
}

export interface FetchResult {
  /** Absolute path of the cached file. */
  readonly path: string;
  readonly bytes: number;
  readonly sha256: string;
  /** True when the file was already in the cache. */
  readonly fromCache: boolean;
  /** Requests made (0 when cached). */
  readonly requests: number;
}

export function defaultCacheDir(): string {
  return resolve(process.env['FACTFLOW_CACHE'] ?? '.cache/factflow');
}

/** The cache file name for a URL: a stable hash key plus a readable basename. */
export function cacheName(url: string): string {
  const key = createHash('sha256').update(url).digest('hex').slice(0, 16);
  let base = 'download';
  try {
    base = basename(new URL(url).pathname) || base;
  } catch { /* checked by the caller */ }
  return `${key}-${base.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80)}`;
}

let sharedAgent: Dispatcher | undefined;
function defaultDispatcher(): Dispatcher {
  sharedAgent ??= new Agent().compose(interceptors.redirect({ maxRedirections: 5 }));
  return sharedAgent;
}

function checkOptions(url: string, o: FetchOptions): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidOptionError('url', `"${url}" is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidOptionError('url', `"${url}" is not http(s)`);
  }
  if (o.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(o.sha256)) {
    throw new InvalidOptionError('sha256', `expected 64 hex digits, got "${o.sha256}"`);
  }
  for (const [name, v] of [['retries', o.retries], ['backoffMs', o.backoffMs], ['maxBackoffMs', o.maxBackoffMs], ['timeoutMs', o.timeoutMs]] as const) {
    if (v !== undefined && (!Number.isFinite(v) || v < 0)) throw new InvalidOptionError(name, `expected a number >= 0, got ${v}`);
  }
}

/** Transient failures worth another attempt. */
function retryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ENETUNREACH', 'EHOSTUNREACH',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'ERR_STREAM_PREMATURE_CLOSE',
]);

function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'FF_ERR_HTTP') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Parses `Content-Range: bytes start-end/total` (or `bytes * /total`). */
function parseContentRange(value: string | string[] | undefined): { start?: number; total?: number } {
  const v = Array.isArray(value) ? value[0] : value;
  const m = v ? /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)/i.exec(v) : null;
  if (!m) return {};
  return { start: m[1] !== undefined ? Number(m[1]) : undefined, total: m[2] !== '*' ? Number(m[2]) : undefined };
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Downloads `url` to the cache unless it is already there, and returns the cached path.
 * 404 and other 4xx fail at once; 5xx, 429 and network errors are retried; a cut transfer
 * resumes with `Range: bytes=N-` (a server that answers 200 instead of 206 restarts it).
 */
export async function fetchToCache(url: string, options: FetchOptions = {}): Promise<FetchResult> {
  checkOptions(url, options);
  const retries = options.retries ?? 5;
  const backoffMs = options.backoffMs ?? 500;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const signal = options.signal;
  const dir = resolve(options.cacheDir ?? defaultCacheDir());
  const finalPath = join(dir, cacheName(url));
  const partPath = `${finalPath}.part`;
  const expected = options.sha256?.toLowerCase();
  await mkdir(dir, { recursive: true });

  const cached = await stat(finalPath).catch(() => undefined);
  if (cached?.isFile()) {
    const digest = await sha256File(finalPath);
    if (expected === undefined || digest === expected) {
      return { path: finalPath, bytes: cached.size, sha256: digest, fromCache: true, requests: 0 };
    }
    await unlink(finalPath); // stale or corrupt cache entry: fetch again
  }

  // Jitter is seeded from the URL: no hidden randomness, and parallel clients still spread out.
  const rng = new Rng(hash32(url));
  let failures = 0;
  let requests = 0;
  let total: number | undefined;
  const dispatcher = options.dispatcher ?? defaultDispatcher();

  for (;;) {
    if (signal?.aborted) throw new AbortedError(`download of ${url} was aborted`, { cause: signal.reason });
    let have = await fileSize(partPath);
    if (total !== undefined && have === total && have > 0) break;
    let progressed = false;
    let retryAfterMs: number | undefined;
    try {
      requests++;
      const res = await request(url, {
        method: 'GET',
        headers: have > 0 ? { range: `bytes=${have}-` } : {},
        signal,
        dispatcher,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const status = res.statusCode;
      if (status === 416 && have > 0) {
        // Asked past the end: complete if the server's total matches, else start over.
        await res.body.dump();
        const range = parseContentRange(res.headers['content-range']);
        if (range.total === have) { total = have; break; }
        await truncate(partPath, 0);
        continue;
      }
      if (status !== 200 && status !== 206) {
        await res.body.dump().catch(() => undefined);
        if (retryableStatus(status)) {
          const ra = Number(header(res.headers, 'retry-after'));
          if (Number.isFinite(ra) && ra >= 0) retryAfterMs = Math.min(ra * 1000, maxBackoffMs);
          throw new HttpError(`server answered ${status} for ${url}`, { status, file: url });
        }
        throw new HttpError(`GET ${url} failed with HTTP ${status}${status === 404 ? ' (not found)' : ''}`, {
          status,
          file: url,
          fix: status === 404 ? 'check the URL (a dataset file may have moved), or give a local path instead'
            : status === 401 || status === 403 ? 'the server refused access: download the file by hand and give its local path'
              : 'check the URL, or give a local path instead',
        });
      }
      let append = false;
      if (status === 206) {
        const range = parseContentRange(res.headers['content-range']);
        if (range.total !== undefined) total = range.total;
        if (range.start === have) append = true;
        else {
          // The server sent a range we did not ask for: discard it and start over.
          await res.body.dump();
          await truncate(partPath, 0).catch(() => undefined);
          continue;
        }
      } else {
        // 200: the whole file (also when the server ignored our Range header).
        have = 0;
        const len = Number(header(res.headers, 'content-length'));
        total = Number.isFinite(len) && header(res.headers, 'content-length') !== undefined ? len : undefined;
      }
      const out = createWriteStream(partPath, { flags: append ? 'a' : 'w' });
      let received = have;
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          if (!out.write(chunk)) await new Promise<void>((ok) => out.once('drain', ok));
          received += chunk.length;
          progressed = true;
          options.onProgress?.({ url, received, total });
        }
      } finally {
        await new Promise<void>((ok, bad) => out.end((err?: Error | null) => (err ? bad(err) : ok())));
      }
      if (total !== undefined && received < total) {
        throw new HttpError(`transfer of ${url} ended at byte ${received} of ${total}`, { file: url, byteOffset: received });
      }
      if (total === undefined) total = received;
      break;
    } catch (err) {
      if (signal?.aborted) throw new AbortedError(`download of ${url} was aborted`, { cause: signal.reason });
      const retryable = err instanceof HttpError
        ? err.status === undefined || retryableStatus(err.status)
        : RETRYABLE_CODES.has(errorCode(err) ?? '') || (err as Error)?.name === 'SocketError';
      if (!retryable) {
        if (err instanceof HttpError) throw err;
        throw new HttpError(`GET ${url} failed: ${(err as Error).message}`, {
          file: url, cause: err, fix: 'check the URL and your network, or give a local path instead',
        });
      }
      // A transfer that moved forward does not use up an attempt: long downloads over flaky links still finish.
      if (!progressed) failures++;
      if (failures > retries) {
        throw new HttpError(`GET ${url} failed after ${failures} attempts: ${(err as Error).message}`, {
          file: url, cause: err, status: err instanceof HttpError ? err.status : undefined,
          fix: 'the server or network keeps failing: try again later, raise `retries`, or download by hand and give a local path',
        });
      }
      if (!progressed) {
        const exp = Math.min(maxBackoffMs, backoffMs * 2 ** (failures - 1));
        const delay = retryAfterMs ?? exp * (0.5 + 0.5 * rng.next());
        try {
          await sleep(delay, undefined, { signal });
        } catch {
          throw new AbortedError(`download of ${url} was aborted`, { cause: signal?.reason });
        }
      }
    }
  }

  const bytes = await fileSize(partPath);
  const digest = await sha256File(partPath);
  if (expected !== undefined && digest !== expected) {
    await unlink(partPath).catch(() => undefined);
    throw new HttpError(`sha256 mismatch for ${url}: expected ${expected}, got ${digest} (${bytes} bytes); the download was removed`, {
      file: url,
      fix: 'check the expected checksum; if it is right, the server sent a different file: retry later or download by hand',
    });
  }
  await rename(partPath, finalPath);
  return { path: finalPath, bytes, sha256: digest, fromCache: false, requests };
}
