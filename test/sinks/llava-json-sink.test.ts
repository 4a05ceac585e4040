import test from 'ava';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Conversation } from '../../schemas/conversation.ts';
import { llavaJsonSink } from '../../sinks/llava-json-sink.ts';
import { fakeSinkContext, iterate, makeConversations } from './sink-harness.ts';
import { tempDir } from '../helpers/temp-dir.ts';

test('writes one LLaVA training JSON array, image left out for text-only records', async (t) => {
  const dir = await tempDir(t, 'ff-llava-');
  const file = path.join(dir, 'out', 'llava_sft.json');
  const records = makeConversations(50);
  const bad = { ...records[0]!, conversations: [{ from: 'gpt', value: 'x' }] } as Conversation;
  const ctx = fakeSinkContext({ dir });
  const result = await llavaJsonSink({ path: file }).write(iterate([...records.slice(0, 10), bad, ...records.slice(10)]), ctx);
  const text = await fsp.readFile(file, 'utf8');
  t.deepEqual(result, { rows: 50, path: file, sha256: createHash('sha256').update(text).digest('hex') });
  const parsed = JSON.parse(text) as Record<string, unknown>[];
  t.deepEqual(parsed, records.map((r) => (r.image === null ? { id: r.id, conversations: r.conversations } : { id: r.id, image: r.image, conversations: r.conversations })));
  t.is(text.split('\n').length, 53);
  t.is(ctx.rejected.length, 1);
  t.deepEqual(await fsp.readdir(path.dirname(file)), ['llava_sft.json']);
});

test('an empty input gives an empty array; a failed input leaves no file', async (t) => {
  const dir = await tempDir(t, 'ff-llava-');
  const file = path.join(dir, 'empty.json');
  t.like(await llavaJsonSink({ path: file }).write(iterate([]), fakeSinkContext({ dir })), { rows: 0 });
  t.deepEqual(JSON.parse(await fsp.readFile(file, 'utf8')), []);
  const failed = path.join(dir, 'failed.json');
  await t.throwsAsync(llavaJsonSink({ path: failed }).write(iterate(makeConversations(5), { failAfter: 3 }), fakeSinkContext({ dir })), { message: 'simulated crash' });
  t.deepEqual((await fsp.readdir(dir)).sort(), ['empty.json']);
  const err = t.throws(() => llavaJsonSink({ path: '' }));
  t.is((err as { code?: string }).code, 'FF_ERR_INVALID_OPTION');
});
