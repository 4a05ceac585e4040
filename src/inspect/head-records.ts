import { InvalidOptionError } from '../errors.ts';
import { detectSchema, readRecords, type RecordAt, type SchemaId } from './read-records.ts';

export interface HeadOptions {
  /** Records to return (per side when sorting); default 3. */
  n?: number;
  /**
   * Field to rank by; `reward` means `reward_total` (else `reward_model`). The result then
   * holds the `n` highest and `n` lowest records instead of the first `n`.
   */
  sort?: string;
  schema?: string;
  signal?: AbortSignal;
}

export interface HeadResult {
  readonly schema: SchemaId | null;
  /** The first `n` records (no sort). */
  readonly records?: readonly RecordAt[];
  /** Ranked by `sort_key`, highest first / lowest first. */
  readonly highest?: readonly RecordAt[];
  readonly lowest?: readonly RecordAt[];
  readonly sort_key?: string;
}

function sortValue(record: unknown, key: string): number | undefined {
  if (typeof record !== 'object' || record === null) return undefined;
  const r = record as Record<string, unknown>;
  const keys = key === 'reward' ? ['reward_total', 'reward_model', 'reward'] : [key];
  for (const k of keys) if (typeof r[k] === 'number' && Number.isFinite(r[k])) return r[k] as number;
  return undefined;
}

/** Keeps the `n` best items under `better` in order, in O(n) memory. */
function keepTop(list: { v: number; at: RecordAt }[], item: { v: number; at: RecordAt }, n: number, better: (a: number, b: number) => boolean): void {
  if (list.length === n && !better(item.v, list[n - 1]!.v)) return;
  let i = list.length;
  while (i > 0 && better(item.v, list[i - 1]!.v)) i--;
  list.splice(i, 0, item);
  if (list.length > n) list.pop();
}

/** The first `n` records, or with `sort` the `n` highest and `n` lowest by that field (one pass). */
export async function headRecords(target: string, options: HeadOptions = {}): Promise<HeadResult> {
  const n = options.n ?? 3;
  if (!Number.isInteger(n) || n < 1) throw new InvalidOptionError('-n', `expected a positive integer, got ${JSON.stringify(options.n)}`);
  if (options.sort !== undefined && (typeof options.sort !== 'string' || options.sort === '')) throw new InvalidOptionError('--sort', 'expected a field name such as reward');
  const schema = await detectSchema(target, options.schema);
  if (options.sort === undefined) {
    const records: RecordAt[] = [];
    for await (const at of readRecords(target, { signal: options.signal })) {
      records.push(at);
      if (records.length >= n) break;
    }
    return { schema, records };
  }
  const key = options.sort;
  const highest: { v: number; at: RecordAt }[] = [];
  const lowest: { v: number; at: RecordAt }[] = [];
  let seen = 0;
  for await (const at of readRecords(target, { signal: options.signal })) {
    const v = sortValue(at.record, key);
    if (v === undefined) continue;
    seen++;
    keepTop(highest, { v, at }, n, (a, b) => a > b);
    keepTop(lowest, { v, at }, n, (a, b) => a < b);
  }
  if (seen === 0) {
    const what = key === 'reward' ? 'reward_total or reward_model' : `"${key}"`;
    throw new InvalidOptionError('--sort', `no record has a numeric ${what} field`, { file: target, fix: key === 'reward' ? 'sort by reward works on rollout records' : 'give a numeric field of these records' });
  }
  return { schema, highest: highest.map((x) => x.at), lowest: lowest.map((x) => x.at), sort_key: key };
}
