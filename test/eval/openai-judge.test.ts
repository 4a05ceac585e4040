import test from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chatCompletionsUrl, openaiJudge, retryAfterMs } from '../../src/eval/openai-judge.ts';
import type { JudgeItem } from '../../src/eval/judge.ts';

const KEY = 'sk-test-DO-NOT-LEAK-7f3a9c';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

interface Fake {
  url: string;
  calls: { auth: string | undefined; body: string }[];
  maxConcurrent: number;
  close(): Promise<void>;
}

/** A local OpenAI-compatible endpoint answering from a script of handlers (the last repeats). */
async function fakeServer(script: Handler[]): Promise<Fake> {
  const calls: Fake['calls'] = [];
  let active = 0;
  const fake = { calls, maxConcurrent: 0 } as Fake;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      active++;
      fake.maxConcurrent = Math.max(fake.maxConcurrent, active);
      let done = false;
      const release = () => {
        if (!done) active--;
        done = true;
      };
      res.once('finish', release);
      res.once('close', release);
      calls.push({ auth: req.headers.authorization, body });
      const h = script[Math.min(calls.length - 1, script.length - 1)]!;
      h(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  fake.url = `http://127.0.0.1:${port}/v1`;
  fake.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return fake;
}

const reply = (content: string, delayMs = 0): Handler => (_req, _body, res) => {
  setTimeout(() => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content } }] }));
  }, delayMs);
};
const status = (code: number, body: string, headers: Record<string, string> = {}): Handler => (_req, _b, res) => {
  res.writeHead(code, { 'content-type': 'application/json', ...headers });
  res.end(body);
};

const item = (i: number): JudgeItem => ({
  question_id: i,
  question_type: 'counting',
  image_content: ['Red circle', 'Blue star'],
  question: `How many circles? (${i})`,
  gt_answer: 'There is one circle.',
  response: 'There is one red circle.',
});

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'factflow-judge-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function assertNoKeyInDir(t: { false(v: boolean, m?: string): void }, dir: string) {
  for (const f of await readdir(dir)) {
    const text = await readFile(join(dir, f), 'utf8');
    t.false(text.includes(KEY), `key found in cache file ${f}`);
  }
}

test('URL building and Retry-After parsing', (t) => {
  t.is(chatCompletionsUrl('https://api.openai.com/v1'), 'https://api.openai.com/v1/chat/completions');
  t.is(chatCompletionsUrl('http://127.0.0.1:8000/'), 'http://127.0.0.1:8000/v1/chat/completions');
  t.is(chatCompletionsUrl('http://h/x/v1/chat/completions'), 'http://h/x/v1/chat/completions');
  t.is(retryAfterMs('3'), 3000);
  t.is(retryAfterMs(['0']), 0);
  t.is(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6000);
  t.is(retryAfterMs('soon'), null);
  t.is(retryAfterMs(undefined), null);
});

test('429 then success: Retry-After is honoured, the key is sent but never logged', async (t) => {
  const fake = await fakeServer([status(429, '{"error":{"message":"slow down"}}', { 'retry-after': '0' }), reply('Fine. Rating: 5, very informative')]);
  t.teardown(() => fake.close());
  const logs: string[] = [];
  // backoffMs 60 s: if Retry-After were ignored this test would time out
  const judge = openaiJudge({ baseUrl: fake.url, model: 'judge-1', apiKey: KEY, backoffMs: 60_000, log: (l) => logs.push(l) });
  const [r] = await judge.judge([item(0)]);
  t.is(r!.score, 5);
  t.false(r!.hallucinated);
  t.is(fake.calls.length, 2);
  t.is(fake.calls[0]!.auth, `Bearer ${KEY}`);
  t.true(logs.some((l) => /answered 429 .* in 0 ms/.test(l)), logs.join('\n'));
  for (const l of logs) t.false(l.includes(KEY));
  const sent = JSON.parse(fake.calls[0]!.body);
  t.is(sent.model, 'judge-1');
  t.is(sent.temperature, 0);
  t.regex(sent.messages[0].content, /### LMM Response to Evaluate\nThere is one red circle\./);
});

test('500 is retried with backoff; a dropped connection too', async (t) => {
  const fake = await fakeServer([
    status(500, 'oops'),
    (_req, _b, res) => res.socket?.destroy(),
    reply('Rating: 2'),
  ]);
  t.teardown(() => fake.close());
  const logs: string[] = [];
  const judge = openaiJudge({ baseUrl: fake.url, model: 'm', apiKey: KEY, backoffMs: 1, log: (l) => logs.push(l) });
  const [r] = await judge.judge([item(0)]);
  t.is(r!.score, 2);
  t.true(r!.hallucinated);
  t.is(fake.calls.length, 3);
  t.true(logs.some((l) => l.includes('answered 500')));
});

test('persistent 503 gives up with an HttpError naming the URL and the record', async (t) => {
  const fake = await fakeServer([status(503, `{"error":"overloaded, your key ${KEY} is fine"}`)]);
  t.teardown(() => fake.close());
  const judge = openaiJudge({ baseUrl: fake.url, model: 'm', apiKey: KEY, backoffMs: 1, maxRetries: 2 });
  const e = await t.throwsAsync(judge.judge([item(0), item(1)], {}));
  t.is((e as { code?: string }).code, 'FF_ERR_HTTP');
  t.is((e as { status?: number }).status, 503);
  t.true(e!.message.includes(`${fake.url}/chat/completions`), e!.message);
  t.regex(e!.message, /record #\d.*gave up .*after 3 attempts; last status 503/);
  t.false(e!.message.includes(KEY), 'the key echoed by the server is scrubbed');
  t.true(e!.message.includes('[redacted]'));
});

test('a malformed body is a clear error, not retried', async (t) => {
  const fake = await fakeServer([status(200, '<html>proxy login</html>')]);
  t.teardown(() => fake.close());
  const judge = openaiJudge({ baseUrl: fake.url, model: 'm', apiKey: KEY, backoffMs: 1 });
  const e = await t.throwsAsync(judge.judge([item(7)]));
  t.is((e as { code?: string }).code, 'FF_ERR_HTTP');
  t.regex(e!.message, /^record #0: POST http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions answered status 200 \(question_id 7\) with a body that is not JSON: <html>proxy login<\/html>/);
  t.is(fake.calls.length, 1);

  const fake2 = await fakeServer([status(200, '{"choices":[]}')]);
  t.teardown(() => fake2.close());
  const e2 = await t.throwsAsync(openaiJudge({ baseUrl: fake2.url, model: 'm' }).judge([item(0)]));
  t.regex(e2!.message, /JSON without choices\[0\]\.message\.content \(a string\): \{"choices":\[\]\}/);
});

test('401 says how to set the key; the key comes from the environment variable and never shows', async (t) => {
  const fake = await fakeServer([(req, _b, res) => status(401, JSON.stringify({ error: { message: `bad key ${req.headers.authorization}` } }))(req, _b, res)]);
  t.teardown(() => fake.close());
  const judge = openaiJudge({ baseUrl: fake.url, model: 'm', env: { FACTFLOW_JUDGE_API_KEY: KEY } });
  const e = await t.throwsAsync(judge.judge([item(0)]));
  t.is(fake.calls[0]!.auth, `Bearer ${KEY}`);
  t.is((e as { status?: number }).status, 401);
  t.regex(e!.message, /Fix: set the API key in the environment variable FACTFLOW_JUDGE_API_KEY/);
  t.false(e!.message.includes(KEY));
  t.false(JSON.stringify({ ...e, message: e!.message, stack: e!.stack }).includes(KEY));
});

test('answers are cached by request hash: a rerun does not call the server; no key in the cache', async (t) => {
  const dir = await tempDir(t);
  const fake = await fakeServer([reply('Looks right. Rating: 4')]);
  t.teardown(() => fake.close());
  const logs: string[] = [];
  const opts = { baseUrl: fake.url, model: 'm', apiKey: KEY, cacheDir: dir, log: (l: string) => logs.push(l) };
  const first = await openaiJudge(opts).judge([item(0), item(1), item(0)]);
  t.deepEqual(first.map((r) => r.score), [4, 4, 4]);
  t.is(fake.calls.length, 2, 'the duplicate item shares one request');
  const files = (await readdir(dir)).sort();
  t.is(files.length, 2);
  t.regex(files[0]!, /^[0-9a-f]{64}\.json$/);
  const second = await openaiJudge(opts).judge([item(1), item(0)]);
  t.is(fake.calls.length, 2, 'server not called again');
  t.true(second.every((r) => r.cached === true && r.score === 4));
  await assertNoKeyInDir(t, dir);
  for (const l of logs) t.false(l.includes(KEY));
  // a different model is a different request
  await openaiJudge({ ...opts, model: 'm2' }).judge([item(0)]);
  t.is(fake.calls.length, 3);
});

test('concurrency limit holds and results keep item order', async (t) => {
  let n = 0;
  const fake = await fakeServer([(req, body, res) => reply(`Rating: ${n++ % 7}`, 30)(req, body, res)]);
  t.teardown(() => fake.close());
  const items = Array.from({ length: 6 }, (_, i) => item(i));
  const results = await openaiJudge({ baseUrl: fake.url, model: 'm', concurrency: 2 }).judge(items);
  t.is(results.length, 6);
  t.true(fake.maxConcurrent <= 2 && fake.maxConcurrent >= 1, `max concurrent ${fake.maxConcurrent}`);
  // each result is the one for its own request: the prompt carried "(i)"
  const order = fake.calls.map((c) => Number(/How many circles\? \((\d)\)/.exec(JSON.parse(c.body).messages[0].content)![1]));
  results.forEach((r, i) => t.is(r.score, order.indexOf(i) % 7));
});

test('abort stops judging with FF_ERR_ABORTED', async (t) => {
  const fake = await fakeServer([status(429, '{}', { 'retry-after': '30' })]);
  t.teardown(() => fake.close());
  const ac = new AbortController();
  const p = openaiJudge({ baseUrl: fake.url, model: 'm' }).judge([item(0)], { signal: ac.signal });
  setTimeout(() => ac.abort(), 50);
  const e = await t.throwsAsync(p);
  t.is((e as { code?: string }).code, 'FF_ERR_ABORTED');
});

test('bad options are refused before any request', (t) => {
  for (const [opts, path] of [
    [{ baseUrl: 'ftp://x', model: 'm' }, 'judge_url'],
    [{ baseUrl: 'not a url', model: 'm' }, 'judge_url'],
    [{ baseUrl: 'http://127.0.0.1:1', model: '' }, 'judge_model'],
    [{ baseUrl: 'http://127.0.0.1:1', model: 'm', concurrency: 0 }, 'judge.concurrency'],
  ] as const) {
    const e = t.throws(() => openaiJudge(opts as never));
    t.is((e as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
    t.true(e!.message.includes(`"${path}"`), e!.message);
  }
});
