/**
 * Masked whitening, as LLaVA-RLHF's `whiten` (and TRL's `masked_whiten`):
 *   out = (x - mean) / (std + eps)           [+ mean when shiftMean is false]
 * Statistics come from valid entries only (mask 1); masked entries come out 0.
 * LLaVA-RLHF uses the population std (`unbiased=False`) and includes padding in the
 * statistics because its tensors are dense; ours are ragged or masked, so padding
 * never enters. TRL uses the Bessel-corrected variance and rsqrt(var + eps):
 * `unbiased: true` gives the former; the eps placement differs by < 1e-8 relative.
 */
import { InvalidOptionError } from '../errors.ts';

export interface WhitenOptions {
  /** Keep the result centred at 0 (true, default) or add the mean back (false: rewards). */
  shiftMean?: boolean;
  eps?: number;
  /** Bessel-corrected variance (n - 1); default false (population), as LLaVA-RLHF. */
  unbiased?: boolean;
}

export interface MaskedStats {
  mean: number;
  variance: number;
  count: number;
}

type Rows = readonly (ArrayLike<number>)[];

/** Mean and variance over entries whose mask is non-zero (all when no mask). */
export function maskedStats(rows: Rows, mask?: Rows, unbiased = false): MaskedStats {
  if (mask && mask.length !== rows.length) {
    throw new RangeError(`maskedStats: ${rows.length} rows but ${mask.length} mask rows`);
  }
  let count = 0;
  let sum = 0;
  rows.forEach((row, i) => {
    const m = mask?.[i];
    if (m && m.length !== row.length) throw new RangeError(`maskedStats: row ${i} has ${row.length} values but ${m.length} mask entries`);
    for (let t = 0; t < row.length; t++) {
      if (m && !m[t]) continue;
      sum += row[t]!;
      count++;
    }
  });
  const mean = count > 0 ? sum / count : 0;
  let sq = 0;
  rows.forEach((row, i) => {
    const m = mask?.[i];
    for (let t = 0; t < row.length; t++) {
      if (m && !m[t]) continue;
      const d = row[t]! - mean;
      sq += d * d;
    }
  });
  const denom = unbiased ? count - 1 : count;
  return { mean, variance: denom > 0 ? sq / denom : 0, count };
}

function check(options: WhitenOptions): Required<WhitenOptions> {
  const eps = options.eps ?? 1e-8;
  if (!(eps >= 0) || !Number.isFinite(eps)) throw new InvalidOptionError('whiten.eps', `must be a finite number >= 0, got ${eps}`);
  return { shiftMean: options.shiftMean ?? true, eps, unbiased: options.unbiased ?? false };
}

/** Whitens a batch of (possibly ragged) rows with shared statistics. */
export function whitenBatch(rows: Rows, mask?: Rows, options: WhitenOptions = {}): number[][] {
  const o = check(options);
  const { mean, variance } = maskedStats(rows, mask, o.unbiased);
  const scale = 1 / (Math.sqrt(variance) + o.eps);
  return rows.map((row, i) => {
    const m = mask?.[i];
    const out = new Array<number>(row.length);
    for (let t = 0; t < row.length; t++) {
      if (m && !m[t]) out[t] = 0;
      else out[t] = (row[t]! - mean) * scale + (o.shiftMean ? 0 : mean);
    }
    return out;
  });
}

/** Whitens one flat array. */
export function whiten(values: ArrayLike<number>, mask?: ArrayLike<number>, options: WhitenOptions = {}): number[] {
  return whitenBatch([values], mask ? [mask] : undefined, options)[0]!;
}
