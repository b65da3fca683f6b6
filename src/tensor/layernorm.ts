/** LayerNorm kernels (portable TypeScript; small next to the matmuls around them). */

export function layerNormForward(
  x: Float32Array,
  rows: number,
  d: number,
  eps: number,
  gamma: Float32Array,
  beta: Float32Array,
  xhat: Float32Array,
  rstd: Float32Array,
  y: Float32Array,
): void {
  for (let i = 0; i < rows; i++) {
    const o = i * d;
    let mean = 0;
    for (let j = 0; j < d; j++) mean += x[o + j];
    mean /= d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (x[o + j] - mean) * (x[o + j] - mean);
    const r = 1 / Math.sqrt(v / d + eps);
    rstd[i] = r;
    for (let j = 0; j < d; j++) {
      const h = (x[o + j] - mean) * r;
      xhat[o + j] = h;
      y[o + j] = gamma[j] * h + beta[j];
    }
  }
}

/** dx = rstd · (ĝ - mean(ĝ) - x̂ · mean(ĝ ⊙ x̂)) with ĝ = dy ⊙ γ. */
export function layerNormBackward(
  dy: Float32Array,
  rows: number,
  d: number,
  gamma: Float32Array,
  xhat: Float32Array,
  rstd: Float32Array,
  dx: Float32Array,
): void {
  for (let i = 0; i < rows; i++) {
    const o = i * d;
    let m1 = 0;
    let m2 = 0;
    for (let j = 0; j < d; j++) {
      const g = dy[o + j] * gamma[j];
      m1 += g;
      m2 += g * xhat[o + j];
    }
    m1 /= d;
    m2 /= d;
    for (let j = 0; j < d; j++) dx[o + j] = rstd[i] * (dy[o + j] * gamma[j] - m1 - xhat[o + j] * m2);
  }
}

/** Per-example gradient of γ: dy_i ⊙ x̂_i (that of β is dy_i itself). */
export function layerNormPerExampleGrads(
  dy: Float32Array,
  xhat: Float32Array,
  rows: number,
  d: number,
  out: Float32Array,
): void {
  for (let i = 0; i < rows * d; i++) out[i] = dy[i] * xhat[i];
}
