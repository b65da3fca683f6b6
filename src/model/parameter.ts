/**
 * A trainable tensor with its gradient buffer. Names and layouts follow PyTorch: `layers.<i>.weight`
 * is the state_dict of a module whose `layers` is the nn.Sequential (strip `layers.` for a bare
 * nn.Sequential); Conv2d weight [out, in/groups, kh, kw], GroupNorm/Embedding `weight` as in torch.
 */
export interface Parameter {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
  readonly grad: Float32Array;
}

export function parameter(name: string, shape: readonly number[]): Parameter {
  const n = shape.reduce((a, b) => a * b, 1);
  return { name, shape: [...shape], data: new Float32Array(n), grad: new Float32Array(n) };
}

/** A growable scratch buffer: reallocated only when a larger batch arrives. */
export class Scratch {
  private buf = new Float32Array(0);
  view(n: number): Float32Array {
    if (this.buf.length < n) this.buf = new Float32Array(Math.max(n, Math.ceil(this.buf.length * 1.5)));
    return this.buf.subarray(0, n);
  }
}

export class Scratch64 {
  private buf = new Float64Array(0);
  view(n: number): Float64Array {
    if (this.buf.length < n) this.buf = new Float64Array(Math.max(n, Math.ceil(this.buf.length * 1.5)));
    return this.buf.subarray(0, n);
  }
}
