// Kernels for the wasm backend that tfjs-wasm does slowly, in AssemblyScript compiled to
// WebAssembly with 128-bit SIMD (npm run build:wasm -> kernels.wasm, committed): fused
// multi-head attention (forward and backward), a 2-D transpose, and layer normalisation.
//
// Why the attention: tfjs-wasm runs attention with head width 16 as depthwise convolutions plus transposes
// (ops.ts), at 8-16 GFLOP/s, and computes every masked score of a causal row. Here each
// (sequence, head) is done in place in the [rows, heads * headDim] layout the projections give,
// trailing masked keys are skipped, and nothing is transposed but one head's keys (or values).
//
// Memory is laid out by the caller (wasm-kernels.ts); this module has no allocator
// (--runtime stub) and only reads and writes the f32 arrays it is pointed at.
//
// Layouts (f32, row-major): q, out, dout, dq [batch, queries, heads * headDim];
// k, v, dk, dv [batch, keys, heads * headDim]; bias [queries, biasRows, keys] (biasRows 1 or
// batch; added to the scaled scores); stats [batch, heads, queries, 2] (each softmax row's max
// and inverse sum); scratch: 2 * headDim * keys4 + 2 * keys4 floats and queries * biasRows i32,
// keys4 = keys rounded up to 4. headDim must be a multiple of 4.

// keys whose bias is at or below this are masked (the model's MASKED is -1e9)
const MASK_LIMIT: f32 = -1.0e8;

/**
 * For each bias row [queries, biasRows], the first key index past its last unmasked key (every
 * key if all are masked), as i32 at `limits`: computed once per call, not once per head.
 */
function rowLimits(bias: usize, rows: i32, tk: i32, limits: usize): void {
  for (let r = 0; r < rows; r++) {
    const brow = bias + (<usize>(r * tk) << 2);
    let j = tk;
    while (j > 0 && load<f32>(brow + (<usize>(j - 1) << 2)) <= MASK_LIMIT) j--;
    store<i32>(limits + (<usize>r << 2), j == 0 ? tk : j);
  }
}

/**
 * exp of four lanes, x <= ~0 (a max was subtracted): Cephes-style range reduction, degree-6
 * polynomial; below -87 exactly 0 (as a masked score's exp is), never a denormal.
 */
@inline
function exp4(x0: v128): v128 {
  const under = f32x4.lt(x0, f32x4.splat(-87.0));
  const x = f32x4.max(x0, f32x4.splat(-87.0));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504089)));
  // r = x - n * ln2 in two parts for accuracy
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let y = f32x4.splat(1.9875691500e-4);
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(1.3981999507e-3));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(8.3334519073e-3));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(4.1665795894e-2));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(1.6666665459e-1));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(5.0000001201e-1));
  y = f32x4.add(f32x4.mul(f32x4.mul(y, r), r), f32x4.add(r, f32x4.splat(1.0)));
  // times 2^n, built from its exponent bits
  const e = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return v128.andnot(f32x4.mul(y, e), under);
}

/** Sum of the four lanes. */
@inline
function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/** Copies one head's rows [tk, hd] (row stride `stride` floats) to [hd, keys4], zero-padded. */
function transposeHead(src: usize, stride: i32, tk: i32, hd: i32, dst: usize, keys4: i32): void {
  for (let c = 0; c < hd; c++) {
    const row = dst + (<usize>(c * keys4) << 2);
    for (let j = 0; j < tk; j++) store<f32>(row + (<usize>j << 2), load<f32>(src + (<usize>(j * stride + c) << 2)));
    for (let j = tk; j < keys4; j++) store<f32>(row + (<usize>j << 2), 0);
  }
}

/**
 * s[j] = scale * (a . Bt[:, j]) + bias[j] for j < limit (4 at a time; up to 3 more written), with
 * a at `a` (hd floats) and Bt [hd, keys4] at `bt`; bias 0 when `brow` is 0.
 */
@inline
function rowScores(a: usize, bt: usize, hd: i32, keys4: i32, limit: i32, scale: f32, brow: usize, s: usize): void {
  const vscale = f32x4.splat(scale);
  for (let j = 0; j < limit; j += 4) {
    let acc = f32x4.splat(0);
    let col = bt + (<usize>j << 2);
    for (let c = 0; c < hd; c += 4) {
      const ac = a + (<usize>c << 2);
      acc = f32x4.add(acc, f32x4.mul(v128.load32_splat(ac), v128.load(col)));
      col += <usize>keys4 << 2;
      acc = f32x4.add(acc, f32x4.mul(v128.load32_splat(ac, 4), v128.load(col)));
      col += <usize>keys4 << 2;
      acc = f32x4.add(acc, f32x4.mul(v128.load32_splat(ac, 8), v128.load(col)));
      col += <usize>keys4 << 2;
      acc = f32x4.add(acc, f32x4.mul(v128.load32_splat(ac, 12), v128.load(col)));
      col += <usize>keys4 << 2;
    }
    acc = f32x4.mul(acc, vscale);
    if (brow != 0) acc = f32x4.add(acc, v128.load(brow + (<usize>j << 2)));
    v128.store(s + (<usize>j << 2), acc);
  }
}

/** First free byte after the module's own data: the caller lays its arrays out from here. */
export function heapBase(): usize {
  return __heap_base;
}

/** The same scores from the keys' own rows (`stride` floats apart), one dot product at a time. */
function rowScoresDirect(a: usize, rows: usize, stride: i32, hd: i32, limit: i32, scale: f32, brow: usize, s: usize): void {
  for (let j = 0; j < limit; j++) {
    const r = rows + (<usize>(j * stride) << 2);
    let acc = f32x4.splat(0);
    for (let c = 0; c < hd; c += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>c << 2)), v128.load(r + (<usize>c << 2))));
    const dot = hsum(acc);
    store<f32>(s + (<usize>j << 2), dot * scale + (brow != 0 ? load<f32>(brow + (<usize>j << 2)) : 0));
  }
}

/**
 * Softmax of s[0, limit) in place (lanes up to the next multiple of 4 become 0); its row maximum
 * and the inverse of its sum go to stats[0] and stats[1], from which the backward pass
 * recomputes the row as exp(score - max) * inverse sum, exactly as here.
 */
@inline
function softmaxRow(s: usize, limit: i32, stats: usize): void {
  const end4 = (limit + 3) & ~3;
  // lanes past the limit take -inf so that they vanish from the max and the sum
  for (let j = limit; j < end4; j++) store<f32>(s + (<usize>j << 2), -Infinity);
  let vmax = f32x4.splat(-Infinity);
  for (let j = 0; j < end4; j += 4) vmax = f32x4.max(vmax, v128.load(s + (<usize>j << 2)));
  const m = max(max(f32x4.extract_lane(vmax, 0), f32x4.extract_lane(vmax, 1)), max(f32x4.extract_lane(vmax, 2), f32x4.extract_lane(vmax, 3)));
  const vm = f32x4.splat(m);
  let vsum = f32x4.splat(0);
  for (let j = 0; j < end4; j += 4) {
    const e = exp4(f32x4.sub(v128.load(s + (<usize>j << 2)), vm));
    vsum = f32x4.add(vsum, e);
    v128.store(s + (<usize>j << 2), e);
  }
  const inv: f32 = <f32>1.0 / hsum(vsum);
  const vinv = f32x4.splat(inv);
  for (let j = 0; j < end4; j += 4) v128.store(s + (<usize>j << 2), f32x4.mul(v128.load(s + (<usize>j << 2)), vinv));
  store<f32>(stats, m);
  store<f32>(stats, inv, 4);
}

/** Recomputes a softmax row from its scores s[0, limit) and softmaxRow's stats, in place. */
@inline
function softmaxAgain(s: usize, limit: i32, stats: usize): void {
  const end4 = (limit + 3) & ~3;
  for (let j = limit; j < end4; j++) store<f32>(s + (<usize>j << 2), -Infinity);
  const vm = f32x4.splat(load<f32>(stats));
  const vinv = f32x4.splat(load<f32>(stats, 4));
  for (let j = 0; j < end4; j += 4) v128.store(s + (<usize>j << 2), f32x4.mul(exp4(f32x4.sub(v128.load(s + (<usize>j << 2)), vm)), vinv));
}

/** out[0, 16) = sum_{j < limit} w[j] * rows[j] (rows `stride` floats apart): four accumulators. */
@inline
function weightedRows16(w: usize, rows: usize, stride: i32, limit: i32, out: usize): void {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let r = rows;
  const step = <usize>stride << 2;
  for (let j = 0; j < limit; j++) {
    const wj = v128.load32_splat(w + (<usize>j << 2));
    a0 = f32x4.add(a0, f32x4.mul(wj, v128.load(r)));
    a1 = f32x4.add(a1, f32x4.mul(wj, v128.load(r, 16)));
    a2 = f32x4.add(a2, f32x4.mul(wj, v128.load(r, 32)));
    a3 = f32x4.add(a3, f32x4.mul(wj, v128.load(r, 48)));
    r += step;
  }
  v128.store(out, a0);
  v128.store(out, a1, 16);
  v128.store(out, a2, 32);
  v128.store(out, a3, 48);
}

/** The same for any head width that is a multiple of 4. */
function weightedRows(w: usize, rows: usize, stride: i32, hd: i32, limit: i32, out: usize): void {
  for (let c = 0; c < hd; c += 4) {
    let acc = f32x4.splat(0);
    let r = rows + (<usize>c << 2);
    for (let j = 0; j < limit; j++) {
      acc = f32x4.add(acc, f32x4.mul(v128.load32_splat(w + (<usize>j << 2)), v128.load(r)));
      r += <usize>stride << 2;
    }
    v128.store(out + (<usize>c << 2), acc);
  }
}

/** Attention of every (sequence, head); the softmax stats [batch, heads, queries, 2] are kept for backward. */
export function forward(
  q: usize, k: usize, v: usize, bias: usize, biasRows: i32, out: usize, stats: usize, scratch: usize,
  b: i32, tq: i32, tk: i32, h: i32, hd: i32, scale: f32,
): void {
  const d = h * hd;
  const keys4 = (tk + 3) & ~3;
  const kt = scratch;
  const s = scratch + (<usize>(hd * keys4) << 2);
  const limits = s + (<usize>(2 * keys4) << 2);
  rowLimits(bias, tq * biasRows, tk, limits);
  // a few queries (decoding with a cache) do not repay transposing the head's keys
  const direct = tq < 4;
  for (let bb = 0; bb < b; bb++) {
    for (let hh = 0; hh < h; hh++) {
      const head = <usize>(bb * tk * d + hh * hd) << 2;
      if (!direct) transposeHead(k + head, d, tk, hd, kt, keys4);
      for (let i = 0; i < tq; i++) {
        const br = i * biasRows + (biasRows > 1 ? bb : 0);
        const brow = bias + (<usize>(br * tk) << 2);
        const limit = load<i32>(limits + (<usize>br << 2));
        const row = <usize>((bb * tq + i) * d + hh * hd) << 2;
        if (direct) rowScoresDirect(q + row, k + head, d, hd, limit, scale, brow, s);
        else rowScores(q + row, kt, hd, keys4, limit, scale, brow, s);
        softmaxRow(s, limit, stats + (<usize>(((bb * h + hh) * tq + i) * 2) << 2));
        if (hd == 16) weightedRows16(s, v + head, d, limit, out + row);
        else weightedRows(s, v + head, d, hd, limit, out + row);
      }
    }
  }
}

/**
 * One query row's share of the gradients, over keys j < limit (key rows `stride` floats apart):
 * dq = sum_j ds[j] k_j; dk_j += ds[j] q; dv_j += p[j] dout. Head width 16, in registers.
 */
@inline
function gradRows16(ds: usize, p: usize, q: usize, dout: usize, k: usize, dk: usize, dv: usize, stride: i32, limit: i32, dq: usize): void {
  const q0 = v128.load(q);
  const q1 = v128.load(q, 16);
  const q2 = v128.load(q, 32);
  const q3 = v128.load(q, 48);
  const o0 = v128.load(dout);
  const o1 = v128.load(dout, 16);
  const o2 = v128.load(dout, 32);
  const o3 = v128.load(dout, 48);
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  const step = <usize>stride << 2;
  let off: usize = 0;
  for (let j = 0; j < limit; j++) {
    const dsj = v128.load32_splat(ds + (<usize>j << 2));
    const pj = v128.load32_splat(p + (<usize>j << 2));
    const kj = k + off;
    a0 = f32x4.add(a0, f32x4.mul(dsj, v128.load(kj)));
    a1 = f32x4.add(a1, f32x4.mul(dsj, v128.load(kj, 16)));
    a2 = f32x4.add(a2, f32x4.mul(dsj, v128.load(kj, 32)));
    a3 = f32x4.add(a3, f32x4.mul(dsj, v128.load(kj, 48)));
    const dkj = dk + off;
    v128.store(dkj, f32x4.add(v128.load(dkj), f32x4.mul(dsj, q0)));
    v128.store(dkj, f32x4.add(v128.load(dkj, 16), f32x4.mul(dsj, q1)), 16);
    v128.store(dkj, f32x4.add(v128.load(dkj, 32), f32x4.mul(dsj, q2)), 32);
    v128.store(dkj, f32x4.add(v128.load(dkj, 48), f32x4.mul(dsj, q3)), 48);
    const dvj = dv + off;
    v128.store(dvj, f32x4.add(v128.load(dvj), f32x4.mul(pj, o0)));
    v128.store(dvj, f32x4.add(v128.load(dvj, 16), f32x4.mul(pj, o1)), 16);
    v128.store(dvj, f32x4.add(v128.load(dvj, 32), f32x4.mul(pj, o2)), 32);
    v128.store(dvj, f32x4.add(v128.load(dvj, 48), f32x4.mul(pj, o3)), 48);
    off += step;
  }
  v128.store(dq, a0);
  v128.store(dq, a1, 16);
  v128.store(dq, a2, 32);
  v128.store(dq, a3, 48);
}

/** The same for any head width that is a multiple of 4. */
function gradRows(ds: usize, p: usize, q: usize, dout: usize, k: usize, dk: usize, dv: usize, stride: i32, hd: i32, limit: i32, dq: usize): void {
  for (let c = 0; c < hd; c += 4) {
    const qc = v128.load(q + (<usize>c << 2));
    const oc = v128.load(dout + (<usize>c << 2));
    let acc = f32x4.splat(0);
    let off = <usize>c << 2;
    for (let j = 0; j < limit; j++) {
      const dsj = v128.load32_splat(ds + (<usize>j << 2));
      acc = f32x4.add(acc, f32x4.mul(dsj, v128.load(k + off)));
      v128.store(dk + off, f32x4.add(v128.load(dk + off), f32x4.mul(dsj, qc)));
      v128.store(dv + off, f32x4.add(v128.load(dv + off), f32x4.mul(v128.load32_splat(p + (<usize>j << 2)), oc)));
      off += <usize>stride << 2;
    }
    v128.store(dq + (<usize>c << 2), acc);
  }
}

/**
 * Gradients: dq, dk, dv are overwritten (dk, dv must start at zero: they are accumulated). Each
 * row's probabilities are recomputed from q, k and forward's stats rather than kept: a kept
 * [batch, heads, queries, keys] array was 16 MB per layer at the default batch, and copying it
 * out and back in cost more than computing it again.
 */
export function backward(
  q: usize, k: usize, v: usize, bias: usize, biasRows: i32, stats: usize, dout: usize, dq: usize, dk: usize, dv: usize, scratch: usize,
  b: i32, tq: i32, tk: i32, h: i32, hd: i32, scale: f32,
): void {
  const d = h * hd;
  const keys4 = (tk + 3) & ~3;
  const kt = scratch;
  const vt = scratch + (<usize>(hd * keys4) << 2);
  const pr = vt + (<usize>(hd * keys4) << 2);
  const ds = pr + (<usize>keys4 << 2);
  const limits = ds + (<usize>keys4 << 2);
  rowLimits(bias, tq * biasRows, tk, limits);
  for (let bb = 0; bb < b; bb++) {
    for (let hh = 0; hh < h; hh++) {
      const head = <usize>(bb * tk * d + hh * hd) << 2;
      transposeHead(k + head, d, tk, hd, kt, keys4);
      transposeHead(v + head, d, tk, hd, vt, keys4);
      for (let i = 0; i < tq; i++) {
        const br = i * biasRows + (biasRows > 1 ? bb : 0);
        const brow = bias + (<usize>(br * tk) << 2);
        const limit = load<i32>(limits + (<usize>br << 2));
        const row = <usize>((bb * tq + i) * d + hh * hd) << 2;
        // the scores as forward summed them, so that the kept max and sum fit them exactly
        if (tq < 4) rowScoresDirect(q + row, k + head, d, hd, limit, scale, brow, pr);
        else rowScores(q + row, kt, hd, keys4, limit, scale, brow, pr);
        softmaxAgain(pr, limit, stats + (<usize>(((bb * h + hh) * tq + i) * 2) << 2));
        // dP_j = dO_i . V_j
        rowScores(dout + row, vt, hd, keys4, limit, 1, 0, ds);
        // lanes from limit to the next multiple of 4 have P = 0 (softmaxAgain) and a finite dP
        // (the transposed values are zero-padded), so whole vectors add nothing there
        const end4 = (limit + 3) & ~3;
        let vsum = f32x4.splat(0);
        for (let j = 0; j < end4; j += 4) vsum = f32x4.add(vsum, f32x4.mul(v128.load(pr + (<usize>j << 2)), v128.load(ds + (<usize>j << 2))));
        const vdsum = f32x4.splat(hsum(vsum));
        const vscale = f32x4.splat(scale);
        // dS_j = P_j (dP_j - sum_j P_j dP_j), times the score scale
        for (let j = 0; j < end4; j += 4) {
          const at = ds + (<usize>j << 2);
          v128.store(at, f32x4.mul(f32x4.mul(v128.load(pr + (<usize>j << 2)), f32x4.sub(v128.load(at), vdsum)), vscale));
        }
        if (hd == 16) gradRows16(ds, pr, q + row, dout + row, k + head, dk + head, dv + head, d, limit, dq + row);
        else gradRows(ds, pr, q + row, dout + row, k + head, dk + head, dv + head, d, hd, limit, dq + row);
      }
    }
  }
}

/**
 * dst [cols, rows] = src [rows, cols] transposed, rows and cols multiples of 4: 4 x 4 blocks
 * through shuffles, 32 rows at a time so the written columns stay in cache.
 *
 * Why: tfjs-wasm's Transpose takes ~5 ms for the weight gradients' [4096, 128] (~10 ns per
 * element); this takes well under 1 ms, copies in and out included.
 */
export function transpose(src: usize, rows: i32, cols: i32, dst: usize): void {
  const rowBytes = <usize>cols << 2;
  const colBytes = <usize>rows << 2;
  for (let r0 = 0; r0 < rows; r0 += 32) {
    const r1 = min(rows, r0 + 32);
    for (let c = 0; c < cols; c += 4) {
      for (let r = r0; r < r1; r += 4) {
        const s = src + (<usize>(r * cols + c) << 2);
        const a0 = v128.load(s);
        const a1 = v128.load(s + rowBytes);
        const a2 = v128.load(s + 2 * rowBytes);
        const a3 = v128.load(s + 3 * rowBytes);
        const t0 = v128.shuffle<f32>(a0, a1, 0, 4, 1, 5);
        const t1 = v128.shuffle<f32>(a0, a1, 2, 6, 3, 7);
        const t2 = v128.shuffle<f32>(a2, a3, 0, 4, 1, 5);
        const t3 = v128.shuffle<f32>(a2, a3, 2, 6, 3, 7);
        const d = dst + (<usize>(c * rows + r) << 2);
        v128.store(d, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
        v128.store(d + colBytes, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
        v128.store(d + 2 * colBytes, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
        v128.store(d + 3 * colBytes, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
      }
    }
  }
}

/** Mean of a row of `rowBytes` bytes (a multiple of 16); inv = 1 / its length. */
@inline
function rowMean(xr: usize, rowBytes: usize, inv: f32): f32 {
  let vs = f32x4.splat(0);
  for (let c: usize = 0; c < rowBytes; c += 16) vs = f32x4.add(vs, v128.load(xr + c));
  return hsum(vs) * inv;
}

/** 1 / sqrt(variance + eps) of a row, given its mean (the variance of the centred values, as tfjs computes it). */
@inline
function rowRstd(xr: usize, rowBytes: usize, mean: f32, inv: f32, eps: f32): f32 {
  const vm = f32x4.splat(mean);
  let vq = f32x4.splat(0);
  for (let c: usize = 0; c < rowBytes; c += 16) {
    const d = f32x4.sub(v128.load(xr + c), vm);
    vq = f32x4.add(vq, f32x4.mul(d, d));
  }
  return <f32>1.0 / Mathf.sqrt(hsum(vq) * inv + eps);
}

/**
 * Layer normalisation of each row of x [rows, width] (width a multiple of 4):
 * y = (x - mean) / sqrt(var + eps) * g + b, in one pass per row for the statistics and one for y.
 *
 * Why: tfjs-wasm runs it as nine kernels, each a full pass over the activations (and eleven for
 * the gradient); the default step normalises five [4096, 128] activations.
 */
export function layerNormForward(x: usize, g: usize, b: usize, y: usize, rows: i32, width: i32, eps: f32): void {
  const inv: f32 = <f32>1.0 / <f32>width;
  const rowBytes = <usize>width << 2;
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * rowBytes;
    const yr = y + <usize>r * rowBytes;
    const mean = rowMean(xr, rowBytes, inv);
    const vm = f32x4.splat(mean);
    const vr = f32x4.splat(rowRstd(xr, rowBytes, mean, inv, eps));
    for (let c: usize = 0; c < rowBytes; c += 16) {
      const xh = f32x4.mul(f32x4.sub(v128.load(xr + c), vm), vr);
      v128.store(yr + c, f32x4.add(f32x4.mul(xh, v128.load(g + c)), v128.load(b + c)));
    }
  }
}

/**
 * Gradients of layerNormForward from dy: dx overwritten; dg and db (width each) accumulated, so
 * they must start at zero. The row statistics are recomputed from x rather than kept.
 */
export function layerNormBackward(x: usize, g: usize, dy: usize, dx: usize, dg: usize, db: usize, rows: i32, width: i32, eps: f32): void {
  const inv: f32 = <f32>1.0 / <f32>width;
  const rowBytes = <usize>width << 2;
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * rowBytes;
    const dyr = dy + <usize>r * rowBytes;
    const dxr = dx + <usize>r * rowBytes;
    const mean = rowMean(xr, rowBytes, inv);
    const vm = f32x4.splat(mean);
    const vr = f32x4.splat(rowRstd(xr, rowBytes, mean, inv, eps));
    // dxhat = dy * g; m1 = mean(dxhat); m2 = mean(dxhat * xhat); dg += dy * xhat; db += dy
    let v1 = f32x4.splat(0);
    let v2 = f32x4.splat(0);
    for (let c: usize = 0; c < rowBytes; c += 16) {
      const xh = f32x4.mul(f32x4.sub(v128.load(xr + c), vm), vr);
      const d = v128.load(dyr + c);
      const dxh = f32x4.mul(d, v128.load(g + c));
      v1 = f32x4.add(v1, dxh);
      v2 = f32x4.add(v2, f32x4.mul(dxh, xh));
      v128.store(dg + c, f32x4.add(v128.load(dg + c), f32x4.mul(d, xh)));
      v128.store(db + c, f32x4.add(v128.load(db + c), d));
    }
    const m1 = f32x4.splat(hsum(v1) * inv);
    const m2 = f32x4.splat(hsum(v2) * inv);
    // dx = rstd * (dxhat - m1 - xhat * m2)
    for (let c: usize = 0; c < rowBytes; c += 16) {
      const xh = f32x4.mul(f32x4.sub(v128.load(xr + c), vm), vr);
      const dxh = f32x4.mul(v128.load(dyr + c), v128.load(g + c));
      v128.store(dxr + c, f32x4.mul(vr, f32x4.sub(f32x4.sub(dxh, m1), f32x4.mul(xh, m2))));
    }
  }
}
