/**
 * VQA-v2 bench: the byte-level record splitter against `JSON.parse` of the whole file, and
 * the whole VQA-v2 -> conversation Parquet path.
 *
 * Data: a generated VQA-v2-shaped train2014 split under `bench/.data/` (gitignored, reused):
 * 443,757 annotations with 10 answers each on one line (~340 MB, like the official file; the
 * `quick` mode writes a tenth), plus the matching questions file. Every case runs in its own
 * child process (`node --import tsx bench/vqav2.ts <case> <dir>`) so each peak RSS
 * (`process.resourceUsage().maxRSS`) is that case's alone.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Rng } from '../src/stream/random.ts';
import type { BenchFn, BenchRow } from './types.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const FULL = 443_757;
const Q_FILE = 'v2_OpenEnded_mscoco_train2014_questions.json';
const A_FILE = 'v2_mscoco_train2014_annotations.json';
/** Bump when the generator changes, so old files under bench/.data are made again. */
const DATA_VERSION = 'vqav2-bench-2';

// ------------------------------------------------------------------ data generation

const OBJECTS = ['dog', 'cat', 'man', 'woman', 'bus', 'train', 'bike', 'table', 'pizza', 'clock', 'horse', 'kite', 'plate', 'umbrella', 'car', 'giraffe'];
const COLORS = ['white', 'black', 'red', 'blue', 'green', 'yellow', 'brown', 'gray', 'orange', 'pink'];
const WORDS = ['tennis', 'kitchen', 'bathroom', 'skateboarding', 'frisbee', 'surfing', 'pizza', 'nothing', 'eating', 'sunny', 'wood', 'grass', 'left', 'right', 'above toilet', 'man in middle'];

// non-ASCII text is rare in the real files (a few answers like "café"); keep it rare here too
const RARE = ['café', 'jalapeño', 'über', '日本'];

interface GenAnswer { answer: string; answer_confidence: string; answer_id: number }

/** Deterministic VQA-v2-shaped files (one line each, Python `json.dump` separators); reused when already made. */
export async function generateVqav2BenchData(dir: string, total: number): Promise<void> {
  const done = path.join(dir, '.complete');
  const stamp = `${DATA_VERSION} ${total}\n`;
  if ((await readFile(done, 'utf8').catch(() => '')) === stamp) return;
  await mkdir(dir, { recursive: true });
  const rng = new Rng(20170426);
  const info = '{"description": "This is v2.0 of the VQA dataset.", "url": "http://visualqa.org", "version": "2.0", "year": 2017, "contributor": "VQA Team", "date_created": "2017-04-26 17:07:13"}';
  const license = '{"url": "http://creativecommons.org/licenses/by/4.0/", "name": "Creative Commons Attribution 4.0 International License"}';
  const q = createWriteStream(path.join(dir, Q_FILE + '.tmp'));
  const a = createWriteStream(path.join(dir, A_FILE + '.tmp'));
  const put = async (s: NodeJS.WritableStream, text: string) => {
    if (!s.write(text)) await new Promise((r) => s.once('drain', r));
  };
  await put(q, `{"info": ${info}, "task_type": "Open-Ended", "data_type": "mscoco", "license": ${license}, "data_subtype": "train2014", "questions": [`);
  // the official annotations file puts data_type after the array: exercise that too
  await put(a, `{"info": ${info}, "license": ${license}, "data_subtype": "train2014", "annotations": [`);
  let made = 0;
  let imageId = 9;
  let qBatch: string[] = [];
  let aBatch: string[] = [];
  while (made < total) {
    imageId += rng.range(1, 12);
    const n = Math.min(rng.range(3, 8), total - made);
    for (let k = 0; k < n; k++) {
      const qid = imageId * 1000 + k;
      const obj = rng.pick(OBJECTS);
      const r = rng.next();
      let question: string, type: string, qtype: string, pool: readonly string[];
      if (r < 0.376) { question = `Is there a ${obj} in the picture?`; type = 'yes/no'; qtype = 'is there a'; pool = ['yes', 'no']; }
      else if (r < 0.508) { question = `How many ${obj}s are there?`; type = 'number'; qtype = 'how many'; pool = ['0', '1', '2', '3', '4', '5', '12']; }
      else if (rng.next() < 0.5) { question = `What color is the ${obj}?`; type = 'other'; qtype = 'what color is the'; pool = COLORS; }
      else if (rng.next() < 0.0002) { question = `What is written on the ${obj}'s sign?`; type = 'other'; qtype = 'what is'; pool = RARE; }
      else { question = `What is the ${obj} doing near the "${rng.pick(OBJECTS)}"?`; type = 'other'; qtype = 'what is the'; pool = WORDS; }
      const answers: GenAnswer[] = [];
      for (let i = 1; i <= 10; i++) answers.push({ answer: rng.pick(pool), answer_confidence: rng.next() < 0.8 ? 'yes' : rng.next() < 0.5 ? 'maybe' : 'no', answer_id: i });
      const mca = answers[0]!.answer;
      qBatch.push(`{"image_id": ${imageId}, "question": ${JSON.stringify(question)}, "question_id": ${qid}}`);
      const ans = answers.map((x) => `{"answer": ${JSON.stringify(x.answer)}, "answer_confidence": "${x.answer_confidence}", "answer_id": ${x.answer_id}}`).join(', ');
      aBatch.push(`{"question_type": "${qtype}", "multiple_choice_answer": ${JSON.stringify(mca)}, "answers": [${ans}], "image_id": ${imageId}, "answer_type": "${type}", "question_id": ${qid}}`);
      made++;
    }
    if (aBatch.length >= 4000 || made === total) {
      const sep = made - aBatch.length === 0 ? '' : ', ';
      await put(q, sep + qBatch.join(', '));
      await put(a, sep + aBatch.join(', '));
      qBatch = [];
      aBatch = [];
    }
  }
  await put(q, ']}');
  await put(a, '], "data_type": "mscoco"}');
  await Promise.all([q, a].map((s) => new Promise<void>((res, rej) => s.end((e?: Error | null) => (e ? rej(e) : res())))));
  await rename(path.join(dir, Q_FILE + '.tmp'), path.join(dir, Q_FILE));
  await rename(path.join(dir, A_FILE + '.tmp'), path.join(dir, A_FILE));
  await writeFile(done, stamp);
}


// ------------------------------------------------------------------ cases (child side)

/** `seconds` is wall time; `cpuSeconds` user+system time, steadier on a shared, busy machine. */
interface CaseResult { seconds: number; cpuSeconds: number; records: number; maxRssMB: number; note?: string }

async function runCaseHere(name: string, dir: string): Promise<CaseResult> {
  const file = path.join(dir, A_FILE);
  // modules load (and tsx compiles them) before the clocks start
  const { jsonArrayRecords } = await import('../sources/json-records.ts');
  const convertModules = name === 'convert'
    ? await Promise.all([
      import('../src/stream/flow.ts'), import('../sources/vqav2.ts'), import('../transforms/vqav2-multiround.ts'),
      import('../sinks/shard-sink.ts'), import('../schemas/conversation.ts'),
    ])
    : undefined;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let records = 0;
  let note: string | undefined;
  if (name === 'json-parse') {
    // the baseline: what a plain reader does (read the file, decode, parse it whole)
    const text = await readFile(file, 'utf8');
    const whole = JSON.parse(text) as { annotations: unknown[] };
    records = whole.annotations.length;
  } else if (name === 'json-records') {
    for await (const r of jsonArrayRecords(file, { key: 'annotations' })) {
      if (r.value !== null) records++;
    }
  } else if (name === 'convert' && convertModules) {
    const [{ runFlow }, { vqav2Source }, { vqav2Multiround }, { shardSink }, { conversationSchema }] = convertModules;
    const out = await mkdtemp(path.join(os.tmpdir(), 'ff-bench-vqav2-'));
    try {
      const source = vqav2Source({ dir });
      const res = await runFlow(
        { source, stages: [vqav2Multiround()], sink: shardSink({ dir: out, schema: conversationSchema, format: 'parquet' }) },
        { seed: 1, deadLetterPath: path.join(out, 'rejected.jsonl') },
      );
      records = source.stats().annotations;
      const rows = res.stages.at(-1)!.out;
      note = `${rows} conversations, ${res.rejected} rejected`;
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  } else throw new Error(`unknown case ${name}`);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, records, maxRssMB: process.resourceUsage().maxRSS / 1024, note };
}

async function runCase(name: string, dir: string): Promise<CaseResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), name, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const code = await new Promise<number | null>((res) => child.on('close', res));
  if (code !== 0) throw new Error(`bench case ${name} exited with ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as CaseResult;
}

// ------------------------------------------------------------------ bench

export const bench: BenchFn = async ({ quick }) => {
  const total = quick ? Math.round(FULL / 10) : FULL;
  const dir = path.join(here, '.data', quick ? 'vqav2-quick' : 'vqav2-full');
  await generateVqav2BenchData(dir, total);
  const bytes = (await stat(path.join(dir, A_FILE))).size;
  const mb = bytes / 1e6;
  const parse = await runCase('json-parse', dir);
  const split = await runCase('json-records', dir);
  const convert = await runCase('convert', dir);
  const rows: BenchRow[] = [];
  const size = `${total} annotations, ${mb.toFixed(0)} MB one line`;
  // MB/s over CPU time (user+system): the machines are shared, and wall time mostly measures the neighbours
  const time = (r: CaseResult) => `${r.cpuSeconds.toFixed(2)} s CPU, ${r.seconds.toFixed(2)} s wall`;
  rows.push({ suite: 'vqav2', case: `JSON.parse whole file (${size})`, value: mb / parse.cpuSeconds, unit: 'MB/s (CPU)', note: `${time(parse)}, peak RSS ${parse.maxRssMB.toFixed(0)} MB` });
  const goal = split.cpuSeconds <= parse.cpuSeconds && split.maxRssMB < 200;
  rows.push({
    suite: 'vqav2', case: 'jsonArrayRecords (byte splitter + JSON.parse per chunk)', value: mb / split.cpuSeconds, unit: 'MB/s (CPU)',
    ratio: parse.cpuSeconds / split.cpuSeconds, baseline: 'JSON.parse whole file',
    note: `${time(split)}, peak RSS ${split.maxRssMB.toFixed(0)} MB (${(split.maxRssMB / parse.maxRssMB).toFixed(2)}x); goal >= JSON.parse speed and < 200 MB RSS: ${goal ? 'met' : 'NOT met'}`,
  });
  rows.push({
    suite: 'vqav2', case: 'VQA-v2 -> conversations -> Parquet (all answer types)', value: mb / convert.cpuSeconds, unit: 'MB/s (CPU)',
    ratio: parse.cpuSeconds / convert.cpuSeconds, baseline: 'JSON.parse whole file',
    note: `${time(convert)}, ${(convert.records / convert.cpuSeconds / 1000).toFixed(0)}k annotations/CPU-s, peak RSS ${convert.maxRssMB.toFixed(0)} MB; ${convert.note ?? ''}`,
  });
  return rows;
};

// child mode: `node --import tsx bench/vqav2.ts <case> <dir>` prints one JSON line
if (process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) {
  const [name, dir] = process.argv.slice(2);
  const result = await runCaseHere(name!, dir!);
  process.stdout.write(JSON.stringify(result) + '\n');
}
