import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeSafetensors, type SafeTensor } from '../../src/model/safetensors.ts';
import { tempDir } from '../helpers/temp-dir.ts';

function sample(): Map<string, SafeTensor> {
  // awkward values: -0, NaN payload, subnormal, infinities
  const f = new Float32Array([1.5, -0, NaN, 1e-45, Infinity, -Infinity, 3.4e38, -2.5]);
  new Uint32Array(f.buffer)[2] = 0x7fc12345;
  return new Map<string, SafeTensor>([
    ['lm.embed.weight', { dtype: 'F32', shape: [2, 4], data: f }],
    ['scalar', { dtype: 'F32', shape: [], data: new Float32Array([7]) }],
    ['steps', { dtype: 'I32', shape: [3], data: new Int32Array([1, -2, 2147483647]) }],
  ]);
}

const bytes = (t: SafeTensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

test('round trip through a file is bit-identical, with metadata', async (t) => {
  const dir = await tempDir(t, 'ff-st-');
  const file = path.join(dir, 'w.safetensors');
  await writeSafetensors(file, sample(), { format: 'pt' });
  const back = await readSafetensors(file);
  t.deepEqual(back.metadata, { format: 'pt' });
  for (const [name, want] of sample()) {
    const got = back.tensors.get(name)!;
    t.is(got.dtype, want.dtype);
    t.deepEqual(got.shape, want.shape);
    t.true(bytes(got).equals(bytes(want)), name);
  }
  // and writing what was read gives the same file
  t.true(encodeSafetensors(back.tensors, back.metadata).equals(await readFile(file)));
});

test('layout follows the spec: u64 LE header length, 8-byte aligned JSON header, contiguous offsets', (t) => {
  const buf = encodeSafetensors(sample());
  const n = Number(buf.readBigUInt64LE(0));
  t.is(n % 8, 0);
  const header = JSON.parse(buf.subarray(8, 8 + n).toString());
  t.deepEqual(header['lm.embed.weight'], { dtype: 'F32', shape: [2, 4], data_offsets: [0, 32] });
  t.deepEqual(header.scalar.data_offsets, [32, 36]);
  t.deepEqual(header.steps.data_offsets, [36, 48]);
  t.is(buf.length, 8 + n + 48);
});

test('F16 and BF16 are widened to F32 on read', (t) => {
  const header = JSON.stringify({ h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] }, b: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] } }).padEnd(88, ' ');
  const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(header.length));
  const data = Buffer.from([0x00, 0x3c, 0x00, 0xc0, 0x80, 0x3f]); // 1.0, -2.0 (f16); 1.0 (bf16)
  const out = decodeSafetensors(Buffer.concat([len, Buffer.from(header), data]));
  t.deepEqual([...(out.tensors.get('h')!.data as Float32Array)], [1, -2]);
  t.deepEqual([...(out.tensors.get('b')!.data as Float32Array)], [1]);
});

test('truncated or foreign files give FF_ERR_CHECKPOINT naming the file and byte', async (t) => {
  const dir = await tempDir(t, 'ff-st-');
  const file = path.join(dir, 'cut.safetensors');
  const full = encodeSafetensors(sample());
  await writeFile(file, full.subarray(0, full.length - 5));
  const e = await t.throwsAsync(readSafetensors(file));
  t.is((e as { code?: string }).code, 'FF_ERR_CHECKPOINT');
  t.true(e!.message.includes(`${file} (byte`), e!.message);
  await writeFile(file, Buffer.from('not a safetensors file at all'));
  const e2 = await t.throwsAsync(readSafetensors(file));
  t.is((e2 as { code?: string }).code, 'FF_ERR_CHECKPOINT');
  t.true(e2!.message.includes(file));
  const e3 = await t.throwsAsync(readSafetensors(path.join(dir, 'missing.safetensors')));
  t.regex(e3!.message, /ENOENT/);
});

test('readable by an independent reader (Python + numpy, the safetensors layout by hand)', async (t) => {
  let python = true;
  try { execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }); } catch { python = false; }
  if (!python) { t.pass('python3 with numpy not available; skipped'); return; }
  const dir = await tempDir(t, 'ff-st-');
  const file = path.join(dir, 'w.safetensors');
  const tensors = new Map<string, SafeTensor>([['a', { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6.5]) }], ['b', { dtype: 'I32', shape: [2], data: new Int32Array([-1, 9]) }]]);
  await writeSafetensors(file, tensors);
  const script = `
import json, struct, sys, numpy as np
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8+n]); data = raw[8+n:]
kinds = {'F32': '<f4', 'I32': '<i4'}
out = {k: np.frombuffer(data[v['data_offsets'][0]:v['data_offsets'][1]], dtype=kinds[v['dtype']]).reshape(v['shape']).tolist() for k, v in h.items() if k != '__metadata__'}
print(json.dumps(out))`;
  const out = JSON.parse(execFileSync('python3', ['-c', script, file]).toString());
  t.deepEqual(out, { a: [[1, 2, 3], [4, 5, 6.5]], b: [-1, 9] });
});
