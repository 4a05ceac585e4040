/**
 * Writes validated records into a folder of bounded shards plus `manifest.json`
 * (the HF `datasets` layout: `<split>-<i:05d>-of-<n:05d>.<ext>`), resumably.
 *
 * Each shard is encoded row group by row group into `.partial/<split>-<k:05d>.<ext>.tmp`,
 * fsynced, renamed to `.partial/<split>-<k:05d>.<ext>`, and only then recorded in
 * `.partial/state.json`. A rerun of the same command (same fingerprint) keeps those
 * shards and skips as many valid input records as they hold: upstream is
 * deterministic, so the final shards are byte-identical to an uninterrupted run.
 * On finish the shards get their `-of-` names and the manifest is written last;
 * until then readers see nothing of this run.
 */
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { FieldSpec, FieldType, RecordSchema } from '../schemas/field.ts';
import {
  MANIFEST_FILE,
  SHARD_FORMATS,
  partitionManifestName,
  partitionShardFileName,
  shardFileName,
  writeJsonAtomic,
  writeManifestAtomic,
  type Manifest,
  type ShardFormat,
} from '../schemas/manifest.ts';
import { AbortedError, BadInputError, InvalidOptionError } from '../src/errors.ts';
import { originOf } from '../src/stream/origin.ts';
import type { Sink, SinkContext } from '../src/stream/stage.ts';
import { arrowEncoder } from './arrow-encoder.ts';
import { jsonlEncoder } from './jsonl-encoder.ts';
import { checkParquetCodec, parquetEncoder, type ParquetCodec } from './parquet-encoder.ts';

/** Encodes one format; the sink does all I/O, so encoders stay pure and testable. */
export interface ShardEncoder {
  readonly format: ShardFormat;
  readonly ext: string;
  readonly codec: string;
  /** Deterministic size estimate of one record; default: its raw field bytes. */
  estimate?(record: unknown): number;
  /** Starts a new file. */
  open(): ShardEncoding;
}

export interface ShardEncoding {
  /** Encodes one row group (non-empty); returns the bytes to append to the file. */
  add(records: readonly unknown[]): Uint8Array;
  /** Ends the file; returns its last bytes. */
  finish(): Uint8Array;
}

export interface ShardSinkOptions<T> {
  /** Output folder (created if missing). */
  dir: string;
  schema: RecordSchema<T>;
  /** Default `parquet`. */
  format?: ShardFormat;
  /** Default `train`; letters, digits and `_` only (it goes into file names). */
  split?: string;
  /** Rows per shard; default 100,000. */
  maxRows?: number;
  /** Estimated bytes per shard; default 256 MiB. */
  maxBytes?: number;
  /** Rows per Parquet row group / Arrow record batch; default 10,000. */
  rowGroupRows?: number;
  /** Parquet codec; default `snappy`. Arrow and JSONL are written uncompressed. */
  codec?: ParquetCodec;
  /** Check each record against the schema and reject bad ones; default true. */
  validate?: boolean;
  /** Sink name in the flow; default `shards`. */
  name?: string;
}

/** One finished shard in `.partial/state.json`. */
interface StateShard {
  file: string;
  rows: number;
  bytes: number;
  sha256: string;
}

interface SinkState {
  fingerprint: string;
  shards: StateShard[];
}

const MiB = 1024 * 1024;
/** Row groups also close at this many estimated bytes, bounding memory per group. */
const ROW_GROUP_BYTES = 32 * MiB;
const STATE_FILE = 'state.json';
const pad5 = (n: number): string => String(n).padStart(5, '0');

export function shardSink<T>(options: ShardSinkOptions<T>): Sink<T, Manifest> {
  const o = checkOptions(options);
  const { dir, schema, format, split, maxRows, maxBytes, rowGroupRows, validate } = o;
  const encoder = makeEncoder(o);
  const estimate = encoder.estimate?.bind(encoder) ?? compileEstimate(schema.fields);
  // An encoder's own estimate may have side effects (jsonl caches lines): call it for every record.
  const bounds = encoder.estimate ? null : compileBounds(schema.fields);
  const rowGroupBytes = Math.min(ROW_GROUP_BYTES, maxBytes);

  return {
    name: o.name,
    async write(input: AsyncIterable<T>, ctx: SinkContext): Promise<Manifest> {
      const partition = ctx.partition;
      const partitioned = partition.count > 1;
      const partialDir = path.join(dir, partitioned ? `.partial.part-${pad5(partition.index)}-of-${pad5(partition.count)}` : '.partial');
      const manifestName = partitioned ? partitionManifestName(partition.index, partition.count) : MANIFEST_FILE;
      const partialName = (k: number): string => `${split}-${pad5(k)}.${encoder.ext}`;
      const finalName = (k: number, n: number): string =>
        partitioned ? partitionShardFileName(split, partition.index, k, encoder.ext) : shardFileName(split, k, n, encoder.ext);

      await fsp.mkdir(partialDir, { recursive: true });
      const inputs = await ctx.inputs();
      const fingerprint = sha256Hex(
        canonicalJson({
          schema: { name: schema.name, version: schema.version, fields: schema.fields },
          format,
          split,
          limits: { maxRows, maxBytes, rowGroupRows },
          codec: encoder.codec,
          validate,
          params: ctx.params,
          seed: ctx.seed,
          partition,
          inputs,
        }),
      );

      // Resume before clearing old outputs: a crash inside finish() leaves this run's
      // shards under their final names, listed in no manifest yet.
      const done = await loadState(partialDir, fingerprint, partialName, (k, n) => path.join(dir, finalName(k, n)));
      await removeOldOutputs(dir, manifestName);
      await removeStaleTemps(partialDir, '');
      await removeStaleTemps(dir, `${manifestName}.`);

      const state: SinkState = { fingerprint, shards: done };
      await writeJsonAtomic(path.join(partialDir, STATE_FILE), state);
      const toSkip = done.reduce((s, d) => s + d.rows, 0);
      let skipped = 0;

      let shard: OpenShard | null = null;
      let pending: unknown[] = [];
      const size = new PendingSize(estimate, bounds);

      const flushGroup = async (): Promise<void> => {
        if (!shard || pending.length === 0) return;
        await shard.append(shard.encoding.add(pending));
        pending = [];
        size.reset();
      };
      const closeShard = async (): Promise<void> => {
        if (!shard) return;
        await flushGroup();
        const s = shard;
        shard = null;
        const finished = await s.close();
        await fsp.rename(s.tmpPath, path.join(partialDir, s.file));
        state.shards.push({ file: s.file, ...finished });
        await writeJsonAtomic(path.join(partialDir, STATE_FILE), state);
        ctx.note(`${state.shards.length} shard${state.shards.length === 1 ? '' : 's'} written`);
      };

      try {
        let index = -1;
        for await (const record of input) {
          index++;
          if (ctx.signal.aborted) throw new AbortedError(undefined, { cause: ctx.signal.reason });
          if (validate) {
            const reason = schema.validate(record);
            if (reason !== null) {
              ctx.reject(record, reason, originOf(record) ?? { index });
              continue;
            }
          }
          if (skipped < toSkip) {
            skipped++;
            continue;
          }
          size.measure(record);
          if (shard && (shard.rows >= maxRows || size.exceeds(maxBytes - shard.bytes, pending))) await closeShard();
          if (!shard) {
            const file = partialName(state.shards.length);
            shard = await OpenShard.create(path.join(partialDir, `${file}.tmp`), file, encoder.open());
          }
          pending.push(record);
          size.add();
          shard.rows++;
          if (pending.length >= rowGroupRows || size.reaches(rowGroupBytes, pending)) await flushGroup();
        }
        if (skipped < toSkip) {
          throw new BadInputError(
            `resuming expected at least ${toSkip} valid records (already in ${done.length} shards) but the input has only ${skipped}`,
            { file: path.join(partialDir, STATE_FILE), fix: `the input changed since the interrupted run; delete ${partialDir} and rerun` },
          );
        }
        await closeShard();
      } catch (err) {
        // Leave finished shards and state for the rerun; drop the half-written one.
        const s = shard as OpenShard | null;
        if (s) await s.abandon();
        throw err;
      }

      const n = state.shards.length;
      const shards: Manifest['shards'] = [];
      for (let k = 0; k < n; k++) {
        const s = state.shards[k]!;
        const name = finalName(k, n);
        await fsp.rename(path.join(partialDir, s.file), path.join(dir, name));
        shards.push({ path: name, rows: s.rows, bytes: s.bytes, sha256: s.sha256 });
      }
      const manifest: Manifest = {
        format,
        schema: schema.name,
        schema_version: schema.version,
        split,
        total_rows: shards.reduce((sum, s) => sum + s.rows, 0),
        shards,
        rejected: { count: ctx.deadLetters.count(), path: path.relative(dir, ctx.deadLetters.path) },
        params: { ...ctx.params },
        seed: ctx.seed,
        inputs,
        ...(partitioned ? { partition: { index: partition.index, count: partition.count } } : {}),
      };
      await writeManifestAtomic(dir, manifest, manifestName);
      await fsp.rm(partialDir, { recursive: true, force: true });
      return manifest;
    },
  };
}

/** A shard being written: streams encoded row groups to its temporary file, hashing as it goes. */
class OpenShard {
  rows = 0;
  bytes = 0;
  private readonly hash = createHash('sha256');
  private constructor(
    readonly tmpPath: string,
    readonly file: string,
    readonly encoding: ShardEncoding,
    private readonly fh: fsp.FileHandle,
  ) {}

  static async create(tmpPath: string, file: string, encoding: ShardEncoding): Promise<OpenShard> {
    return new OpenShard(tmpPath, file, encoding, await fsp.open(tmpPath, 'w'));
  }

  async append(chunk: Uint8Array): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off);
      off += bytesWritten;
    }
    this.hash.update(chunk);
    this.bytes += chunk.length;
  }

  async close(): Promise<{ rows: number; bytes: number; sha256: string }> {
    await this.append(this.encoding.finish());
    await this.fh.sync();
    await this.fh.close();
    return { rows: this.rows, bytes: this.bytes, sha256: this.hash.digest('hex') };
  }

  async abandon(): Promise<void> {
    await this.fh.close().catch(() => {});
    await fsp.rm(this.tmpPath, { force: true });
  }
}

/**
 * Loads `.partial/state.json` when its fingerprint matches, keeping the longest prefix
 * of shards whose files are intact (moving back any that finish() had already renamed).
 * Anything else starts over with an empty `.partial`.
 */
async function loadState(
  partialDir: string,
  fingerprint: string,
  partialName: (k: number) => string,
  finalPath: (k: number, n: number) => string,
): Promise<StateShard[]> {
  let state: SinkState | null = null;
  try {
    const parsed = JSON.parse(await fsp.readFile(path.join(partialDir, STATE_FILE), 'utf8')) as SinkState;
    if (parsed && parsed.fingerprint === fingerprint && Array.isArray(parsed.shards)) state = parsed;
  } catch {
    // missing or torn state: nothing to resume
  }
  if (!state) {
    await fsp.rm(partialDir, { recursive: true, force: true });
    await fsp.mkdir(partialDir, { recursive: true });
    return [];
  }
  const kept: StateShard[] = [];
  const n = state.shards.length;
  for (let k = 0; k < n; k++) {
    const s = state.shards[k]!;
    if (s.file !== partialName(k)) break;
    const here = path.join(partialDir, s.file);
    if ((await fileSize(here)) === s.bytes) {
      kept.push(s);
      continue;
    }
    const moved = finalPath(k, n);
    if ((await fileSize(moved)) === s.bytes) {
      await fsp.rename(moved, here);
      kept.push(s);
      continue;
    }
    break;
  }
  return kept;
}

async function fileSize(file: string): Promise<number | null> {
  try {
    return (await fsp.stat(file)).size;
  } catch {
    return null;
  }
}

/** Deletes the previous run's manifest (first, so readers never follow it to missing files) and its shards. */
async function removeOldOutputs(dir: string, manifestName: string): Promise<void> {
  const file = path.join(dir, manifestName);
  let old: { shards?: { path?: unknown }[] } | null = null;
  try {
    old = JSON.parse(await fsp.readFile(file, 'utf8')) as { shards?: { path?: unknown }[] };
  } catch {
    old = null;
  }
  await fsp.rm(file, { force: true });
  for (const s of Array.isArray(old?.shards) ? old.shards : []) {
    const p = s?.path;
    // Only plain names inside the folder: a hand-edited manifest must not delete elsewhere.
    if (typeof p === 'string' && p !== '' && !path.isAbsolute(p) && !p.split(/[/\\]/).includes('..')) {
      await fsp.rm(path.join(dir, p), { force: true });
    }
  }
}

async function removeStaleTemps(dir: string, prefix: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name.endsWith('.tmp') && name.startsWith(prefix)) await fsp.rm(path.join(dir, name), { force: true });
  }
}

/** Raw byte size of a record's values: a cheap, deterministic stand-in for its encoded size. */
export function estimateRecordBytes(fields: readonly FieldSpec[], record: unknown): number {
  return compileEstimate(fields)(record);
}

type Estimate = (value: unknown) => number;

const estimators = new WeakMap<readonly FieldSpec[], Estimate>();

/**
 * The estimate for one field list, compiled into closures once (it runs on every
 * record): strings count 4 + their UTF-8 bytes, numbers their width, nulls 1.
 */
function compileEstimate(fields: readonly FieldSpec[]): Estimate {
  let estimate = estimators.get(fields);
  if (!estimate) estimators.set(fields, (estimate = compileStructEstimate(fields, (s) => Buffer.byteLength(s))));
  return estimate;
}

/** Bounds on the estimate without measuring UTF-8: one record's low bound, and its strings' UTF-16 length. */
interface Bounds {
  (record: unknown): number;
  chars: number;
}

/**
 * A string's UTF-8 size lies within [1, 3] times its UTF-16 length, so the estimate
 * lies within [low, low + 2 * chars], where `low` counts UTF-16 units as bytes.
 */
function compileBounds(fields: readonly FieldSpec[]): Bounds {
  const fn = compileStructEstimate(fields, (s) => {
    bounds.chars += s.length;
    return s.length;
  });
  const bounds: Bounds = Object.assign((record: unknown) => {
    bounds.chars = 0;
    return fn(record);
  }, { chars: 0 });
  return bounds;
}

function compileStructEstimate(fields: readonly FieldSpec[], bytes: (s: string) => number): Estimate {
  const names = fields.map((f) => f.name);
  const parts = fields.map((f) => compileValueEstimate(f.type, bytes));
  const n = fields.length;
  return (value) => {
    if (value === null || value === undefined) return 1;
    const rec = value as Record<string, unknown>;
    let total = 0;
    for (let i = 0; i < n; i++) total += parts[i]!(rec[names[i]!]);
    return total;
  };
}

function compileValueEstimate(type: FieldType, bytes: (s: string) => number): Estimate {
  if (typeof type === 'string') {
    if (type === 'string') return (v) => (v === null || v === undefined ? 1 : 4 + bytes(v as string));
    const width = type === 'bool' || type === 'int8' ? 1 : type === 'int32' || type === 'float32' ? 4 : 8;
    return (v) => (v === null || v === undefined ? 1 : width);
  }
  if ('list' in type) {
    const elem = type.list;
    if (typeof elem === 'string' && elem !== 'string') {
      const width = compileValueEstimate(elem, bytes)(0);
      return (v) => (v === null || v === undefined ? 1 : 4 + (v as ArrayLike<unknown>).length * width);
    }
    const item = compileValueEstimate(elem, bytes);
    return (v) => {
      if (v === null || v === undefined) return 1;
      const items = v as ArrayLike<unknown>;
      let n = 4;
      for (let i = 0; i < items.length; i++) n += item(items[i]);
      return n;
    };
  }
  // A struct field: a missing struct counts 1, like any null.
  return compileStructEstimate(type.struct, bytes);
}

/**
 * The pending row group's estimated size. Decisions (close the shard? flush the group?)
 * are exactly those of summing every record's estimate, but UTF-8 is measured only when
 * the cheap bounds cannot decide; from then on, until the group is flushed, exactly.
 */
class PendingSize {
  private low = 0;
  private high = 0;
  private exact: boolean;
  /** The record being added. */
  private lo = 0;
  private hi = 0;
  private record: unknown;

  constructor(
    private readonly estimate: Estimate,
    private readonly bounds: Bounds | null,
  ) {
    this.exact = bounds === null;
  }

  measure(record: unknown): void {
    this.record = record;
    if (this.exact) {
      this.lo = this.hi = this.estimate(record);
    } else {
      this.lo = this.bounds!(record);
      this.hi = this.lo + 2 * this.bounds!.chars;
    }
  }

  /** Whether the pending records plus the measured one estimate over `limit` bytes. */
  exceeds(limit: number, pending: readonly unknown[]): boolean {
    if (this.high + this.hi <= limit) return false;
    if (this.low + this.lo > limit) return true;
    this.makeExact(pending);
    this.lo = this.hi = this.estimate(this.record);
    return this.low + this.lo > limit;
  }

  add(): void {
    this.low += this.lo;
    this.high += this.hi;
  }

  /** Whether the pending records (the measured one added) estimate at least `limit` bytes. */
  reaches(limit: number, pending: readonly unknown[]): boolean {
    if (this.high < limit) return false;
    if (this.low >= limit) return true;
    this.makeExact(pending);
    return this.low >= limit;
  }

  reset(): void {
    this.low = this.high = 0;
    this.exact = this.bounds === null;
  }

  private makeExact(pending: readonly unknown[]): void {
    if (this.exact) return;
    let sum = 0;
    for (const r of pending) sum += this.estimate(r);
    this.low = this.high = sum;
    this.exact = true;
  }
}

/** JSON with sorted keys, so fingerprints do not depend on property order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }
    return v;
  });
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

interface CheckedOptions<T> {
  dir: string;
  schema: RecordSchema<T>;
  format: ShardFormat;
  split: string;
  maxRows: number;
  maxBytes: number;
  rowGroupRows: number;
  codec: ParquetCodec;
  validate: boolean;
  name: string;
}

function checkOptions<T>(options: ShardSinkOptions<T>): CheckedOptions<T> {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'expected an object');
  const { dir, schema } = options;
  if (typeof dir !== 'string' || dir === '') throw new InvalidOptionError('dir', 'expected a non-empty folder path');
  if (!schema || typeof schema.name !== 'string' || !Array.isArray(schema.fields) || typeof schema.validate !== 'function') {
    throw new InvalidOptionError('schema', 'expected a RecordSchema (e.g. conversationSchema from schemas/conversation.ts)');
  }
  const format = options.format ?? 'parquet';
  if (!SHARD_FORMATS.includes(format)) throw new InvalidOptionError('format', `expected one of ${SHARD_FORMATS.join(', ')}, got ${JSON.stringify(format)}`);
  const split = options.split ?? 'train';
  if (typeof split !== 'string' || !/^[A-Za-z0-9_]+$/.test(split)) {
    throw new InvalidOptionError('split', `expected letters, digits or "_" (it is part of shard file names), got ${JSON.stringify(split)}`);
  }
  const positiveInt = (name: string, value: unknown, fallback: number): number => {
    const v = value ?? fallback;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new InvalidOptionError(name, `expected a positive integer, got ${String(v)}`);
    return v;
  };
  const maxRows = positiveInt('maxRows', options.maxRows, 100_000);
  const maxBytes = positiveInt('maxBytes', options.maxBytes, 256 * MiB);
  const rowGroupRows = Math.min(positiveInt('rowGroupRows', options.rowGroupRows, 10_000), maxRows);
  if (format !== 'parquet' && options.codec !== undefined && options.codec !== 'uncompressed') {
    throw new InvalidOptionError('codec', `codecs apply to parquet only; ${format} shards are written uncompressed`);
  }
  const codec = format === 'parquet' ? checkParquetCodec(options.codec ?? 'snappy') : 'uncompressed';
  const validate = options.validate ?? true;
  if (typeof validate !== 'boolean') throw new InvalidOptionError('validate', 'expected true or false');
  const name = options.name ?? 'shards';
  if (typeof name !== 'string' || name === '') throw new InvalidOptionError('name', 'expected a non-empty string');
  return { dir, schema, format, split, maxRows, maxBytes, rowGroupRows, codec, validate, name };
}

function makeEncoder<T>(o: CheckedOptions<T>): ShardEncoder {
  const base = { fields: o.schema.fields, schemaName: o.schema.name, schemaVersion: o.schema.version };
  switch (o.format) {
    case 'parquet': return parquetEncoder({ ...base, codec: o.codec });
    case 'arrow': return arrowEncoder(base);
    case 'jsonl': return jsonlEncoder(base);
  }
}
