import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { BadInputError, InvalidOptionError, SchemaMismatchError } from '../errors.ts';
import { readManifest, shardFileName, writeManifestAtomic, type Manifest } from '../../schemas/manifest.ts';

const PART_MANIFEST = /^manifest\.part-(\d{5})-of-(\d{5})\.json$/;

export interface MergeResult {
  /** Absolute output folder. */
  readonly out: string;
  readonly manifest: Manifest;
  readonly partitions: number;
}

interface Part {
  readonly dir: string;
  readonly file: string;
  readonly manifest: Manifest;
  readonly index: number;
  readonly count: number;
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

function withoutPartition(params: Record<string, unknown>): Record<string, unknown> {
  const { partition: _ignored, ...rest } = params;
  return rest;
}

async function readParts(dir: string): Promise<Part[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new BadInputError('cannot read the partition folder', { file: dir, cause: e, fix: 'pass folders written by `pipeline run --partition i/n`' });
  }
  const parts: Part[] = [];
  for (const name of names.sort()) {
    const m = PART_MANIFEST.exec(name);
    if (!m) continue;
    const manifest = await readManifest(dir, name);
    const file = path.join(dir, name);
    const index = Number(m[1]);
    const count = Number(m[2]);
    if (!manifest.partition || manifest.partition.index !== index || manifest.partition.count !== count) {
      throw new BadInputError(`the manifest's "partition" ${JSON.stringify(manifest.partition)} does not match its file name (${index}/${count})`, { file, fix: 'rerun that partition' });
    }
    parts.push({ dir, file, manifest, index, count });
  }
  if (parts.length === 0) {
    const whole = names.includes('manifest.json');
    throw new BadInputError('no partition manifests (manifest.part-<i>-of-<n>.json) in this folder', {
      file: dir,
      fix: whole ? 'this folder holds a whole (unpartitioned) run; it needs no merge' : 'pass the --out folders of `pipeline run --partition i/n` runs (each finished)',
    });
  }
  return parts;
}

const AGREE: readonly (keyof Manifest)[] = ['format', 'schema', 'schema_version', 'split', 'seed'];

function checkAgreement(parts: readonly Part[]): void {
  const ref = parts[0]!;
  for (const p of parts.slice(1)) {
    for (const key of AGREE) {
      if (ref.manifest[key] !== p.manifest[key]) {
        const Err = key === 'schema' || key === 'schema_version' || key === 'format' ? SchemaMismatchError : BadInputError;
        throw new Err(`partition manifests disagree on "${key}": ${ref.file} has ${JSON.stringify(ref.manifest[key])}, this one has ${JSON.stringify(p.manifest[key])}`, {
          file: p.file,
          fix: 'merge only partitions of one run (same pipeline, params and seed)',
        });
      }
    }
    if (ref.count !== p.count) {
      throw new BadInputError(`partition manifests disagree on the partition count: ${ref.file} is one of ${ref.count}, this one of ${p.count}`, {
        file: p.file,
        fix: 'merge only partitions of one run (same --partition i/n count)',
      });
    }
    if (canonical(withoutPartition(ref.manifest.params)) !== canonical(withoutPartition(p.manifest.params))) {
      throw new BadInputError(`partition manifests disagree on "params": ${ref.file} has ${canonical(ref.manifest.params)}, this one has ${canonical(p.manifest.params)}`, {
        file: p.file,
        fix: 'merge only partitions of one run (same --set values)',
      });
    }
  }
  const n = ref.count;
  const seen = new Map<number, Part[]>();
  for (const p of parts) seen.set(p.index, [...(seen.get(p.index) ?? []), p]);
  const dup = [...seen.entries()].filter(([, ps]) => ps.length > 1);
  if (dup.length) {
    const [i, ps] = dup[0]!;
    throw new BadInputError(`partition ${i}/${n} appears ${ps.length} times: ${ps.map((p) => p.file).join(', ')}`, {
      file: ps[1]!.file,
      fix: 'pass each partition folder once',
    });
  }
  const missing: number[] = [];
  for (let i = 0; i < n; i++) if (!seen.has(i)) missing.push(i);
  if (missing.length) {
    const names = missing.map((i) => `manifest.part-${String(i).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.json`);
    throw new BadInputError(`missing partition${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${n}`).join(', ')} (no ${names.join(', ')} in the folders given)`, {
      file: parts.map((p) => p.dir).filter((d, i, a) => a.indexOf(d) === i).join(', '),
      fix: `run the missing partition${missing.length > 1 ? 's' : ''} (pipeline run ... --partition ${missing[0]}/${n}) and pass ${missing.length > 1 ? 'their folders' : 'its folder'} too`,
    });
  }
}

/** Hard-links `src` to `dest` (temporary name, then rename); copies when linking is not possible. */
async function place(src: string, dest: string): Promise<void> {
  if (path.resolve(src) === path.resolve(dest)) return;
  const tmp = `${dest}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await link(src, tmp);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EMLINK') throw e;
    await copyFile(src, tmp);
  }
  await rename(tmp, dest);
}

/**
 * Combines the partition runs in `dirs` (each holding `manifest.part-<i>-of-<n>.json` files)
 * into one shard set in `outDir`: checks the partitions belong to one run and are all there,
 * links the shards under their final names `<split>-<j>-of-<N>.<ext>` (partition order, then
 * shard order), concatenates the dead letters and writes `manifest.json` last.
 */
export async function mergeManifests(dirs: readonly string[], outDir: string, options: { cwd?: string } = {}): Promise<MergeResult> {
  if (!Array.isArray(dirs) || dirs.length === 0) {
    throw new InvalidOptionError('dirs', 'expected at least one partition folder', { fix: 'pipeline merge OUT DIR...' });
  }
  if (typeof outDir !== 'string' || outDir === '') throw new InvalidOptionError('out', `expected a folder path, got ${JSON.stringify(outDir)}`);
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const folders = [...new Set(dirs.map((d) => path.resolve(cwd, d)))];
  const out = path.resolve(cwd, outDir);

  const parts: Part[] = [];
  for (const dir of folders) parts.push(...(await readParts(dir)));
  checkAgreement(parts);
  parts.sort((a, b) => a.index - b.index);

  // every listed shard must be there, whole, before anything is written
  const listed = parts.flatMap((p) => p.manifest.shards.map((s) => ({ part: p, shard: s, src: path.join(p.dir, s.path) })));
  for (const { src, shard } of listed) {
    let size: number;
    try {
      size = (await stat(src)).size;
    } catch (e) {
      throw new BadInputError('a shard listed in a partition manifest is missing', { file: src, cause: e, fix: 'rerun that partition' });
    }
    if (size !== shard.bytes) {
      throw new BadInputError(`shard is ${size} bytes but its manifest says ${shard.bytes}`, { file: src, fix: 'rerun that partition (the shard was changed or truncated)' });
    }
  }

  await mkdir(out, { recursive: true });
  const ref = parts[0]!.manifest;
  const total = listed.length;
  const shards: Manifest['shards'] = [];
  for (let j = 0; j < total; j++) {
    const { src, shard } = listed[j]!;
    const ext = path.extname(shard.path).slice(1) || ref.format;
    const name = shardFileName(ref.split, j, total, ext);
    await place(src, path.join(out, name));
    shards.push({ path: name, rows: shard.rows, bytes: shard.bytes, sha256: shard.sha256 });
  }

  const rejectedPath = 'rejected.jsonl';
  const rejectedCount = parts.reduce((a, p) => a + p.manifest.rejected.count, 0);
  const letters = parts.map((p) => path.join(p.dir, p.manifest.rejected.path));
  const tmp = path.join(out, `${rejectedPath}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const sink = createWriteStream(tmp);
    for (const file of letters) {
      try {
        await stat(file);
      } catch {
        continue; // a partition with nothing rejected may have no file
      }
      await pipeline(createReadStream(file), sink, { end: false });
    }
    await new Promise<void>((resolve, reject) => sink.end((e?: Error | null) => (e ? reject(e) : resolve())));
    await rename(tmp, path.join(out, rejectedPath));
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }

  const inputs = new Map<string, Manifest['inputs'][number]>();
  for (const p of parts) for (const i of p.manifest.inputs) inputs.set(`${i.path}\0${i.sha256}`, i);
  const manifest: Manifest = {
    format: ref.format,
    schema: ref.schema,
    schema_version: ref.schema_version,
    split: ref.split,
    total_rows: shards.reduce((a, s) => a + s.rows, 0),
    shards,
    rejected: { count: rejectedCount, path: rejectedPath },
    params: withoutPartition(ref.params),
    seed: ref.seed,
    inputs: [...inputs.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
  };
  await writeManifestAtomic(out, manifest);
  return { out, manifest, partitions: parts.length };
}
