/**
 * The numeric kernel interface: every hot loop of the project goes through one of these,
 * so a backend (native C++ or portable TypeScript) can be swapped without touching callers.
 * All matrices are row-major float32. Sizes are passed explicitly; callers own the buffers.
 * Buffers may be longer than needed (views into scratch space are fine). Every backend rejects a
 * wrong type, a too-short buffer, a non-integer size or a non-finite scalar with
 * KernelArgumentError (code KERNEL_ARGUMENT_INVALID) before touching any data.
 */
export interface Kernels {
  /** e.g. "native-avx2-fma", "native-generic", "typescript". */
  readonly name: string;

  /**
   * C = op(A) · op(B) + beta · C, where op(A) is m×k and op(B) is k×n.
   * transA: A is stored k×m; transB: B is stored n×k. beta = 0 overwrites C (NaNs in C ignored).
   * C must not overlap A or B.
   */
  gemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    beta: number,
  ): void;

  /** out[i] = Σ_j x[i·cols + j]² (float64 accumulation). */
  rowSumSquares(x: Float32Array, rows: number, cols: number, out: Float64Array): void;

  /** x[i·cols + j] += v[j]. */
  addRowVector(x: Float32Array, rows: number, cols: number, v: Float32Array): void;

  /** out[j] = beta·out[j] + Σ_i w[i]·x[i·cols + j]; w = null means all ones. */
  colSum(
    x: Float32Array,
    rows: number,
    cols: number,
    w: Float32Array | null,
    out: Float32Array,
    beta: number,
  ): void;

  /** out[i·cols + j] = x[i·cols + j] · s[i] (out may alias x). */
  scaleRows(x: Float32Array, rows: number, cols: number, s: Float32Array, out: Float32Array): void;

  /** y += alpha · x. */
  axpy(alpha: number, x: Float32Array, y: Float32Array): void;

  /** Activations. Backward: dx = dy · f'(·) given the forward input x (out may alias dy). */
  activation(kind: ActivationKind, x: Float32Array, out: Float32Array): void;
  activationBackward(kind: ActivationKind, x: Float32Array, dy: Float32Array, out: Float32Array): void;

  /**
   * Softmax cross-entropy per row: loss[i] = -log softmax(logits_i)[label_i];
   * grad[i·classes + c] = softmax(logits_i)[c] - [c == label_i]  (gradient of loss[i], not averaged).
   */
  softmaxCrossEntropy(
    logits: Float32Array,
    labels: Int32Array,
    rows: number,
    classes: number,
    loss: Float64Array,
    grad: Float32Array,
  ): void;

  /**
   * y += std · z for z i.i.d. standard normal, drawn by Box-Muller from `uniform`,
   * which holds at least y.length uniformly random 32-bit words (from a CSPRNG).
   * Exactly: for each pair i = 0, 2, 4, …, with u1 = (uniform[i] + 1)·2⁻³² ∈ (0, 1] and
   * u2 = uniform[i+1]·2⁻³², r = std·√(−2 ln u1): y[i] += r·cos(2π u2), y[i+1] += r·sin(2π u2),
   * evaluated in float64 and rounded once to float32. An odd y.length still consumes a whole
   * last pair, so `uniform` needs y.length + 1 words then. std must be finite and ≥ 0.
   */
  addGaussianNoise(y: Float32Array, std: number, uniform: Uint32Array): void;
}

export type ActivationKind = "relu" | "tanh" | "gelu";
