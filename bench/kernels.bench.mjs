// Kernel throughput: gemm GFLOP/s (median of several timed runs) for the shapes DP-SGD uses, on
// the native backend (every CPU path this machine supports; the best one with 1 and 2 threads),
// the TypeScript backend, and a naive i-k-j TypeScript loop measured in the same run as the
// baseline (the machine is shared and noisy, so only ratios within one run are comparable).
// Then the other hot ops, native vs TypeScript, in microseconds per call.
//   --filter kernels-gemm | kernels-ops  runs one half.
import { performance } from "node:perf_hooks";
import { NativeKernels, nativeStatus } from "../dist/tensor/native-kernels.js";
import { TypeScriptKernels } from "../dist/tensor/ts-kernels.js";
import { SeededRandom } from "../dist/random.js";

const RUNS = 7;
const RUN_MS = 60;

/** The baseline: C = op(A) op(B) by the textbook i-k-j loop (contiguous inner loop for N/N). */
function naiveGemm(ta, tb, m, n, k, a, b, c) {
  c.fill(0, 0, m * n);
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let p = 0; p < k; p++) {
      const aip = ta ? a[p * m + i] : a[i * k + p];
      if (tb) for (let j = 0; j < n; j++) c[ci + j] += aip * b[j * k + p];
      else {
        const bp = p * n;
        for (let j = 0; j < n; j++) c[ci + j] += aip * b[bp + j];
      }
    }
  }
}

/** Median over RUNS of (calls per second), each run repeating fn for at least RUN_MS. */
function callsPerSecond(fn) {
  fn(); // warm-up (JIT, packing buffers, thread start)
  fn();
  const rates = [];
  for (let r = 0; r < RUNS; r++) {
    globalThis.gc?.();
    let calls = 0;
    const t0 = performance.now();
    let t;
    do {
      fn();
      calls++;
      t = performance.now();
    } while (t - t0 < RUN_MS);
    rates.push((calls * 1000) / (t - t0));
  }
  rates.sort((x, y) => x - y);
  return rates[RUNS >> 1];
}

function randomArray(rng, n) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 2 * rng.uniform() - 1;
  return a;
}

function maxRelDiff(x, ref) {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(x[i] - ref[i]));
  return worst / (scale || 1);
}

const round = (v, d = 2) => Number(v.toFixed(d));

function gemmBackends() {
  const list = [{ backend: "typescript", threads: 1, k: new TypeScriptKernels() }];
  const status = nativeStatus();
  if (!status.available) return { list, note: status.reason };
  const [best, ...others] = status.paths;
  list.unshift({ backend: `native-${best}`, threads: 2, k: NativeKernels.create(best, 2) });
  list.unshift({ backend: `native-${best}`, threads: 1, k: NativeKernels.create(best, 1) });
  for (const p of others) list.push({ backend: `native-${p}`, threads: 1, k: NativeKernels.create(p, 1) });
  return { list };
}

// [label, transA, transB, m, n, k]: the forward layer of 784-256-128-10 at batch 256, the
// 30-64-2 layer at batch 64, and the weight gradient A^T G (A 256x784, G 256x256).
const GEMM_SHAPES = [
  ["256x784@784x256", false, false, 256, 256, 784],
  ["64x30@30x64", false, false, 64, 64, 30],
  ["A^T·G (A 256x784, G 256x256)", true, false, 784, 256, 256],
];

function benchGemm(records) {
  const rng = new SeededRandom("bench-kernels");
  const { list, note } = gemmBackends();
  if (note) console.log(`kernels: native backend unavailable (${note}); measuring TypeScript only`);
  for (const [shape, ta, tb, m, n, k] of GEMM_SHAPES) {
    const flops = 2 * m * n * k;
    // A is stored k x m when transposed; sizes are the same either way.
    const a = randomArray(rng, m * k);
    const b = randomArray(rng, k * n);
    const ref = new Float32Array(m * n);
    const base = callsPerSecond(() => naiveGemm(ta, tb, m, n, k, a, b, ref)) * flops * 1e-9;
    records.push({
      op: "gemm",
      shape,
      backend: "naive-ikj-ts",
      threads: 1,
      gflops: round(base),
      ratio_vs_baseline: 1,
    });
    for (const { backend, threads, k: kern } of list) {
      const c = new Float32Array(m * n);
      kern.gemm(ta, tb, m, n, k, a, b, c, 0);
      const err = maxRelDiff(c, ref);
      if (!(err < 1e-4)) throw new Error(`${backend} gemm ${shape} disagrees with the baseline (rel ${err})`);
      const g = callsPerSecond(() => kern.gemm(ta, tb, m, n, k, a, b, c, 0)) * flops * 1e-9;
      records.push({
        op: "gemm",
        shape,
        backend,
        threads,
        gflops: round(g),
        ratio_vs_baseline: round(g / base, 1),
      });
    }
  }
  // Per-call cost of a tiny gemm: what the small model pays on every layer.
  const t4 = randomArray(rng, 16);
  const c4 = new Float32Array(16);
  for (const { backend, threads, k: kern } of list.filter((x) => x.threads === 1).slice(0, 2)) {
    const us = 1e6 / callsPerSecond(() => kern.gemm(false, false, 4, 4, 4, t4, t4, c4, 0));
    records.push({
      op: "gemm",
      shape: "4x4@4x4 (call overhead)",
      backend,
      threads,
      us_per_call: round(us, 3),
    });
  }
}

function benchOps(records) {
  const status = nativeStatus();
  const ts = new TypeScriptKernels();
  const native = status.available ? NativeKernels.create(undefined, 1) : null;
  const rng = new SeededRandom("bench-ops");
  const params = 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10; // 784-256-128-10
  const x = randomArray(rng, 256 * 784);
  const g = randomArray(rng, 256 * 256);
  const s = randomArray(rng, 256);
  const out = new Float32Array(256 * 784);
  const out64 = new Float64Array(256);
  const noise = new Float32Array(params);
  const words = new Uint32Array(3 * Math.ceil(params / 2));
  rng.fillUint32(words);
  const logits = randomArray(rng, 256 * 10);
  const labels = new Int32Array(256).map((_, i) => i % 10);
  const loss = new Float64Array(256);
  const ops = [
    ["addGaussianNoise", `${params} params`, (k) => k.addGaussianNoise(noise, 1, words)],
    ["rowSumSquares", "256x784", (k) => k.rowSumSquares(x, 256, 784, out64)],
    ["colSum", "256x256", (k) => k.colSum(g, 256, 256, null, out, 0)],
    ["scaleRows", "256x256", (k) => k.scaleRows(g, 256, 256, s, out)],
    ["addRowVector", "256x256", (k) => k.addRowVector(out, 256, 256, s)],
    ["axpy", `${256 * 784}`, (k) => k.axpy(-0.01, x, out)],
    ["activation relu", "256x256", (k) => k.activation("relu", g, out)],
    ["activationBackward relu", "256x256", (k) => k.activationBackward("relu", g, g, out)],
    ["activation tanh", "256x256", (k) => k.activation("tanh", g, out)],
    ["softmaxCrossEntropy", "256x10", (k) => k.softmaxCrossEntropy(logits, labels, 256, 10, loss, out)],
  ];
  for (const [op, shape, fn] of ops) {
    const tsUs = 1e6 / callsPerSecond(() => fn(ts));
    records.push({ op, shape, backend: "typescript", us_per_call: round(tsUs, 1), ratio_vs_baseline: 1 });
    if (native) {
      const us = 1e6 / callsPerSecond(() => fn(native));
      records.push({
        op,
        shape,
        backend: native.name,
        us_per_call: round(us, 1),
        ratio_vs_baseline: round(tsUs / us, 1),
      });
    }
  }
}

export async function run({ json, filter } = {}) {
  const records = [];
  const want = (part) =>
    !filter || filter === "kernels" || !filter.startsWith("kernels-") || filter === `kernels-${part}`;
  if (want("gemm")) benchGemm(records);
  if (want("ops")) benchOps(records);
  if (!json) {
    console.log(
      "kernels: gemm in GFLOP/s (ratio vs naive i-k-j TS in this run); other ops in us per call (ratio vs TS)",
    );
    printTable(records);
  }
  return records;
}

function printTable(records) {
  const lines = records.map((r) => {
    const perf =
      r.gflops !== undefined
        ? `${r.gflops.toFixed(2).padStart(8)} GFLOP/s`
        : `${r.us_per_call.toFixed(3).padStart(10)} us  `;
    const ratio = r.ratio_vs_baseline !== undefined ? `x${r.ratio_vs_baseline}` : "";
    return `${r.op.padEnd(24)} ${r.shape.padEnd(30)} ${`${r.backend}${r.threads > 1 ? ` (${r.threads} thr)` : ""}`.padEnd(24)} ${perf} ${ratio}`;
  });
  console.log(lines.join("\n"));
}
