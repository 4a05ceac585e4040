import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fetchToCache } from '../../sources/http-fetch.ts';
import { inputFile } from '../../sources/resolve-input.ts';
import { aokvqaSource } from '../../sources/aokvqa.ts';
import { readSource } from './harness.ts';
import { tempDir } from '../helpers/temp-dir.ts';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** A local server whose handler sees each request and its 1-based number. */
async function serve(handler: Handler): Promise<{ url: string; requests: IncomingMessage[]; close(): Promise<void> }> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    handler(req, res, requests.length);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
  };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Serves `body` honouring Range; `cutAt`: on the first request, stop after that many bytes and kill the socket. */
function rangeServer(body: Buffer, options: { cutAt?: number; ignoreRange?: boolean } = {}): Handler {
  return (req, res, n) => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && !options.ignoreRange) {
      const start = Number(m[1]);
      res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` });
      res.end(body.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': body.length });
    if (n === 1 && options.cutAt !== undefined) {
      res.write(body.subarray(0, options.cutAt));
      setTimeout(() => req.socket.destroy(), 50);
      return;
    }
    res.end(body);
  };
}

test('a transfer cut in the middle resumes with Range and the file is byte-identical', async (t) => {
  const body = randomBytes(300_000);
  const srv = await serve(rangeServer(body, { cutAt: 120_000 }));
  try {
    const progress: number[] = [];
    const r = await fetchToCache(`${srv.url}/data/aokvqa_v1p0_train.json`, {
      cacheDir: await tempDir(t, 'ff-http-'), sha256: sha(body), backoffMs: 1, onProgress: (p) => progress.push(p.received),
    });
    t.is(srv.requests.length, 2);
    t.is(srv.requests[0]!.headers.range, undefined);
    const m = /^bytes=(\d+)-$/.exec(srv.requests[1]!.headers.range ?? '');
    t.truthy(m);
    t.true(Number(m![1]) > 0 && Number(m![1]) <= 120_000);
    t.true((await readFile(r.path)).equals(body));
    t.is(r.sha256, sha(body));
    t.is(r.bytes, body.length);
    t.false(r.fromCache);
    t.true(r.path.endsWith('-aokvqa_v1p0_train.json'));
    t.is(progress[progress.length - 1], body.length);
    // a second fetch is served from the cache without a request
    const again = await fetchToCache(`${srv.url}/data/aokvqa_v1p0_train.json`, { cacheDir: join(r.path, '..') });
    t.true(again.fromCache);
    t.is(srv.requests.length, 2);
  } finally {
    await srv.close();
  }
});

test('a server that ignores Range (answers 200) makes the download restart, still byte-identical', async (t) => {
  const body = randomBytes(200_000);
  const srv = await serve(rangeServer(body, { cutAt: 50_000, ignoreRange: true }));
  try {
    const r = await fetchToCache(`${srv.url}/x.bin`, { cacheDir: await tempDir(t, 'ff-http-'), backoffMs: 1 });
    t.is(srv.requests.length, 2);
    t.truthy(srv.requests[1]!.headers.range);
    t.true((await readFile(r.path)).equals(body));
  } finally {
    await srv.close();
  }
});

test('a wrong sha256 is an error naming both digests, and the download is removed', async (t) => {
  const body = Buffer.from('hello world\n');
  const srv = await serve(rangeServer(body));
  const dir = await tempDir(t, 'ff-http-');
  try {
    const wrong = '0'.repeat(64);
    const err = await t.throwsAsync(fetchToCache(`${srv.url}/hello.txt`, { cacheDir: dir, sha256: wrong }));
    t.is((err as { code?: string }).code, 'FF_ERR_HTTP');
    t.true(err!.message.includes(`expected ${wrong}, got ${sha(body)}`));
    t.true(err!.message.includes(`${srv.url}/hello.txt`));
    t.deepEqual(await readdir(dir), []);
  } finally {
    await srv.close();
  }
});

test('503 then 200 is retried', async (t) => {
  const body = Buffer.from('[]');
  const srv = await serve((req, res, n) => {
    if (n === 1) { res.writeHead(503); res.end('busy'); return; }
    rangeServer(body)(req, res, n);
  });
  try {
    const r = await fetchToCache(`${srv.url}/a.json`, { cacheDir: await tempDir(t, 'ff-http-'), backoffMs: 1 });
    t.is(srv.requests.length, 2);
    t.is(r.requests, 2);
    t.true((await readFile(r.path)).equals(body));
  } finally {
    await srv.close();
  }
});

test('a 5xx that persists fails after the retries with a clear error', async (t) => {
  const srv = await serve((_req, res) => { res.writeHead(500); res.end(); });
  try {
    const err = await t.throwsAsync(fetchToCache(`${srv.url}/a.json`, { cacheDir: await tempDir(t, 'ff-http-'), backoffMs: 1, retries: 2 }));
    t.is((err as { code?: string }).code, 'FF_ERR_HTTP');
    t.is((err as { status?: number }).status, 500);
    t.is(srv.requests.length, 3);
    t.regex(err!.message, /failed after 3 attempts/);
  } finally {
    await srv.close();
  }
});

test('404 is a clear error at once (no retries), naming the URL and the fix', async (t) => {
  const srv = await serve((_req, res) => { res.writeHead(404); res.end('nope'); });
  try {
    const err = await t.throwsAsync(fetchToCache(`${srv.url}/missing.json`, { cacheDir: await tempDir(t, 'ff-http-'), backoffMs: 1 }));
    t.is((err as { code?: string }).code, 'FF_ERR_HTTP');
    t.is((err as { status?: number }).status, 404);
    t.is(srv.requests.length, 1);
    t.true(err!.message.includes(`GET ${srv.url}/missing.json failed with HTTP 404 (not found)`));
    t.regex(err!.message, /Fix: check the URL/);
  } finally {
    await srv.close();
  }
});

test('options are checked before any request', async (t) => {
  await t.throwsAsync(fetchToCache('ftp://x/y', {}), { message: /option "url"/ });
  await t.throwsAsync(fetchToCache('http://127.0.0.1:1/y', { sha256: 'abc' }), { message: /option "sha256"/ });
});

test('sources take URLs: an A-OKVQA file read over HTTP; inputs fingerprint the URL', async (t) => {
  const body = Buffer.from(JSON.stringify([{ split: 'val', image_id: 1, question_id: 'q', question: 'Q?', choices: ['a', 'b'], correct_choice_idx: 1, rationales: [] }]));
  const srv = await serve(rangeServer(body));
  try {
    const url = `${srv.url}/aokvqa_v1p0_val.json`;
    const src = aokvqaSource({ file: url, http: { cacheDir: await tempDir(t, 'ff-http-') } });
    const { items } = await readSource(src);
    t.deepEqual(items.map((i) => i.question_id), ['q']);
    t.deepEqual(await src.inputs!(), [{ path: url, bytes: body.length, sha256: sha(body) }]);
    t.is(srv.requests.length, 1);
  } finally {
    await srv.close();
  }
});

test('a missing local input is a clear error', async (t) => {
  const err = await t.throwsAsync(inputFile('/no/such/file.json').local());
  t.is((err as { code?: string }).code, 'FF_ERR_BAD_INPUT');
  t.regex(err!.message, /\/no\/such\/file\.json: file not found/);
});
