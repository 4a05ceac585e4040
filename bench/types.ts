/** One line of the `npm run bench` table. */
export interface BenchRow {
  /** Group, e.g. "backbone", "vqav2", "parquet", "model". */
  suite: string;
  /** What was measured, e.g. "5 identity stages". */
  case: string;
  /** Main figure and its unit, e.g. 1.2e6 "records/s". */
  value: number;
  unit: string;
  /** Ratio against the baseline measured in the same run (e.g. 0.95 = 95% of baseline speed). */
  ratio?: number;
  /** What the ratio is against. */
  baseline?: string;
  /** Extra facts: peak RSS, goal met or not. */
  note?: string;
}

/** Each bench file exports `bench` returning its rows; `bench/index.ts` runs them and prints the table. */
export type BenchFn = (options: { quick: boolean }) => Promise<BenchRow[]>;
