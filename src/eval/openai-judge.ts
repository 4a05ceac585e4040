/**
 * MMHal-Bench judge through any OpenAI-compatible chat completions endpoint (undici).
 *
 * - URL: `baseUrl` ending in `/v1` gets `/chat/completions`; one already ending in
 *   `/chat/completions` is used as is; anything else gets `/v1/chat/completions`.
 * - Key: `apiKey`, else the environment variable FACTFLOW_JUDGE_API_KEY; sent only as the
 *   `Authorization: Bearer` header. It is never logged, never written, and scrubbed from
 *   every message this module produces (errors, log lines, cache files). No key: no
 *   header (local servers often need none); a 401/403 then says how to set one.
 * - Retries: 429 and 5xx and network errors, with exponential backoff (`backoffMs * 2^k`,
 *   capped at `maxBackoffMs`, no jitter so runs stay reproducible); a 429's Retry-After
 *   (seconds or HTTP date) is honoured, capped at `maxRetryAfterMs`. Other 4xx fail at once.
 * - Cache: with `cacheDir`, each reply is stored as `<sha256 of the request body>.json`
 *   (the body holds model, prompt and sampling settings, never the key); a rerun reads it
 *   and makes no request. Identical requests within a run share one call.
 * - A reply that is not JSON or lacks `choices[0].message.content` is an HttpError naming
 *   the URL and what was wrong; it is not retried (a deterministic server bug).
 * Request as the reference: one user message, temperature 0.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Dispatcher } from 'undici';
import { AbortedError, HttpError, InvalidOptionError } from '../errors.ts';
import type { Judge, JudgeItem, JudgeOptions, JudgeResult } from './judge.ts';
import { mmhalJudgePrompt } from './mmhal-judge-prompt.ts';
import { parseRating } from './parse-rating.ts';

export const JUDGE_KEY_ENV = 'FACTFLOW_JUDGE_API_KEY';

export interface OpenAIJudgeOptions {
  /** e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8000`. */
  baseUrl: string;
  model: string;
  /** Defaults to env FACTFLOW_JUDGE_API_KEY. */
  apiKey?: string;
  /** Where the key is looked up when `apiKey` is absent (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** Retries after the first attempt (default 6). */
  maxRetries?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  maxRetryAfterMs?: number;
  /** Per-request headers/body timeout (default 120 s). */
  timeoutMs?: number;
  temperature?: number;
  maxTokens?: number;
  /** Directory for cached replies; none = no cache. */
  cacheDir?: string;
  /** Progress and retry notes (already scrubbed of the key). */
  log?: (line: string) => void;
  /** undici dispatcher (tests, proxies). */
  dispatcher?: Dispatcher;
  /** Builds the prompt (default: the MMHal-Bench judge prompt). */
  prompt?: (item: JudgeItem) => string;
}

/** The chat completions URL for a base URL (see the file comment). */
export function chatCompletionsUrl(baseUrl: string): string {
  const trimmed = baseUrl.replace(/\/+$/, '');
  if (/\/chat\/completions$/.test(trimmed)) return trimmed;
  if (/\/v1$/.test(trimmed)) return `${trimmed}/chat/completions`;
  return `${trimmed}/v1/chat/completions`;
}

/** Delay asked for by a Retry-After header value, in ms (null when absent or unreadable). */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return null;
  if (/^\s*\d+(\.\d+)?\s*$/.test(v)) return Math.round(Number(v) * 1000);
  const date = Date.parse(v);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

function checkInt(option: string, v: number | undefined, dflt: number, min: number): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < min) throw new InvalidOptionError(option, `must be an integer >= ${min}, got ${String(v)}`);
  return x;
}

/** Where a request belongs, for messages: record index and a " (question_id …)" suffix. */
interface Where {
  index: number;
  text: string;
}

export function openaiJudge(options: OpenAIJudgeOptions): Judge {
  // Options first, before anything runs.
  let url: string;
  try {
    const u = new URL(chatCompletionsUrl(String(options?.baseUrl ?? '')));
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
    url = u.toString();
  } catch {
    throw new InvalidOptionError('judge_url', `not an http(s) URL: ${JSON.stringify(options?.baseUrl)}`, {
      fix: 'pass the API base URL, e.g. judge_url=https://api.openai.com/v1',
    });
  }
  if (typeof options.model !== 'string' || options.model.trim() === '') {
    throw new InvalidOptionError('judge_model', 'must name the judge model', { fix: 'e.g. judge_model=gpt-4-0613' });
  }
  const env = options.env ?? process.env;
  const key = options.apiKey ?? env[JUDGE_KEY_ENV] ?? '';
  const concurrency = checkInt('judge.concurrency', options.concurrency, 4, 1);
  const maxRetries = checkInt('judge.maxRetries', options.maxRetries, 6, 0);
  const backoffMs = checkInt('judge.backoffMs', options.backoffMs, 1000, 0);
  const maxBackoffMs = checkInt('judge.maxBackoffMs', options.maxBackoffMs, 60_000, 0);
  const maxRetryAfterMs = checkInt('judge.maxRetryAfterMs', options.maxRetryAfterMs, 120_000, 0);
  const timeoutMs = checkInt('judge.timeoutMs', options.timeoutMs, 120_000, 1);
  const temperature = options.temperature ?? 0;
  if (!Number.isFinite(temperature) || temperature < 0) throw new InvalidOptionError('judge.temperature', `must be >= 0, got ${temperature}`);
  if (options.maxTokens !== undefined) checkInt('judge.maxTokens', options.maxTokens, 1, 1);
  const buildPrompt = options.prompt ?? ((it: JudgeItem) =>
    mmhalJudgePrompt({ imageContent: it.image_content, question: it.question, gtAnswer: it.gt_answer, response: it.response }));
  const shownUrl = scrub(url);

  function scrub(text: string): string {
    return key ? text.split(key).join('[redacted]') : text;
  }
  function note(line: string): void {
    options.log?.(scrub(line));
  }
  function safeCause(cause: unknown): Error {
    const e = new Error(scrub(cause instanceof Error ? cause.message : String(cause)));
    const code = (cause as { code?: unknown })?.code;
    if (typeof code === 'string') (e as Error & { code?: string }).code = code;
    return e;
  }
  function snippet(text: string): string {
    const s = scrub(text).replace(/\s+/g, ' ').trim();
    return s.length > 200 ? `${s.slice(0, 200)}...` : s || '(empty)';
  }

  const inFlight = new Map<string, Promise<{ content: string; cached: boolean }>>();

  async function readCache(hash: string): Promise<string | null> {
    if (!options.cacheDir) return null;
    try {
      const obj = JSON.parse(await readFile(join(options.cacheDir, `${hash}.json`), 'utf8')) as { content?: unknown };
      if (typeof obj.content === 'string') return obj.content;
      note(`judge cache entry ${hash}.json has no content; asking again`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') note(`judge cache entry ${hash}.json unreadable (${(e as Error).message}); asking again`);
    }
    return null;
  }

  async function writeCache(hash: string, content: string): Promise<void> {
    if (!options.cacheDir) return;
    await mkdir(options.cacheDir, { recursive: true });
    const final = join(options.cacheDir, `${hash}.json`);
    const tmp = `${final}.${process.pid}.tmp`;
    const record = { request_sha256: hash, model: options.model, content };
    await writeFile(tmp, scrub(JSON.stringify(record, null, 1)) + '\n');
    await rename(tmp, final);
  }

  async function post(body: string, where: Where, signal?: AbortSignal): Promise<string> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (key) headers.authorization = `Bearer ${key}`;
    let lastProblem = '';
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      if (signal?.aborted) throw new AbortedError('judging was aborted', { cause: signal.reason });
      let status: number;
      let text: string;
      let retryAfter: number | null = null;
      try {
        const res = await request(url, {
          method: 'POST',
          headers,
          body,
          signal,
          dispatcher: options.dispatcher,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        status = res.statusCode;
        text = await res.body.text();
        if (status === 429) retryAfter = retryAfterMs(res.headers['retry-after']);
      } catch (cause) {
        if (signal?.aborted) throw new AbortedError('judging was aborted', { cause: signal.reason });
        lastProblem = `network error: ${scrub((cause as Error).message)}`;
        if (attempt === maxRetries) {
          throw new HttpError(`POST ${shownUrl} failed${where.text}: ${lastProblem} (after ${attempt + 1} attempts)`, {
            recordIndex: where.index,
            cause: safeCause(cause),
            fix: 'check judge_url and that the server is up',
          });
        }
        await wait(backoff(attempt), signal);
        continue;
      }
      if (status >= 200 && status < 300) return parseReply(text, status, where);
      const retryable = status === 429 || status >= 500;
      lastProblem = `status ${status}: ${snippet(text)}`;
      if (!retryable) {
        const auth = status === 401 || status === 403;
        throw new HttpError(`POST ${shownUrl} answered ${lastProblem}${where.text}`, {
          status,
          recordIndex: where.index,
          fix: auth
            ? `set the API key in the environment variable ${JUDGE_KEY_ENV}`
            : 'check judge_model and that the server speaks the OpenAI chat completions API',
        });
      }
      if (attempt === maxRetries) {
        throw new HttpError(`POST ${shownUrl} gave up${where.text} after ${attempt + 1} attempts; last ${lastProblem}`, {
          status,
          recordIndex: where.index,
          fix: status === 429 ? 'lower judge concurrency or wait for the rate limit to reset' : 'retry later; the server is failing',
        });
      }
      const delay = retryAfter !== null ? Math.min(retryAfter, maxRetryAfterMs) : backoff(attempt);
      note(`judge: ${shownUrl} answered ${status} for record #${where.index}${where.text}; retry ${attempt + 1}/${maxRetries} in ${delay} ms`);
      await wait(delay, signal);
    }
    throw new HttpError(`POST ${shownUrl} failed${where.text}: ${lastProblem}`, { recordIndex: where.index }); // unreachable
  }

  function backoff(attempt: number): number {
    return Math.min(backoffMs * 2 ** attempt, maxBackoffMs);
  }

  async function wait(ms: number, signal?: AbortSignal): Promise<void> {
    try {
      await sleep(ms, undefined, { signal });
    } catch (cause) {
      throw new AbortedError('judging was aborted', { cause });
    }
  }

  function parseReply(text: string, status: number, where: Where): string {
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch {
      throw new HttpError(`POST ${shownUrl} answered status ${status}${where.text} with a body that is not JSON: ${snippet(text)}`, {
        status,
        recordIndex: where.index,
        fix: 'judge_url must point at an OpenAI-compatible API (…/v1)',
      });
    }
    const content = (obj as { choices?: { message?: { content?: unknown } }[] })?.choices?.[0]?.message?.content;
    if (typeof content !== 'string') {
      const err = (obj as { error?: { message?: unknown } })?.error?.message;
      const what = typeof err === 'string' ? `an error object: ${snippet(err)}` : `JSON without choices[0].message.content (a string): ${snippet(text)}`;
      throw new HttpError(`POST ${shownUrl} answered status ${status}${where.text} with ${what}`, {
        status,
        recordIndex: where.index,
        fix: 'judge_url must point at an OpenAI-compatible chat completions API',
      });
    }
    return content;
  }

  async function judgeOne(item: JudgeItem, index: number, signal?: AbortSignal): Promise<JudgeResult> {
    const payload: Record<string, unknown> = {
      model: options.model,
      messages: [{ role: 'user', content: buildPrompt(item) }],
      temperature,
    };
    if (options.maxTokens !== undefined) payload.max_tokens = options.maxTokens;
    const body = JSON.stringify(payload);
    const hash = createHash('sha256').update(body).digest('hex');
    const where: Where = { index, text: item.question_id !== undefined ? ` (question_id ${String(item.question_id)})` : '' };
    let pending = inFlight.get(hash);
    if (!pending) {
      pending = (async () => {
        const hit = await readCache(hash);
        if (hit !== null) return { content: hit, cached: true };
        const content = await post(body, where, signal);
        await writeCache(hash, content);
        return { content, cached: false };
      })();
      inFlight.set(hash, pending);
      pending.finally(() => inFlight.delete(hash)).catch(() => {});
    }
    const { content, cached } = await pending;
    const score = parseRating(content);
    return { score, hallucinated: score < 3, explanation: content, cached };
  }

  return {
    name: `openai:${options.model}`,
    async judge(items: readonly JudgeItem[], judgeOptions: JudgeOptions = {}): Promise<JudgeResult[]> {
      const results = new Array<JudgeResult>(items.length);
      let next = 0;
      let firstError: { error: unknown } | null = null;
      const worker = async () => {
        while (firstError === null && next < items.length) {
          const i = next++;
          try {
            results[i] = await judgeOne(items[i]!, i, judgeOptions.signal);
          } catch (error) {
            firstError ??= { error }; // stop handing out work; the first error wins
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
      if (firstError !== null) throw (firstError as { error: unknown }).error;
      const done = results.filter(Boolean).length;
      if (items.length > 0) note(`judge: ${done} item(s) judged by ${options.model}`);
      return results;
    },
  };
}
