import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../errors.js";
import { PrvAccountant } from "./prv-accountant.js";
import { RdpAccountant } from "./rdp-accountant.js";
import {
  computeEpsilon,
  createAccountant,
  getNoiseMultiplier,
  type NoiseMultiplierInput,
} from "./privacy-budget.js";

const transcription = JSON.parse(
  readFileSync(new URL("./fixtures/opacus-transcription-cases.json", import.meta.url), "utf8"),
) as {
  noise_multiplier: {
    target_epsilon: number;
    delta: number;
    sample_rate: number;
    epochs: number | null;
    steps: number | null;
    noise_multiplier: number;
  }[];
};

const fieldsOf = (f: () => unknown): string[] => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError).issues.map((i) => i.path);
  }
  throw new Error("expected a ValidationError");
};

describe("computeEpsilon", () => {
  it("gives the RDP epsilon and optimal order of a planned run (Opacus reference case)", () => {
    const r = computeEpsilon({
      accountant: "rdp",
      sampleRate: 0.01,
      noiseMultiplier: 1,
      steps: 100,
      delta: 1e-6,
    });
    expect(r.epsilon).toBeCloseTo(1.5073894359634168, 14);
    expect(r.order).toBe(8.9);
  });

  it("gives the PRV upper bound, below RDP", () => {
    const r = computeEpsilon({
      accountant: "prv",
      sampleRate: 0.01,
      noiseMultiplier: 1,
      steps: 100,
      delta: 1e-6,
    });
    expect(r.order).toBeUndefined();
    expect(r.epsilon).toBeGreaterThan(0.94);
    expect(r.epsilon).toBeLessThan(1.5);
  });

  it("zero steps spend nothing", () => {
    expect(
      computeEpsilon({ accountant: "rdp", sampleRate: 0.5, noiseMultiplier: 1, steps: 0, delta: 1e-5 }),
    ).toEqual({
      epsilon: 0,
      order: 0,
    });
    expect(
      computeEpsilon({ accountant: "prv", sampleRate: 0.5, noiseMultiplier: 1, steps: 0, delta: 1e-5 })
        .epsilon,
    ).toBe(0);
  });

  it("validates every field and names it", () => {
    expect(
      fieldsOf(() =>
        computeEpsilon({
          accountant: "gdp" as "rdp",
          sampleRate: 0.1,
          noiseMultiplier: 1,
          steps: 1,
          delta: 1e-5,
        }),
      ),
    ).toEqual(["accountant"]);
    expect(
      fieldsOf(() =>
        computeEpsilon({ accountant: "rdp", sampleRate: -0.1, noiseMultiplier: 1, steps: 1, delta: 1e-5 }),
      ),
    ).toEqual(["history[0].sampleRate"]);
    expect(
      fieldsOf(() =>
        computeEpsilon({ accountant: "rdp", sampleRate: 0.1, noiseMultiplier: 1, steps: 2.5, delta: 1e-5 }),
      ),
    ).toEqual(["history[0].steps"]);
    expect(
      fieldsOf(() =>
        computeEpsilon({ accountant: "prv", sampleRate: 0.1, noiseMultiplier: 1, steps: 1, delta: 2 }),
      ),
    ).toEqual(["delta"]);
  });
});

describe("createAccountant", () => {
  it("builds the named accountant from a stored history", () => {
    const h = [{ noiseMultiplier: 1, sampleRate: 0.01, steps: 10 }];
    const rdp = createAccountant("rdp", h);
    expect(rdp).toBeInstanceOf(RdpAccountant);
    expect(rdp.history).toEqual(h);
    expect(createAccountant("prv", h)).toBeInstanceOf(PrvAccountant);
    expect(() => createAccountant("x" as "rdp")).toThrow(ValidationError);
  });
});

describe("getNoiseMultiplier", () => {
  it("returns σ whose epsilon lies in (target - 0.01, target], and round-trips through computeEpsilon", () => {
    for (const input of [
      { targetEpsilon: 3, delta: 1e-5, sampleRate: 256 / 60000, epochs: 60 },
      { targetEpsilon: 1, delta: 1e-5, sampleRate: 0.01, steps: 1000 },
      { targetEpsilon: 0.5, delta: 1e-6, sampleRate: 0.001, steps: 5000 },
    ] as NoiseMultiplierInput[]) {
      const sigma = getNoiseMultiplier(input);
      const steps = input.steps ?? Math.trunc(input.epochs! / input.sampleRate);
      const { epsilon } = computeEpsilon({
        accountant: "rdp",
        sampleRate: input.sampleRate,
        noiseMultiplier: sigma,
        steps,
        delta: input.delta,
      });
      expect(epsilon).toBeLessThanOrEqual(input.targetEpsilon);
      expect(epsilon).toBeGreaterThan(input.targetEpsilon - 0.01);
    }
  });

  it("returns exactly the σ Opacus's search returns (Python transcription of get_noise_multiplier)", () => {
    for (const c of transcription.noise_multiplier) {
      const sigma = getNoiseMultiplier({
        targetEpsilon: c.target_epsilon,
        delta: c.delta,
        sampleRate: c.sample_rate,
        ...(c.epochs !== null ? { epochs: c.epochs } : { steps: c.steps! }),
      });
      expect(sigma).toBe(c.noise_multiplier);
    }
  });

  it("works with the PRV accountant (small run)", () => {
    const sigma = getNoiseMultiplier({
      accountant: "prv",
      targetEpsilon: 2,
      delta: 1e-5,
      sampleRate: 0.05,
      steps: 20,
    });
    const eps = computeEpsilon({
      accountant: "prv",
      sampleRate: 0.05,
      noiseMultiplier: sigma,
      steps: 20,
      delta: 1e-5,
    });
    expect(eps.epsilon).toBeLessThanOrEqual(2);
    expect(eps.epsilon).toBeGreaterThan(1.99);
  });

  it("declares an unreachable target instead of looping", () => {
    // With q = 1 the conversion overhead alone exceeds a tiny target at any σ <= 1e6.
    expect(() => getNoiseMultiplier({ targetEpsilon: 1e-4, delta: 1e-5, sampleRate: 1, steps: 1 })).toThrow(
      expect.objectContaining({ code: "PRIVACY_TARGET_UNREACHABLE" }),
    );
  });

  it("validates its input and names the field", () => {
    expect(fieldsOf(() => getNoiseMultiplier({ targetEpsilon: 1, delta: 1e-5, sampleRate: 0.1 }))).toEqual([
      "epochs",
    ]);
    expect(
      fieldsOf(() =>
        getNoiseMultiplier({ targetEpsilon: 1, delta: 1e-5, sampleRate: 0.1, steps: 10, epochs: 1 }),
      ),
    ).toEqual(["epochs"]);
    expect(
      fieldsOf(() => getNoiseMultiplier({ targetEpsilon: 0, delta: 1e-5, sampleRate: 0.1, steps: 10 })),
    ).toEqual(["targetEpsilon"]);
    expect(
      fieldsOf(() =>
        getNoiseMultiplier({
          targetEpsilon: 1,
          delta: 1e-5,
          sampleRate: 0.1,
          steps: 10,
          epsilonTolerance: -1,
        }),
      ),
    ).toEqual(["epsilonTolerance"]);
    expect(
      fieldsOf(() => getNoiseMultiplier({ targetEpsilon: 1, delta: 1e-5, sampleRate: 0, epochs: 3 })),
    ).toEqual(["sampleRate"]);
  });
});
