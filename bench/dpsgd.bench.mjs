// DP-SGD and non-private training throughput (examples/s) through the same engine, end to end:
// Poisson sampling, forward/backward, ghost-norm clipping, CSPRNG noise, Privacy Guard with its
// persistent ledger (embedded PostgreSQL), optimizer step.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findFashionMnist, loadFashionMnist } from "../dist/data/index.js";
import { Network } from "../dist/model/network.js";
import { buildModelSpec } from "../dist/model/registry.js";
import { createAccountant } from "../dist/privacy/accountant/index.js";
import { BudgetLedger } from "../dist/privacy/budget-ledger.js";
import { PrivacyGuard } from "../dist/privacy/guard.js";
import { CryptoRandom, SeededRandom } from "../dist/random.js";
import { openDatabase } from "../dist/storage/database.js";
import { kernels as defaultKernels } from "../dist/tensor/backend.js";
import { SgdOptimizer } from "../dist/training/optimizer.js";
import { train } from "../dist/training/trainer.js";

const CONFIGS = {
  a: { hidden: [64], input: 30, classes: 2, batch: 64, rows: 20_000, seconds: 2.5 },
  b: { hidden: [256, 128], input: 784, classes: 10, batch: 256, rows: 60_000, seconds: 6 },
};

/** Config b trains on real Fashion-MNIST when it is on this machine, else random data of the same shape. */
async function benchData(c) {
  if (c.input === 784) {
    const dir = findFashionMnist();
    if (dir) {
      const ds = await loadFashionMnist(dir, "train");
      return { data: ds, source: "fashion-mnist" };
    }
  }
  return { data: syntheticData(c), source: "synthetic" };
}

function syntheticData(c) {
  const rng = new SeededRandom(`bench-${c.input}`);
  const features = new Float32Array(c.rows * c.input);
  for (let i = 0; i < features.length; i++) features[i] = rng.uniform() * 2 - 1;
  const labels = new Int32Array(c.rows);
  for (let i = 0; i < c.rows; i++) labels[i] = Math.floor(rng.uniform() * c.classes);
  return { features, labels, rows: c.rows, numFeatures: c.input };
}

async function measure(k, c, data, dp, db) {
  const spec = buildModelSpec("SimpleMLP", { input_dim: c.input, num_classes: c.classes, hidden: c.hidden });
  const net = new Network(spec, k, new SeededRandom(1));
  const stepsPerEpoch = Math.ceil(data.rows / c.batch);
  // Warm-up, then time a fixed number of steps sized to roughly `seconds`.
  let steps = 20;
  let best = 0;
  for (let rep = 0; rep < 3; rep++) {
    let guard;
    if (dp) {
      const ledger = await BudgetLedger.open(db);
      guard = await new PrivacyGuard({
        ledger,
        datasetId: `bench-${Math.random()}`,
        jobId: "bench",
        targetEpsilon: 5,
        delta: 1e-5,
        noiseMultiplier: 1.0,
        accountantFromHistory: (h) => createAccountant("rdp", h),
        reserveChunk: 256,
      }).init();
    }
    const t0 = process.hrtime.bigint();
    const res = await train(net, k, data, {
      epochs: Math.ceil(steps / stepsPerEpoch),
      batchSize: c.batch,
      maxSteps: steps,
      optimizer: new SgdOptimizer(k, 0.05),
      sampling: new CryptoRandom(),
      dp: dp ? { noiseMultiplier: 1.0, maxGradNorm: 1.0, guard, noise: new CryptoRandom() } : undefined,
    });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (res.stoppedBy) throw new Error(res.stoppedBy.message);
    const rate = res.examplesProcessed / secs;
    if (rep > 0) best = Math.max(best, rate); // rep 0 is warm-up
    steps = Math.max(20, Math.round((c.seconds * rate) / c.batch / 2));
  }
  return best;
}

export async function run({ json, filter } = {}) {
  const k = defaultKernels();
  const ws = mkdtempSync(join(tmpdir(), "enclave-bench-"));
  const db = await openDatabase({ workspace: ws, url: "" });
  const records = [];
  try {
    for (const [name, c] of Object.entries(CONFIGS)) {
      if (filter && !`dpsgd-${name}`.includes(filter) && !"dpsgd".includes(filter)) continue;
      const { data, source } = await benchData(c);
      const nonprivate = await measure(k, c, data, false, db);
      const dp = await measure(k, c, data, true, db);
      records.push({
        bench: "dpsgd",
        config: name,
        mode: "nonprivate",
        backend: k.name,
        data: source,
        examples_per_s: Math.round(nonprivate),
      });
      records.push({
        bench: "dpsgd",
        config: name,
        mode: "dp",
        backend: k.name,
        data: source,
        examples_per_s: Math.round(dp),
        ratio_vs_nonprivate: Number((dp / nonprivate).toFixed(3)),
      });
      if (!json) {
        console.log(
          `dpsgd config ${name} (${[c.input, ...c.hidden, c.classes].join("-")}, batch ${c.batch}, ${k.name}, ${source} data): ` +
            `non-private ${Math.round(nonprivate)} ex/s, DP-SGD ${Math.round(dp)} ex/s (DP/non-private ${(dp / nonprivate).toFixed(2)})`,
        );
      }
    }
  } finally {
    await db.close();
    rmSync(ws, { recursive: true, force: true });
  }
  return records;
}
