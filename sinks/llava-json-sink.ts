/**
 * Writes conversations as one LLaVA training JSON array
 * (`[{"id", "image", "conversations": [{"from", "value"}]}]`, `image` left out for
 * text-only records, as LLaVA's loader expects), streamed to a temporary name and
 * renamed when complete.
 */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { conversationSchema, type Conversation } from '../schemas/conversation.ts';
import { AbortedError, InvalidOptionError } from '../src/errors.ts';
import { originOf } from '../src/stream/origin.ts';
import type { Sink, SinkContext } from '../src/stream/stage.ts';

export interface LlavaJsonSinkOptions {
  /** Output file, e.g. `<out>/llava_sft.json`. */
  path: string;
  /** Check each record with the conversation schema and reject bad ones; default true. */
  validate?: boolean;
  /** Sink name in the flow; default `llava-json`. */
  name?: string;
}

export interface LlavaJsonResult {
  rows: number;
  path: string;
  sha256: string;
}

/** Write in chunks of about this many characters, so large outputs stream. */
const CHUNK_CHARS = 1 << 20;

export function llavaJsonSink(options: LlavaJsonSinkOptions): Sink<Conversation, LlavaJsonResult> {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'expected an object');
  if (typeof options.path !== 'string' || options.path === '') throw new InvalidOptionError('path', 'expected an output file path');
  const validate = options.validate ?? true;
  if (typeof validate !== 'boolean') throw new InvalidOptionError('validate', 'expected true or false');
  const file = options.path;

  return {
    name: options.name ?? 'llava-json',
    async write(input: AsyncIterable<Conversation>, ctx: SinkContext): Promise<LlavaJsonResult> {
      await fsp.mkdir(path.dirname(file), { recursive: true });
      const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
      const fh = await fsp.open(tmp, 'w');
      const hash = createHash('sha256');
      let buffered = '';
      const flush = async (): Promise<void> => {
        if (buffered === '') return;
        const bytes = Buffer.from(buffered, 'utf8');
        buffered = '';
        hash.update(bytes);
        let off = 0;
        while (off < bytes.length) off += (await fh.write(bytes, off, bytes.length - off)).bytesWritten;
      };
      let rows = 0;
      try {
        buffered = '[';
        let index = -1;
        for await (const record of input) {
          index++;
          if (ctx.signal.aborted) throw new AbortedError(undefined, { cause: ctx.signal.reason });
          if (validate) {
            const reason = conversationSchema.validate(record);
            if (reason !== null) {
              ctx.reject(record, reason, originOf(record) ?? { index });
              continue;
            }
          }
          const entry = record.image === null
            ? { id: record.id, conversations: record.conversations.map((t) => ({ from: t.from, value: t.value })) }
            : { id: record.id, image: record.image, conversations: record.conversations.map((t) => ({ from: t.from, value: t.value })) };
          buffered += (rows === 0 ? '\n' : ',\n') + JSON.stringify(entry);
          rows++;
          if (buffered.length >= CHUNK_CHARS) await flush();
        }
        buffered += rows === 0 ? ']\n' : '\n]\n';
        await flush();
        await fh.sync();
        await fh.close();
      } catch (err) {
        await fh.close().catch(() => {});
        await fsp.rm(tmp, { force: true });
        throw err;
      }
      await fsp.rename(tmp, file);
      return { rows, path: file, sha256: hash.digest('hex') };
    },
  };
}
