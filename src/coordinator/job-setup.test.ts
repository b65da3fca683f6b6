import { describe, expect, it } from "vitest";
import { BUNDLED_DATASET } from "../data/bundled.js";
import { parseContract } from "../schemas/contract.js";
import { FederationJob } from "../schemas/federation.js";
import { coordinatorJobSetup } from "./job-setup.js";

const job = (dataset_id: string) =>
  parseContract(
    FederationJob,
    {
      job_id: "0d9c6a1e-8d3e-4a52-9b0e-2f6f1b2c3d4e",
      clients: ["a", "b"],
      min_clients: 1,
      rounds: 1,
      strategy: "FED_AVG",
      privacy: { mechanism: "DP_SGD", noise_multiplier: 1, max_grad_norm: 1, target_epsilon: 3, delta: 1e-5 },
      dataset_id,
      model_arch: "SimpleMLP",
    },
    "FederationJob",
  );

describe("coordinatorJobSetup", () => {
  it("scores each round on the held-out data it is given", async () => {
    const setup = await coordinatorJobSetup({ evalData: BUNDLED_DATASET })(
      job("breast-cancer-wisconsin.csv"),
    );
    const m = setup.evaluate(setup.initial);
    expect(m.accuracy).toBeGreaterThanOrEqual(0);
    expect(m.accuracy).toBeLessThanOrEqual(1);
    expect(Number.isFinite(m.loss)).toBe(true);
  });

  it("without held-out data shapes the model from the bundled dataset the job names, and its accuracy is unknown", async () => {
    const setup = await coordinatorJobSetup({})(job("breast-cancer-wisconsin.csv"));
    // The bundled breast-cancer data: 30 features, 2 classes; SimpleMLP [32].
    expect([...setup.initial].map(([name, t]) => [name, t.shape])).toEqual([
      ["layers.0.weight", [32, 30]],
      ["layers.0.bias", [32]],
      ["layers.2.weight", [2, 32]],
      ["layers.2.bias", [2]],
    ]);
    const m = setup.evaluate(setup.initial);
    expect(m.accuracy).toBeNaN();
    expect(m.loss).toBeNaN();
    expect(JSON.parse(JSON.stringify(m))).toEqual({ accuracy: null, loss: null });
  });

  it("without held-out data refuses a job whose dataset is not bundled, naming --eval-data", async () => {
    await expect(coordinatorJobSetup({})(job("site-only/records.csv"))).rejects.toMatchObject({
      code: "JOB_SETUP_FAILED",
      message: expect.stringContaining("--eval-data"),
    });
  });
});
