/** Bounded-memory histograms for `pipeline inspect`: counts by value, binned on output. */
export interface HistogramBin {
  readonly label: string;
  readonly lo: number;
  /** Inclusive upper bound. */
  readonly hi: number;
  readonly count: number;
}

export interface Histogram {
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly bins: readonly HistogramBin[];
}

/** Counts non-negative integers; memory grows with distinct values only. */
export class IntCounter {
  private readonly counts = new Map<number, number>();
  private n = 0;
  private sum = 0;

  add(value: number): void {
    const v = Math.max(0, Math.floor(value));
    this.counts.set(v, (this.counts.get(v) ?? 0) + 1);
    this.n++;
    this.sum += v;
  }

  /**
   * One bin per value when the range is small (`exactUpTo` values), else power-of-two
   * bins (0, 1, 2-3, 4-7, ...), which suit lengths.
   */
  histogram(exactUpTo = 16): Histogram | null {
    if (this.n === 0) return null;
    const keys = [...this.counts.keys()];
    const min = Math.min(...keys);
    const max = Math.max(...keys);
    const bins: HistogramBin[] = [];
    if (max - min < exactUpTo) {
      for (let v = min; v <= max; v++) bins.push({ label: String(v), lo: v, hi: v, count: this.counts.get(v) ?? 0 });
    } else {
      const edges: [number, number][] = [];
      for (let lo = 0; lo <= max; lo = lo === 0 ? 1 : lo * 2) edges.push([lo, lo === 0 ? 0 : lo * 2 - 1]);
      const first = edges.findIndex(([, hi]) => hi >= min);
      for (const [lo, hi] of edges.slice(first)) {
        let count = 0;
        for (const [v, c] of this.counts) if (v >= lo && v <= hi) count += c;
        bins.push({ label: lo === hi ? String(lo) : `${lo}-${hi}`, lo, hi, count });
      }
    }
    return { count: this.n, min, max, mean: this.sum / this.n, bins };
  }
}
