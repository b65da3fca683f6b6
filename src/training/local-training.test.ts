import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PrivacyBudgetInsufficientError, runLocalTraining } from "./local-training.js";

const dataset = new URL("../../data/breast-cancer-wisconsin.csv", import.meta.url).pathname;

describe("DP training on breast-cancer (Wisconsin diagnostic)", () => {
  it("reaches >= 93% test accuracy at epsilon <= 3, delta 1e-5, against a non-private baseline", async () => {
    const accuracies: number[] = [];
    const baselines: number[] = [];
    // Three seeds (split, init, sampling, noise all differ): the claim must not hinge on one lucky draw.
    for (const seed of [1, 2, 3]) {
      const { report } = await runLocalTraining({
        datasetFile: dataset,
        arch: "SimpleMLP",
        hidden: [32],
        epochs: 20,
        targetEpsilon: 3,
        delta: 1e-5,
        maxGradNorm: 1,
        batchSize: 32,
        learningRate: 0.05,
        momentum: 0.9,
        accountant: "rdp",
        workspace: mkdtempSync(join(tmpdir(), "enclave-train-")),
        testFraction: 0.2,
        seed,
        baseline: true,
      });
      expect(report.privacy.epsilon).toBeLessThanOrEqual(3);
      expect(report.privacy.epsilon).toBeGreaterThan(2.9); // the calibrated sigma spends the budget
      expect(report.training.steps).toBe(report.training.planned_steps);
      expect(report.stopped_by).toBeUndefined();
      accuracies.push(report.accuracy);
      baselines.push(report.baseline!.accuracy);
    }
    const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
    console.log(
      `breast-cancer: DP accuracy ${accuracies.map((a) => (a * 100).toFixed(1))} (mean ${(mean(accuracies) * 100).toFixed(2)}%), non-private ${baselines.map((a) => (a * 100).toFixed(1))}`,
    );
    expect(mean(accuracies)).toBeGreaterThanOrEqual(0.93);
    expect(Math.min(...accuracies)).toBeGreaterThanOrEqual(0.9);
    expect(mean(baselines)).toBeGreaterThanOrEqual(0.95);
  });

  it("stops cleanly at the budget and keeps the last in-budget model", async () => {
    const workspace = mkdtempSync(join(tmpdir(), "enclave-train-"));
    const common = {
      datasetFile: dataset,
      arch: "LogisticRegression",
      epochs: 10,
      targetEpsilon: 3,
      noiseMultiplier: 1.0,
      delta: 1e-5,
      maxGradNorm: 1,
      batchSize: 32,
      learningRate: 0.05,
      momentum: 0,
      accountant: "rdp" as const,
      workspace,
      testFraction: 0.2,
      seed: 9,
    };
    const first = await runLocalTraining(common);
    expect(first.report.stopped_by?.code).toBe("PRIVACY_BUDGET_EXHAUSTED");
    expect(first.report.training.steps).toBeLessThan(first.report.training.planned_steps);
    expect(first.report.training.steps).toBeGreaterThanOrEqual(0.1 * first.report.training.planned_steps);
    expect(first.report.privacy.epsilon).toBeLessThanOrEqual(3);
    expect(Number.isFinite(first.report.accuracy)).toBe(true);
    // The same data under the same workspace has nothing left: the next job is refused before
    // training, saying what was spent and where the ledger is.
    const second = runLocalTraining(common);
    await expect(second).rejects.toBeInstanceOf(PrivacyBudgetInsufficientError);
    const err = (await second.catch((e: unknown) => e)) as PrivacyBudgetInsufficientError;
    expect(err.spentEpsilon).toBeCloseTo(first.report.privacy.epsilon, 12);
    expect(err.affordableSteps).toBeLessThan(0.1 * err.plannedSteps);
    expect(err.ledger).toBe(join(workspace, "db"));
    expect(err.message).toContain("enclave ledger show");
    // A target the first job already passed: not a single step fits.
    await expect(runLocalTraining({ ...common, targetEpsilon: 1 })).rejects.toMatchObject({
      code: "PRIVACY_BUDGET_INSUFFICIENT",
      affordableSteps: 0,
    });
  });
});
