/**
 * The `.safetensors` format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * header length, a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__}`
 * padded with spaces to 8 bytes, then the raw little-endian data, tensors packed back to back in
 * header order. What we write loads in Python with `safetensors.numpy.load_file`.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { CheckpointError } from '../errors.ts';

export type SafeDtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'U8';

export interface SafeTensor {
  /** Dtype on disk. F16/BF16 are widened to F32 when read; only F32, I32, I64, U8 are written. */
  dtype: SafeDtype;
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array;
}

export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<SafeDtype, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8, U8: 1 };

function writable(t: SafeTensor, name: string): void {
  const ok = (t.dtype === 'F32' && t.data instanceof Float32Array) || (t.dtype === 'I32' && t.data instanceof Int32Array)
    || (t.dtype === 'I64' && t.data instanceof BigInt64Array) || (t.dtype === 'U8' && t.data instanceof Uint8Array);
  if (!ok) throw new CheckpointError(`tensor "${name}": cannot write dtype ${t.dtype} from ${t.data.constructor.name}`, { fix: 'write F32, I32, I64 or U8 data' });
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (n !== t.data.length) throw new CheckpointError(`tensor "${name}": shape [${t.shape}] holds ${n} values but data has ${t.data.length}`);
}

/** Serialises tensors (in the order given) and string metadata into one buffer. */
export function encodeSafetensors(tensors: ReadonlyMap<string, SafeTensor>, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    writable(t, name);
    const bytes = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = Buffer.alloc(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  let at = 8 + json.length;
  for (const t of tensors.values()) {
    // typed arrays are little-endian on every platform Node runs on (x86, arm)
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, at);
    at += t.data.byteLength;
  }
  return out;
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Parses a safetensors buffer; `file` names it in errors. */
export function decodeSafetensors(buf: Buffer, file = '<buffer>'): SafetensorsFile {
  if (buf.length < 8) throw new CheckpointError(`safetensors file is ${buf.length} bytes, too short for a header`, { file, byteOffset: 0, fix: 'the file is truncated; save it again' });
  const n = Number(buf.readBigUInt64LE(0));
  if (n > buf.length - 8) throw new CheckpointError(`header length ${n} runs past the end of the file (${buf.length} bytes)`, { file, byteOffset: 0, fix: 'the file is truncated or not safetensors' });
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new CheckpointError(`header is not JSON: ${(cause as Error).message}`, { file, byteOffset: 8, cause, fix: 'the file is not safetensors' });
  }
  const dataStart = 8 + n;
  const dataLen = buf.length - dataStart;
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  const tensors = new Map<string, SafeTensor>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const info = raw as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    const dtype = info.dtype as SafeDtype;
    if (!(dtype in BYTES)) throw new CheckpointError(`tensor "${name}" has unsupported dtype ${String(info.dtype)}`, { file, fix: 'convert the weights to F32, F16 or BF16' });
    const shape = info.shape ?? [];
    const [begin, end] = info.data_offsets ?? [NaN, NaN];
    const count = shape.reduce((a, b) => a * b, 1);
    if (!(begin >= 0 && end <= dataLen && end - begin === count * BYTES[dtype])) {
      throw new CheckpointError(`tensor "${name}" has data_offsets [${begin}, ${end}] that do not fit shape [${shape}] ${dtype} in ${dataLen} data bytes`, { file, byteOffset: dataStart + (begin || 0), fix: 'the file is truncated or corrupt' });
    }
    // copy out so the result does not pin (or alias) the file buffer, and alignment is right
    const bytes = Uint8Array.prototype.slice.call(buf, dataStart + begin, dataStart + end);
    let data: SafeTensor['data'];
    if (dtype === 'F32') data = new Float32Array(bytes.buffer, 0, count);
    else if (dtype === 'I32') data = new Int32Array(bytes.buffer, 0, count);
    else if (dtype === 'I64') data = new BigInt64Array(bytes.buffer, 0, count);
    else if (dtype === 'U8') data = bytes;
    else {
      const u16 = new Uint16Array(bytes.buffer, 0, count);
      const f = new Float32Array(count);
      if (dtype === 'BF16') {
        const u32 = new Uint32Array(f.buffer);
        for (let i = 0; i < count; i++) u32[i] = u16[i]! << 16;
      } else for (let i = 0; i < count; i++) f[i] = f16ToF32(u16[i]!);
      data = f;
    }
    tensors.set(name, { dtype: dtype === 'F16' || dtype === 'BF16' ? 'F32' : dtype, shape, data });
  }
  return { tensors, metadata };
}

/** Writes atomically: to a temporary name beside `file`, flushed, then renamed over it. */
export async function writeSafetensors(file: string, tensors: ReadonlyMap<string, SafeTensor>, metadata: Record<string, string> = {}): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(encodeSafetensors(tensors, metadata));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw cause;
  }
}

export async function readSafetensors(file: string): Promise<SafetensorsFile> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (cause) {
    throw new CheckpointError(`cannot read weights: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { file, cause, fix: 'check the checkpoint path' });
  }
  return decodeSafetensors(buf, file);
}
