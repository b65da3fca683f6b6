import { afterEach, describe, expect, it } from "vitest";
import { cli } from "../../../test/support/cli.js";

afterEach(() => {
  process.exitCode = undefined;
});

const base = [
  "budget",
  "--sample-rate",
  "0.01",
  "--noise-multiplier",
  "1.0",
  "--steps",
  "100",
  "--delta",
  "1e-6",
];

describe("enclave budget", () => {
  it("prints epsilon, delta and the optimal order for RDP (Opacus reference case: 1.50739, α = 8.9)", async () => {
    const r = await cli(...base, "--accountant", "rdp");
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/delta +0\.000001\n/);
    expect(r.out).toMatch(/rdp +epsilon 1\.507389 +\(optimal order 8\.9\)/);
    expect(r.out).not.toMatch(/prv/);
  });

  it("shows both accountants by default, PRV below RDP", async () => {
    const r = await cli(...base);
    expect(r.code, r.err).toBe(0);
    const rdp = Number(/rdp +epsilon (\S+)/.exec(r.out)![1]);
    const prv = Number(/prv +epsilon (\S+)/.exec(r.out)![1]);
    expect(prv).toBeLessThan(rdp);
    expect(prv).toBeGreaterThan(0.94);
  });

  it("--json prints one JSON object", async () => {
    const r = await cli(...base, "--json");
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({
      sampleRate: 0.01,
      noiseMultiplier: 1,
      steps: 100,
      delta: 1e-6,
      rdp: { order: 8.9 },
    });
    expect(j.rdp.epsilon).toBeCloseTo(1.5073894359634168, 14);
    expect(j.prv.epsilon).toBeLessThan(j.rdp.epsilon);
    expect(j.prv.lower).toBeLessThan(j.prv.epsilon);
    expect(r.out.trim().split("\n")).toHaveLength(1);
  });

  it('writes an unbounded epsilon as "Infinity" in JSON (σ = 0), never as null or 0', async () => {
    const r = await cli(
      "budget",
      "--sample-rate",
      "0.1",
      "--noise-multiplier",
      "0",
      "--steps",
      "5",
      "--delta",
      "1e-5",
      "--json",
    );
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.rdp.epsilon).toBe("Infinity");
    expect(j.prv.epsilon).toBe("Infinity");
  });

  it("reports why PRV is unavailable next to RDP, and fails when PRV alone was asked for", async () => {
    const tiny = [
      "budget",
      "--sample-rate",
      "0.01",
      "--noise-multiplier",
      "1",
      "--steps",
      "100",
      "--delta",
      "1e-15",
    ];
    const both = await cli(...tiny);
    expect(both.code, both.err).toBe(0);
    expect(both.out).toMatch(/prv +unavailable \[PRV_DELTA_TOO_SMALL\]/);
    const alone = await cli(...tiny, "--accountant", "prv");
    expect(alone.code).toBe(1);
    expect(alone.err).toMatch(/PRV_DELTA_TOO_SMALL/);
  });

  it("rejects bad flags with an error naming each flag (and not echoing the value)", async () => {
    const r = await cli(
      "budget",
      "--sample-rate",
      "1.5",
      "--noise-multiplier",
      "abc",
      "--steps",
      "2.5",
      "--delta",
      "0",
    );
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/VALIDATION_FAILED/);
    for (const flag of ["--sample-rate", "--noise-multiplier", "--steps", "--delta"])
      expect(r.err).toContain(flag);
    expect(r.err).not.toContain("abc");
    const acc = await cli(...base, "--accountant", "gdp");
    expect(acc.code).toBe(1);
    expect(acc.err).toContain("--accountant");
    const missing = await cli("budget", "--sample-rate", "0.1", "--steps", "3", "--delta", "1e-5");
    expect(missing.code).not.toBe(0);
    expect(missing.err).toContain("--noise-multiplier");
  });
});
