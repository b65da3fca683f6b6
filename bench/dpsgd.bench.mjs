// DP-SGD and non-private training throughput (examples/s) through the same engine, end to end:
// Poisson sampling, forward/backward, ghost-norm clipping, CSPRNG noise, Privacy Guard with its
// persistent ledger (embedded PostgreSQL), optimizer step.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { findFashionMnist, loadFashionMnist } from "../dist/data/index.js";
import { Network } from "../dist/model/network.js";
import { buildModelSpec } from "../dist/model/registry.js";
import { layerShapes } from "../dist/schemas/model.js";
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
  // Opacus's MNIST example network (SampleConvNet), as in its benchmarks: batch 256, 28x28.
  cnn: { arch: "SampleConvNet", input: 784, classes: 10, batch: 256, rows: 60_000, seconds: 6 },
};

function specOf(c) {
  if (c.arch) return buildModelSpec(c.arch, { input_dim: c.input, num_classes: c.classes });
  return buildModelSpec("SimpleMLP", { input_dim: c.input, num_classes: c.classes, hidden: c.hidden });
}

/**
 * Nominal training flops per example: 2 per multiply-add, 3 matrix products per layer (forward,
 * input gradient, weight gradient); per-example norms and noise not counted.
 */
function trainingFlops(spec) {
  const { shapes } = layerShapes(spec.input_shape ?? [spec.input_dim], spec.layers);
  let macs = 0;
  spec.layers.forEach((l, i) => {
    const out = shapes[i];
    if (l.type === "linear") macs += l.in_features * l.out_features;
    if (l.type === "conv2d") {
      const [kh, kw] = typeof l.kernel_size === "number" ? [l.kernel_size, l.kernel_size] : l.kernel_size;
      macs += out[0] * out[1] * out[2] * (l.in_channels / l.groups) * kh * kw;
    }
  });
  return 6 * macs;
}

/** The kernels' own gemm rate on a square 512 problem in this run: the peak the CNN's GFLOP/s is read against. */
function gemmPeak(k) {
  const n = 512;
  const a = new Float32Array(n * n).fill(0.5);
  const b = new Float32Array(n * n).fill(0.25);
  const c = new Float32Array(n * n);
  k.gemm(false, false, n, n, n, a, b, c, 0);
  let reps = 0;
  const t0 = process.hrtime.bigint();
  let secs = 0;
  while (secs < 0.5) {
    k.gemm(false, false, n, n, n, a, b, c, 0);
    reps++;
    secs = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  return (2 * n * n * n * reps) / secs / 1e9;
}

/** PyTorch's non-private step on the same network, where a python3 with torch is installed. */
function torchNonPrivate(seconds) {
  const script = join(dirname(fileURLToPath(import.meta.url)), "torch_sampleconvnet.py");
  for (const python of ["/usr/bin/python3", "python3"]) {
    const r = spawnSync(python, [script, String(seconds)], { encoding: "utf8", timeout: 300_000 });
    if (r.status === 0) return JSON.parse(r.stdout.trim().split("\n").pop());
  }
  return { absent: "no python3 with torch (apt-get install python3-torch)" };
}

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
  const spec = specOf(c);
  const net = new Network(spec, k, new SeededRandom(1));
  let peakRss = 0;
  let peakBuffers = 0;
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
      onStep: () => {
        const m = process.memoryUsage();
        peakRss = Math.max(peakRss, m.rss);
        peakBuffers = Math.max(peakBuffers, m.arrayBuffers);
      },
    });
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    if (res.stoppedBy) throw new Error(res.stoppedBy.message);
    const rate = res.examplesProcessed / secs;
    if (rep > 0) best = Math.max(best, rate); // rep 0 is warm-up
    steps = Math.max(20, Math.round((c.seconds * rate) / c.batch / 2));
  }
  return {
    rate: best,
    rssMb: peakRss / 2 ** 20,
    buffersMb: peakBuffers / 2 ** 20,
    flops: trainingFlops(spec),
  };
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
      const np = await measure(k, c, data, false, db);
      const dpm = await measure(k, c, data, true, db);
      const nonprivate = np.rate;
      const dp = dpm.rate;
      const torch = c.arch ? torchNonPrivate(c.seconds) : null;
      const peak = c.arch ? gemmPeak(k) : null;
      const extra = (m) => ({
        gflops: Number(((m.rate * m.flops) / 1e9).toFixed(2)),
        kernel_peak_gflops: Number(peak.toFixed(1)),
        fraction_of_peak: Number(((m.rate * m.flops) / 1e9 / peak).toFixed(3)),
        peak_rss_mb: Math.round(m.rssMb),
        peak_array_buffers_mb: Math.round(m.buffersMb),
      });
      const vsTorch = torch?.examples_per_s
        ? {
            torch_nonprivate_examples_per_s: torch.examples_per_s,
            ratio_vs_torch_nonprivate: Number((dp / torch.examples_per_s).toFixed(3)),
          }
        : torch
          ? { torch_nonprivate: torch.absent }
          : {};
      records.push({
        bench: "dpsgd",
        config: name,
        mode: "nonprivate",
        backend: k.name,
        data: source,
        examples_per_s: Math.round(nonprivate),
        ...(c.arch ? extra(np) : {}),
      });
      records.push({
        bench: "dpsgd",
        config: name,
        mode: "dp",
        backend: k.name,
        data: source,
        examples_per_s: Math.round(dp),
        ratio_vs_nonprivate: Number((dp / nonprivate).toFixed(3)),
        ...(c.arch ? { ...extra(dpm), ...vsTorch } : {}),
      });
      if (!json) {
        const net = c.arch ?? [c.input, ...c.hidden, c.classes].join("-");
        const more = c.arch
          ? `; ${extra(dpm).gflops} GFLOP/s DP of a ${extra(dpm).kernel_peak_gflops} GFLOP/s gemm peak (${(100 * extra(dpm).fraction_of_peak).toFixed(1)}%), peak RSS ${extra(dpm).peak_rss_mb} MB` +
            (torch?.examples_per_s
              ? `; PyTorch non-private ${torch.examples_per_s} ex/s (DP/PyTorch ${(dp / torch.examples_per_s).toFixed(2)})`
              : `; PyTorch: ${torch.absent}`)
          : "";
        console.log(
          `dpsgd config ${name} (${net}, batch ${c.batch}, ${k.name}, ${source} data): ` +
            `non-private ${Math.round(nonprivate)} ex/s, DP-SGD ${Math.round(dp)} ex/s (DP/non-private ${(dp / nonprivate).toFixed(2)})${more}`,
        );
      }
    }
  } finally {
    await db.close();
    rmSync(ws, { recursive: true, force: true });
  }
  return records;
}
