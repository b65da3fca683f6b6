import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../random.js";
import { fuzz, type FuzzReport } from "./fuzz.js";
import { mutate, mutateOnce, MUTATIONS } from "./mutate.js";
import { fuzzTargets } from "./targets.js";

/**
 * Bounded mutation fuzzing. CI budget: ENCLAVE_FUZZ_SECONDS per parser (default 1.5 s), half of it per
 * verifier. Longer runs: ENCLAVE_FUZZ_SECONDS=120 npx vitest run src/attestation/fuzz
 * ENCLAVE_FUZZ_SEED changes the mutation stream (default fixed, so CI failures reproduce).
 */
const SECONDS = Number(process.env.ENCLAVE_FUZZ_SECONDS ?? "1.5");
const SEED = process.env.ENCLAVE_FUZZ_SEED ?? "ci";
const VECTORS = fileURLToPath(new URL("../../../test/vectors/", import.meta.url));
const { parsers, verifiers } = fuzzTargets(VECTORS);
const timeout = (s: number) => Math.max(30_000, s * 1000 * 3 + 20_000);

function assertClean(r: FuzzReport): void {
  const first = r.failures[0];
  expect(
    r.failures,
    first
      ? `${r.target}: ${first.kind} ${first.error}; input (hex, seed ${r.seed}): ${first.input.slice(0, 400)}...`
      : "",
  ).toEqual([]);
  // Not vacuous: the run mutated inputs and the parser both accepted some and rejected many.
  expect(r.iterations).toBeGreaterThan(5);
  expect(r.typedErrors).toBeGreaterThan(0);
}

describe("mutator", () => {
  it("is deterministic for a seed and exercises every mutation", () => {
    const input = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    const a = new SeededRandom("m");
    const b = new SeededRandom("m");
    for (let i = 0; i < 50; i++)
      expect(Buffer.from(mutate(input, a)).equals(Buffer.from(mutate(input, b)))).toBe(true);
    const seen = new Set<string>();
    const rng = new SeededRandom("ops");
    for (let i = 0; i < 500; i++) {
      const { bytes, op } = mutateOnce(input, rng, [new Uint8Array(64).fill(7)]);
      seen.add(op);
      if (op === "truncate") expect(bytes.length).toBeLessThanOrEqual(input.length);
      if (op === "extend") expect(bytes.length).toBeGreaterThan(input.length);
    }
    expect([...seen].sort()).toEqual([...MUTATIONS].sort());
  });

  it("the harness flags untyped exceptions and slow inputs", async () => {
    const r = await fuzz(
      {
        name: "broken",
        seeds: [new Uint8Array(8)],
        run: (b) => {
          if (b.length === 8 && b[0] === 0) return 1;
          throw new TypeError("boom");
        },
      },
      { budgetMs: 200, seed: 1, maxFailures: 1 },
    );
    expect(r.failures[0]).toMatchObject({ kind: "untyped-exception", error: "TypeError: boom" });
    const slow = await fuzz(
      { name: "slow", seeds: [new Uint8Array(1)], run: () => new Promise((res) => setTimeout(res, 30)) },
      { budgetMs: 100, slowInputMs: 10, maxFailures: 1 },
    );
    expect(slow.failures[0]?.kind).toBe("slow-input");
  });
});

describe("fuzzing the evidence parsers", () => {
  for (const target of parsers) {
    it(
      `${target.name}: only results or typed errors`,
      async () => {
        const r = await fuzz(target, { budgetMs: SECONDS * 1000, seed: SEED });
        assertClean(r);
      },
      timeout(SECONDS),
    );
  }
});

describe("fuzzing the verifiers and the appraisal", () => {
  for (const target of verifiers) {
    it(
      `${target.name}: only results or typed errors`,
      async () => {
        const r = await fuzz(target, { budgetMs: (SECONDS * 1000) / 2, seed: SEED });
        assertClean(r);
      },
      timeout(SECONDS),
    );
  }
});
