import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.js";
import { SeededRandom } from "../random.js";
import { tensor, type Tensor, type TensorMap } from "../tensor/tensor.js";
import { AggregationError } from "./errors.js";
import { createStrategy, type StrategySpec } from "./factory.js";
import { FedAvg } from "./fedavg.js";
import type { ClientUpdate, Strategy } from "./types.js";

const t = (shape: number[], values: number[]): Tensor => tensor(shape, Float32Array.from(values));
const model = (w: number[] = [1, 2, 3, 4], b: number[] = [0.5]): TensorMap =>
  new Map([
    ["layers.0.weight", t([2, 2], w)],
    ["layers.0.bias", t([1], b)],
  ]);

function rejection(fn: () => unknown): AggregationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(AggregationError);
    return err as AggregationError;
  }
  throw new Error("expected an AggregationError");
}

const specs: StrategySpec[] = [
  { name: "FED_AVG" },
  { name: "FED_PROX", mu: 0.1 },
  { name: "SCAFFOLD", totalClients: 10 },
  { name: "FED_ADAM" },
  { name: "FED_YOGI" },
  { name: "MEDIAN" },
  { name: "TRIMMED_MEAN", beta: 0.1 },
  { name: "KRUM", byzantine: 0 },
  {
    name: "DP_FED_AVG",
    clipNorm: 1,
    noiseMultiplier: 1,
    samplingRate: 1,
    totalClients: 10,
    allowInsecureRandom: true,
  },
];
const build = (spec: StrategySpec): Strategy => createStrategy(spec, { rng: new SeededRandom("v") });
const good = (clientId: string, w?: number[]): ClientUpdate => ({
  clientId,
  weights: model(w),
  numExamples: 3,
  controlDelta: model([0, 0, 0, 0], [0]),
});

describe("update validation (every strategy)", () => {
  for (const spec of specs) {
    describe(spec.name, () => {
      const cases: Array<[string, ClientUpdate, string, string | undefined]> = [
        [
          "wrong shape",
          { ...good("a"), weights: new Map([...model(), ["layers.0.weight", t([4], [1, 2, 3, 4])]]) },
          "UPDATE_SHAPE_MISMATCH",
          "layers.0.weight",
        ],
        [
          "missing tensor",
          { ...good("a"), weights: new Map([["layers.0.weight", t([2, 2], [1, 2, 3, 4])]]) },
          "UPDATE_TENSOR_MISSING",
          "layers.0.bias",
        ],
        [
          "extra tensor",
          { ...good("a"), weights: new Map([...model(), ["exfil", t([1], [7])]]) },
          "UPDATE_TENSOR_UNEXPECTED",
          "exfil",
        ],
        ["NaN", good("a", [1, NaN, 3, 4]), "UPDATE_NOT_FINITE", "layers.0.weight"],
        [
          "Infinity",
          { ...good("a"), weights: model(undefined, [Infinity]) },
          "UPDATE_NOT_FINITE",
          "layers.0.bias",
        ],
        [
          "float64 data",
          {
            ...good("a"),
            weights: new Map([
              ...model(),
              ["layers.0.bias", { shape: [1], data: new Float64Array(1) as unknown as Float32Array }],
            ]),
          },
          "UPDATE_DTYPE_MISMATCH",
          "layers.0.bias",
        ],
        ["zero examples", { ...good("a"), numExamples: 0 }, "UPDATE_INVALID_NUM_EXAMPLES", undefined],
        ["fractional examples", { ...good("a"), numExamples: 1.5 }, "UPDATE_INVALID_NUM_EXAMPLES", undefined],
        ["empty client id", { ...good("") }, "UPDATE_INVALID_CLIENT_ID", undefined],
        ["NaN metric", { ...good("a"), metrics: { loss: NaN } }, "UPDATE_INVALID_METRIC", undefined],
        ["odd metric name", { ...good("a"), metrics: { "a b\n": 1 } }, "UPDATE_INVALID_METRIC", undefined],
      ];
      for (const [what, update, code, tensorName] of cases) {
        it(`rejects ${what} with ${code}`, () => {
          const agg = build(spec).begin({ round: 0, global: model() });
          const e = rejection(() => agg.add(update));
          expect(e.code).toBe(code);
          expect(e.tensor).toBe(tensorName);
          expect(agg.count).toBe(0);
        });
      }

      it("rejects a duplicate client and a rejected update leaves the result unchanged", () => {
        const s = build(spec);
        const agg = s.begin({ round: 0, global: model() });
        agg.add(good("a", [2, 2, 2, 2]));
        // valid weight tensor but NaN bias: nothing of it may reach the accumulator
        expect(
          rejection(() =>
            agg.add({ ...good("bad", [1e6, 1e6, 1e6, 1e6]), weights: model([1e6, 1e6, 1e6, 1e6], [NaN]) }),
          ).code,
        ).toBe("UPDATE_NOT_FINITE");
        expect(rejection(() => agg.add(good("a", [9, 9, 9, 9]))).code).toBe("UPDATE_DUPLICATE_CLIENT");
        expect(agg.count).toBe(1);
        if (spec.name === "KRUM") return; // needs 3 updates to finish
        const w = agg.finish().global.get("layers.0.weight")!.data;
        expect(Math.max(...w)).toBeLessThan(100);
      });
    });
  }

  it("SCAFFOLD checks the control delta like the weights", () => {
    const agg = build(specs[2]).begin({ round: 0, global: model() });
    const e = rejection(() => agg.add({ ...good("a"), controlDelta: model([0, 0, Infinity, 0], [0]) }));
    expect(e.code).toBe("UPDATE_NOT_FINITE");
    expect(e.field).toBe("controlDelta");
    expect(e.tensor).toBe("layers.0.weight");
  });

  it("messages carry names, never values", () => {
    const agg = new FedAvg().begin({ round: 0, global: model() });
    const e = rejection(() => agg.add({ ...good("a"), weights: model([1234.5678, NaN, 3, 4]) }));
    expect(e.message).toContain("layers.0.weight");
    expect(e.message).not.toContain("1234");
  });
});

describe("round lifecycle", () => {
  it("finish once, no adds after finish, no empty rounds", () => {
    const s = new FedAvg();
    const empty = s.begin({ round: 0, global: model() });
    expect(rejection(() => empty.finish()).code).toBe("NO_UPDATES");
    empty.add(good("a"));
    empty.finish();
    expect(rejection(() => empty.finish()).code).toBe("ROUND_FINISHED");
    expect(rejection(() => empty.add(good("b"))).code).toBe("ROUND_FINISHED");
  });

  it("round numbers strictly increase and superseded rounds cannot commit", () => {
    const s = new FedAvg();
    const r0 = s.begin({ round: 0, global: model() });
    r0.add(good("a"));
    r0.finish();
    expect(rejection(() => s.begin({ round: 0, global: model() })).code).toBe("ROUND_OUT_OF_ORDER");
    expect(rejection(() => s.begin({ round: -1, global: model() })).code).toBe("ROUND_OUT_OF_ORDER");
    expect(rejection(() => s.begin({ round: 1.5, global: model() })).code).toBe("ROUND_OUT_OF_ORDER");
    const r2 = s.begin({ round: 2, global: model() });
    const r3 = s.begin({ round: 3, global: model() });
    r2.add(good("a"));
    r3.add(good("a"));
    expect(rejection(() => r2.finish()).code).toBe("ROUND_STALE");
    expect(r3.finish().round).toBe(3);
    expect(s.exportState()).toEqual({ round: 3, tensors: new Map() });
  });

  it("rejects a non-finite or empty global model", () => {
    const s = new FedAvg();
    const e = rejection(() => s.begin({ round: 0, global: model([1, 2, NaN, 4]) }));
    expect(e.code).toBe("GLOBAL_INVALID");
    expect(e.tensor).toBe("layers.0.weight");
    expect(rejection(() => s.begin({ round: 0, global: new Map() })).code).toBe("GLOBAL_INVALID");
  });

  it("restored stateless strategies continue the round sequence", () => {
    const s = new FedAvg();
    s.restoreState({ round: 7, tensors: new Map() });
    expect(rejection(() => s.begin({ round: 7, global: model() })).code).toBe("ROUND_OUT_OF_ORDER");
    expect(s.begin({ round: 8, global: model() }).round).toBe(8);
    expect(rejection(() => s.restoreState({ round: 1, tensors: model() })).code).toBe("STATE_INVALID");
  });

  it("SCAFFOLD state survives export/restore and rejects junk", () => {
    const a = createStrategy({ name: "SCAFFOLD", totalClients: 2 });
    const r = a.begin({ round: 0, global: model() });
    r.add({ ...good("a"), controlDelta: model([2, 2, 2, 2], [2]) });
    r.finish();
    const b = createStrategy({ name: "SCAFFOLD", totalClients: 2 });
    b.restoreState(a.exportState());
    const c = b.begin({ round: 1, global: model() }).broadcast.controlVariate!;
    expect([...c.get("layers.0.weight")!.data]).toEqual([1, 1, 1, 1]);
    const junk = new Map([["x/layers.0.weight", t([1], [0])]]);
    expect(rejection(() => b.restoreState({ round: 0, tensors: junk })).code).toBe("STATE_INVALID");
  });
});

describe("createStrategy", () => {
  it("builds every strategy from its spec", () => {
    for (const spec of specs) expect(build(spec).name).toBe(spec.name);
    expect(build(specs[0]).streaming).toBe(true);
    expect(build(specs[5]).streaming).toBe(false);
  });

  it("rejects unknown names, unknown fields and bad options, naming the field", () => {
    expect(() => createStrategy({ name: "FED_MAGIC" })).toThrow(ValidationError);
    const extra = (() => {
      try {
        createStrategy({ name: "FED_AVG", learningRate: 1 });
      } catch (e) {
        return e as ValidationError;
      }
    })();
    expect(extra?.message).toContain("learningRate");
    const krum = (() => {
      try {
        createStrategy({ name: "KRUM" });
      } catch (e) {
        return e as ValidationError;
      }
    })();
    expect(krum?.issues.map((i) => i.path)).toContain("byzantine");
    expect(() => createStrategy({ name: "FED_PROX", mu: -1 })).toThrow(/mu/);
    expect(() => createStrategy({ name: "FED_ADAM", beta1: 1 })).toThrow(/beta1/);
  });
});
