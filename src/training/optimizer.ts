import type { Parameter } from "../model/parameter.js";
import type { Kernels } from "../tensor/kernels.js";

/** Applies a gradient to parameters. DP is unaffected: it only post-processes the noised gradient. */
export interface Optimizer {
  step(params: readonly Parameter[]): void;
}

export class SgdOptimizer implements Optimizer {
  private velocity: Float32Array[] | null = null;
  constructor(
    private readonly k: Kernels,
    private readonly lr: number,
    private readonly momentum = 0,
  ) {}

  step(params: readonly Parameter[]): void {
    if (this.momentum === 0) {
      for (const p of params) this.k.axpy(-this.lr, p.grad, p.data);
      return;
    }
    this.velocity ??= params.map((p) => new Float32Array(p.data.length));
    params.forEach((p, i) => {
      const v = this.velocity![i];
      for (let j = 0; j < v.length; j++) v[j] = this.momentum * v[j] + p.grad[j];
      this.k.axpy(-this.lr, v, p.data);
    });
  }
}

/** Adam (Kingma & Ba 2015) with bias correction. */
export class AdamOptimizer implements Optimizer {
  private m: Float32Array[] | null = null;
  private v: Float32Array[] | null = null;
  private t = 0;
  constructor(
    private readonly lr: number,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
  ) {}

  step(params: readonly Parameter[]): void {
    this.m ??= params.map((p) => new Float32Array(p.data.length));
    this.v ??= params.map((p) => new Float32Array(p.data.length));
    this.t++;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = 1 - this.beta2 ** this.t;
    params.forEach((p, i) => {
      const m = this.m![i];
      const v = this.v![i];
      for (let j = 0; j < m.length; j++) {
        const g = p.grad[j];
        m[j] = this.beta1 * m[j] + (1 - this.beta1) * g;
        v[j] = this.beta2 * v[j] + (1 - this.beta2) * g * g;
        p.data[j] -= (this.lr * (m[j] / c1)) / (Math.sqrt(v[j] / c2) + this.eps);
      }
    });
  }
}

export type OptimizerName = "sgd" | "adam";

export function createOptimizer(name: OptimizerName, k: Kernels, lr: number, momentum = 0): Optimizer {
  return name === "adam" ? new AdamOptimizer(lr) : new SgdOptimizer(k, lr, momentum);
}
