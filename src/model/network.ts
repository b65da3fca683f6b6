import { EnclaveError } from "../errors.js";
import type { RandomSource } from "../random.js";
import { hw, inputShapeOf, layerShapes, type LayerSpec, type ModelSpec } from "../schemas/model.js";
import type { Kernels } from "../tensor/kernels.js";
import { sameShape, tensor, type TensorMap } from "../tensor/tensor.js";
import { Conv2dLayer } from "./conv2d.js";
import {
  AvgPool2dLayer,
  EmbeddingLayer,
  FlattenLayer,
  GroupNormLayer,
  MaxPool2dLayer,
  TemperedSigmoidLayer,
} from "./image-layers.js";
import { ActivationLayer, DropoutLayer, LayerNormLayer, LinearLayer, type Layer } from "./layers.js";
import { Scratch, Scratch64, type Parameter } from "./parameter.js";

/**
 * A sequential network built from a declarative ModelSpec. It computes per-example losses and
 * their gradients, per-example gradient norms, and weighted gradient sums: what DP-SGD needs.
 */
export class Network {
  readonly layers: Layer[];
  readonly params: Parameter[];
  private readonly dLogits = new Scratch();
  private readonly losses = new Scratch64();
  private readonly norms = new Scratch64();

  constructor(
    readonly spec: ModelSpec,
    private readonly k: Kernels,
    rng: RandomSource,
  ) {
    this.layers = buildLayers(spec, k, rng);
    this.params = this.layers.flatMap((l) => l.params);
  }

  get outputWidth(): number {
    return this.spec.loss === "binary_cross_entropy" ? 1 : this.spec.num_classes;
  }

  get numParameters(): number {
    return this.params.reduce((s, p) => s + p.data.length, 0);
  }

  forward(x: Float32Array, rows: number, training: boolean): Float32Array {
    let h = x;
    for (const layer of this.layers) h = layer.forward(h, rows, training);
    return h;
  }

  /** Per-example losses ℓ_i and dℓ_i/dlogits (not averaged). */
  lossAndGrad(
    logits: Float32Array,
    labels: Int32Array,
    rows: number,
  ): { losses: Float64Array; dLogits: Float32Array } {
    const c = this.outputWidth;
    const losses = this.losses.view(rows);
    const dLogits = this.dLogits.view(rows * c);
    if (this.spec.loss === "softmax_cross_entropy") {
      this.k.softmaxCrossEntropy(logits, labels, rows, c, losses, dLogits);
    } else {
      binaryCrossEntropyWithLogits(logits, labels, rows, losses, dLogits);
    }
    return { losses, dLogits };
  }

  backward(dLogits: Float32Array, rows: number): void {
    let g: Float32Array | null = dLogits;
    for (let i = this.layers.length - 1; i >= 0; i--) {
      g = this.layers[i].backward(g!, rows, i > 0);
    }
  }

  /** ‖∇_θ ℓ_i‖ over all parameters, after `backward`. */
  perExampleGradNorms(rows: number): Float64Array {
    const sq = this.norms.view(rows);
    sq.fill(0);
    for (const layer of this.layers) layer.addPerExampleSqNorms(rows, sq);
    for (let i = 0; i < rows; i++) sq[i] = Math.sqrt(sq[i]);
    return sq;
  }

  /** Every parameter's grad = Σ_i w_i ∇_θ ℓ_i, after `backward`. */
  writeGrads(rows: number, w: Float32Array | null): void {
    for (const layer of this.layers) layer.writeGrads(rows, w);
  }

  zeroGrads(): void {
    for (const p of this.params) p.grad.fill(0);
  }

  /** Predicted class per row (evaluation mode). */
  predict(x: Float32Array, rows: number): Int32Array {
    return this.classify(this.forward(x, rows, false), rows);
  }

  /** Class per row from logits: argmax, or logit > 0 for a single binary logit. */
  classify(logits: Float32Array, rows: number): Int32Array {
    const c = this.outputWidth;
    const out = new Int32Array(rows);
    for (let i = 0; i < rows; i++) {
      if (c === 1) {
        out[i] = logits[i] > 0 ? 1 : 0;
        continue;
      }
      let best = 0;
      for (let j = 1; j < c; j++) if (logits[i * c + j] > logits[i * c + best]) best = j;
      out[i] = best;
    }
    return out;
  }

  /** Snapshot of the weights (copies), in parameter order. */
  weights(): TensorMap {
    const out: TensorMap = new Map();
    for (const p of this.params) out.set(p.name, tensor(p.shape, p.data.slice()));
    return out;
  }

  /** Load weights; names, shapes and finiteness must match exactly. */
  loadWeights(weights: TensorMap): void {
    if (weights.size !== this.params.length) {
      throw new EnclaveError(
        "WEIGHTS_MISMATCH",
        `expected ${this.params.length} tensors, got ${weights.size}`,
      );
    }
    for (const p of this.params) {
      const t = weights.get(p.name);
      if (!t) throw new EnclaveError("WEIGHTS_MISMATCH", `missing tensor "${p.name}"`);
      if (!sameShape(t.shape, p.shape)) {
        throw new EnclaveError(
          "WEIGHTS_MISMATCH",
          `tensor "${p.name}" has shape [${t.shape}], expected [${p.shape}]`,
        );
      }
      for (let i = 0; i < t.data.length; i++) {
        if (!Number.isFinite(t.data[i]))
          throw new EnclaveError("WEIGHTS_MISMATCH", `tensor "${p.name}" has non-finite values`);
      }
    }
    for (const p of this.params) p.data.set(weights.get(p.name)!.data);
  }
}

/** The layers of a (validated) spec, each given the example shape it reads; parameters initialised from rng. */
function buildLayers(spec: ModelSpec, k: Kernels, rng: RandomSource): Layer[] {
  const input = inputShapeOf(spec);
  const { shapes, issues } = layerShapes(input, spec.layers);
  if (issues.length > 0)
    throw new EnclaveError("MODEL_SPEC_INVALID", `layers.${issues[0].path[1]}: ${issues[0].message}`);
  return spec.layers.map((l: LayerSpec, i: number) => {
    const inShape = i === 0 ? input : shapes[i - 1];
    const width = inShape.reduce((a, b) => a * b, 1);
    return buildLayer(l, `layers.${i}`, inShape, width, k, rng);
  });
}

function buildLayer(
  l: LayerSpec,
  prefix: string,
  inShape: readonly number[],
  width: number,
  k: Kernels,
  rng: RandomSource,
): Layer {
  switch (l.type) {
    case "linear": {
      const lin = new LinearLayer(k, prefix, l.in_features, l.out_features, l.bias);
      lin.init(rng);
      return lin;
    }
    case "relu":
    case "tanh":
    case "gelu":
      return new ActivationLayer(k, l.type, width);
    case "tempered_sigmoid":
      return new TemperedSigmoidLayer(k, width, l.scale, l.inverse_temperature, l.offset);
    case "layernorm":
      return new LayerNormLayer(prefix, width, l.eps);
    case "dropout":
      return new DropoutLayer(l.p, width, rng);
    case "conv2d": {
      const conv = new Conv2dLayer(k, prefix, inShape, {
        inChannels: l.in_channels,
        outChannels: l.out_channels,
        kernel: hw(l.kernel_size),
        stride: hw(l.stride),
        padding: hw(l.padding),
        dilation: hw(l.dilation),
        groups: l.groups,
        bias: l.bias,
      });
      conv.init(rng);
      return conv;
    }
    case "maxpool2d":
      return new MaxPool2dLayer(k, inShape, hw(l.kernel_size), hw(l.stride ?? l.kernel_size), hw(l.padding));
    case "avgpool2d":
      return new AvgPool2dLayer(
        inShape,
        hw(l.kernel_size),
        hw(l.stride ?? l.kernel_size),
        hw(l.padding),
        l.count_include_pad,
      );
    case "groupnorm":
      return new GroupNormLayer(k, prefix, inShape, l.num_groups, l.eps, l.affine);
    case "flatten":
      return new FlattenLayer(width);
    case "embedding": {
      const emb = new EmbeddingLayer(prefix, width, l.num_embeddings, l.embedding_dim);
      emb.init(rng);
      return emb;
    }
  }
}

/** ℓ = softplus(z) - y z (stable form), dℓ/dz = σ(z) - y. */
export function binaryCrossEntropyWithLogits(
  z: Float32Array,
  labels: Int32Array,
  rows: number,
  loss: Float64Array,
  grad: Float32Array,
): void {
  for (let i = 0; i < rows; i++) {
    const v = z[i];
    const y = labels[i];
    loss[i] = Math.max(v, 0) - y * v + Math.log1p(Math.exp(-Math.abs(v)));
    grad[i] = 1 / (1 + Math.exp(-v)) - y;
  }
}
