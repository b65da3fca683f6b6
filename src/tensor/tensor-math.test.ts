import { describe, expect, it } from "vitest";
import {
  add,
  assertFinite,
  assertSameLayout,
  axpy,
  displayName,
  dot,
  globalNorm,
  l2Norm,
  parameterCount,
  scale,
  scaleInPlace,
  squaredDistance,
  sub,
  TensorLayoutError,
} from "./tensor-math.js";
import { tensor, type Tensor, type TensorMap } from "./tensor.js";

const t = (shape: number[], values: number[]): Tensor => tensor(shape, Float32Array.from(values));
const map = (entries: Array<[string, Tensor]>): TensorMap => new Map(entries);

function layoutError(fn: () => unknown): TensorLayoutError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TensorLayoutError);
    return err as TensorLayoutError;
  }
  throw new Error("expected a TensorLayoutError");
}

describe("tensor math", () => {
  const a = map([
    ["w", t([2, 2], [1, 2, 3, 4])],
    ["b", t([2], [0.5, -1])],
  ]);
  const b = map([
    ["w", t([2, 2], [4, 3, 2, 1])],
    ["b", t([2], [1.5, 2])],
  ]);

  it("adds, subtracts and scales element-wise", () => {
    expect([...add(a, b).get("w")!.data]).toEqual([5, 5, 5, 5]);
    expect([...sub(a, b).get("b")!.data]).toEqual([-1, -3]);
    expect([...scale(a, -2).get("w")!.data]).toEqual([-2, -4, -6, -8]);
    expect([...add(a.get("b")!, b.get("b")!).data]).toEqual([2, 1]);
    // inputs untouched
    expect([...a.get("w")!.data]).toEqual([1, 2, 3, 4]);
  });

  it("axpy and scaleInPlace modify only y", () => {
    const y = map([
      ["w", t([2, 2], [1, 1, 1, 1])],
      ["b", t([2], [0, 0])],
    ]);
    axpy(0.5, a, y);
    expect([...y.get("w")!.data]).toEqual([1.5, 2, 2.5, 3]);
    expect([...y.get("b")!.data]).toEqual([0.25, -0.5]);
    scaleInPlace(y, 2);
    expect([...y.get("b")!.data]).toEqual([0.5, -1]);
    expect([...a.get("b")!.data]).toEqual([0.5, -1]);
  });

  it("reductions match hand-computed values", () => {
    // dot: 1·4 + 2·3 + 3·2 + 4·1 + 0.5·1.5 + (−1)·2 = 20 + 0.75 − 2
    expect(dot(a, b)).toBeCloseTo(18.75, 12);
    // ‖a‖² = 1 + 4 + 9 + 16 + 0.25 + 1
    expect(l2Norm(a)).toBeCloseTo(Math.sqrt(31.25), 12);
    expect(globalNorm(a)).toBeCloseTo(Math.sqrt(31.25), 12);
    expect(l2Norm(a.get("w")!)).toBeCloseTo(Math.sqrt(30), 12);
    // ‖a − b‖² = 9 + 1 + 1 + 9 + 1 + 9
    expect(squaredDistance(a, b)).toBeCloseTo(30, 12);
    expect(parameterCount(a)).toBe(6);
  });

  it("rejects mismatched names, shapes, dtypes and mixes", () => {
    const missing = map([["w", t([2, 2], [1, 2, 3, 4])]]);
    const e1 = layoutError(() => add(a, missing));
    expect(e1.code).toBe("TENSOR_MISSING");
    expect(e1.tensor).toBe("b");

    const extra = map([...a, ["evil\nname", t([1], [0])]]);
    const e2 = layoutError(() => assertSameLayout(a, extra, "update"));
    expect(e2.code).toBe("TENSOR_UNEXPECTED");
    expect(e2.message).not.toContain("\n"); // quoted: no log injection

    const reshaped = map([
      ["w", t([4], [1, 2, 3, 4])],
      ["b", t([2], [0, 0])],
    ]);
    const e3 = layoutError(() => dot(a, reshaped));
    expect(e3.code).toBe("TENSOR_SHAPE_MISMATCH");
    expect(e3.tensor).toBe("w");

    const f64 = map([
      ["w", { shape: [2, 2], data: new Float64Array(4) as unknown as Float32Array }],
      ["b", t([2], [0, 0])],
    ]);
    expect(layoutError(() => sub(a, f64)).code).toBe("TENSOR_DTYPE_MISMATCH");

    const lying = map([
      ["w", { shape: [2, 2], data: new Float32Array(3) }],
      ["b", t([2], [0, 0])],
    ]);
    expect(layoutError(() => assertSameLayout(a, lying, "x")).code).toBe("TENSOR_SHAPE_MISMATCH");

    expect(() => add(a, b.get("w")! as never)).toThrow(TypeError);
    expect(() => scale(a, NaN)).toThrow(RangeError);
  });

  it("finds non-finite values and names the tensor, not the value", () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const m = map([
        ["w", t([2], [1, 2])],
        ["b", t([3], [0, bad, 1])],
      ]);
      const e = layoutError(() => assertFinite(m, "update"));
      expect(e.code).toBe("TENSOR_NOT_FINITE");
      expect(e.tensor).toBe("b");
    }
    expect(() => assertFinite(a, "ok")).not.toThrow();
  });

  it("truncates long names in messages", () => {
    expect(displayName("x".repeat(500)).length).toBeLessThan(100);
  });
});
