// `enclave simulate` with images: an IDX dataset split non-IID over the sites, each site's shard
// written as IDX and read back through its own Data Sentry, the FashionCNN trained under DP-SGD.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  datasetToIdx,
  FASHION_MNIST_CLASSES,
  loadDataset,
  syntheticFashionMnistLike,
} from "../data/index.js";
import { parseSafetensors } from "../model/safetensors.js";
import { runSimulation, type SimulationSummary } from "./simulation.js";

describe("simulate: a CNN over IDX images at non-IID sites", () => {
  let root: string;
  let summary: SimulationSummary;
  const sitesDir = () => join(root, "sites");

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "enclave-image-sim-"));
    const { images, labels } = datasetToIdx(syntheticFashionMnistLike(240, "image-sim"));
    writeFileSync(join(root, "images.idx"), images);
    writeFileSync(join(root, "labels.idx"), labels);
    writeFileSync(
      join(root, "images.schema.json"),
      JSON.stringify({
        format: "idx",
        labels_file: "labels.idx",
        image_shape: [28, 28],
        classes: FASHION_MNIST_CLASSES,
      }),
    );
    summary = await runSimulation({
      clients: 3,
      rounds: 2,
      strategy: "FED_AVG",
      datasetFile: join(root, "images.idx"),
      split: { kind: "dirichlet", alpha: 0.5 },
      modelArch: "FashionCNN",
      targetEpsilon: 3,
      plan: { epochs: 1, batchSize: 32, learningRate: 0.5, momentum: 0 },
      seed: "image-sim",
      reportDir: join(root, "report"),
      sitesDir: sitesDir(),
    });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("completes within every site's budget and returns the CNN's tensors in PyTorch's names", () => {
    expect(summary.status).toBe("completed");
    expect(summary.job.model_arch).toBe("FashionCNN");
    for (const c of summary.clients) expect(c.epsilon).toBeLessThanOrEqual(3);
    const model = parseSafetensors(readFileSync(join(root, "report", "global_model.safetensors"))).tensors;
    expect(model.get("layers.0.weight")?.shape).toEqual([16, 1, 8, 8]);
    expect(model.get("layers.3.weight")?.shape).toEqual([32, 16, 4, 4]);
    expect(Number.isFinite(summary.final.accuracy)).toBe(true);
  });

  it("writes each site's shard as IDX images that its Data Sentry reads back at 28x28", async () => {
    const id = summary.job.dataset_id;
    let rows = 0;
    for (const site of summary.job.clients) {
      const data = join(sitesDir(), site, "data");
      expect(existsSync(join(data, id))).toBe(true);
      const { dataset, schema } = await loadDataset(data, id);
      expect(schema.format).toBe("idx");
      expect(dataset.exampleShape).toEqual([1, 28, 28]);
      rows += dataset.rows;
    }
    expect(rows).toBeGreaterThan(150); // 80% of 240 rows split between the sites
  });
});
