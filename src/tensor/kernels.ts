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
   * y += std · z for z i.i.d. standard normal, drawn by Box-Muller from `uniform`, which holds at
   * least gaussianNoiseWords(y.length) uniformly random 32-bit words (from a CSPRNG).
   * Exactly: pair p (elements 2p, 2p+1) uses words a = uniform[3p], b = uniform[3p+1],
   * c = uniform[3p+2]: u1 = (a·2²¹ + (b >>> 11) + 1)·2⁻⁵³ ∈ (0, 1] (53 bits, so the radius, and
   * with it the noise, reaches 8.57σ: 32-bit u1 would cut every draw off at 6.66σ, a tail whose
   * absence a DP adversary can detect), u2 = c·2⁻³², r = std·√(−2 ln u1):
   * y[2p] += r·cos(2π u2), y[2p+1] += r·sin(2π u2), in float64, rounded once to float32.
   * An odd y.length still consumes a whole last pair. std must be finite and ≥ 0.
   */
  addGaussianNoise(y: Float32Array, std: number, uniform: Uint32Array): void;

  /**
   * Unfold a batch of images for convolution as a matrix product: x holds `rows` examples of
   * [channels, height, width]; cols gets, per example and channel group (g.groups of them, each of
   * cg = channels/groups channels), a [outH·outW, cg·kernelH·kernelW] block (blocks ordered
   * example-major) whose row oy·outW + ox, column (c'·kernelH + ky)·kernelW + kx holds
   * x[g·cg + c', oy·strideH − padH + ky·dilationH, ox·strideW − padW + kx·dilationW] (0 outside
   * the image). With one group the batch is one [rows·outH·outW, channels·kernelH·kernelW] matrix.
   */
  im2col(x: Float32Array, rows: number, g: ConvGeometry, cols: Float32Array): void;

  /** The adjoint of im2col: dx = Σ of every cols entry into the pixel it was read from (dx overwritten). */
  col2im(cols: Float32Array, rows: number, g: ConvGeometry, dx: Float32Array): void;

  /**
   * Max pooling over the windows of g (dilation and groups 1, padding at most half the kernel and
   * counting as −∞, as in PyTorch): y[n, c, oy, ox] is the window's maximum and argmax[...] the
   * index, within example n's [channels, height, width], of its first maximum (a NaN wins).
   */
  maxPool2d(x: Float32Array, rows: number, g: ConvGeometry, y: Float32Array, argmax: Int32Array): void;

  /** The adjoint of maxPool2d: dx = 0, then dx[n, argmax[n, o]] += dy[n, o]. */
  maxPool2dBackward(
    dy: Float32Array,
    rows: number,
    g: ConvGeometry,
    argmax: Int32Array,
    dx: Float32Array,
  ): void;

  /** Tempered sigmoid (Papernot et al.): out = scale·σ(inverseTemperature·x) − offset. */
  temperedSigmoid(x: Float32Array, t: TemperedSigmoid, out: Float32Array): void;

  /**
   * Its backward from the forward output y: with σ = (y + offset)/scale,
   * out = dy · scale·inverseTemperature·σ(1 − σ) (out may alias dy). scale must not be 0.
   */
  temperedSigmoidBackward(y: Float32Array, dy: Float32Array, t: TemperedSigmoid, out: Float32Array): void;

  /** out[n][j][i] = x[n][i][j] for `rows` blocks of [a, b] (out must not overlap x). */
  transposeBlocks(x: Float32Array, rows: number, a: number, b: number, out: Float32Array): void;
}

/** The parameters of a tempered sigmoid: scale·σ(inverseTemperature·x) − offset. */
export interface TemperedSigmoid {
  readonly scale: number;
  readonly inverseTemperature: number;
  readonly offset: number;
}

/** The geometry of a 2-D sliding window over one [channels, height, width] example. */
export interface ConvGeometry {
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly kernelH: number;
  readonly kernelW: number;
  readonly strideH: number;
  readonly strideW: number;
  readonly padH: number;
  readonly padW: number;
  readonly dilationH: number;
  readonly dilationW: number;
  /** Channel groups (im2col only; must divide channels). */
  readonly groups: number;
}

/** Output length of a sliding window along one axis (PyTorch's floor formula). */
export function windowOut(
  size: number,
  kernel: number,
  stride: number,
  pad: number,
  dilation: number,
): number {
  return Math.floor((size + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;
}

/** Output height and width of a window geometry. */
export function convOutput(g: ConvGeometry): { outH: number; outW: number } {
  return {
    outH: windowOut(g.height, g.kernelH, g.strideH, g.padH, g.dilationH),
    outW: windowOut(g.width, g.kernelW, g.strideW, g.padW, g.dilationW),
  };
}

/** Random 32-bit words addGaussianNoise consumes for n values: three per pair. */
export function gaussianNoiseWords(n: number): number {
  return 3 * Math.ceil(n / 2);
}

export type ActivationKind = "relu" | "tanh" | "gelu";
