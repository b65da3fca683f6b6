// Isolated runtime: what a microVM costs against the other isolation modes, measured in the same run.
//   hydrate         seconds to build rootfs.cpio + vmlinux + manifest into a scratch cache
//   boot-to-ready   spawn of the VMM to the guest's `ready` over the channel (one boot: emulated
//                   boots are slow on a shared machine), against a Node.js child process's
//                   spawn-to-first-message (the `process` mode's floor) and in-process (`none`: 0)
//   round-trip      median request/reply over the channel, against the same framing in-process
//   per-task        boot-to-ready + one request + power-off: what `--isolation microvm` adds to a task
//   train-task      the same seeded DP training task (runLocalTraining, 455 rows, 15 steps) with
//                   --isolation process and microvm, against --isolation none in the same run: the
//                   ratio, the overhead in ms, and whether the model hash is the in-process one
// Each record names the acceleration: "kvm" when a probe boot under KVM works, else "emulated".
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { loadAssets } from "../dist/runtime/assets.js";
import { encodeFrame, FrameDecoder } from "../dist/runtime/channel/frames.js";
import { findOnPath, probeBoot } from "../dist/runtime/host-probe.js";
import { hydrate } from "../dist/runtime/hydrate.js";
import { bootMicroVm } from "../dist/runtime/vmm/qemu-microvm.js";
import { TaskRuntime } from "../dist/runtime/task-runtime.js";
import { runLocalTraining } from "../dist/training/local-training.js";

const TASK = {
  datasetFile: new URL("../data/breast-cancer-wisconsin.csv", import.meta.url).pathname,
  arch: "SimpleMLP",
  hidden: [8],
  epochs: 1,
  targetEpsilon: 2,
  delta: 1e-5,
  maxGradNorm: 1,
  batchSize: 32,
  learningRate: 0.05,
  momentum: 0.9,
  accountant: "rdp",
  testFraction: 0.2,
  seed: "bench-runtime",
};

/** One training task per isolation mode, each on a fresh ledger; ms from plan to report. */
async function trainTasks(dir, qemu, accel) {
  const out = {};
  for (const mode of ["none", "process", "microvm"]) {
    const isolated =
      mode === "none"
        ? undefined
        : await TaskRuntime.prepare({
            mode,
            cacheDir: dir,
            vmm: mode === "microvm" ? { qemu, accel } : undefined,
          });
    const t0 = performance.now();
    const { report } = await runLocalTraining({ ...TASK, workspace: join(dir, `ws-${mode}`), isolated });
    out[mode] = { ms: performance.now() - t0, hash: report.model.sha256 };
  }
  return out;
}

const round = (x) => Math.round(x * 100) / 100;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Spawn-to-first-line of a Node.js child: the floor of `--isolation process`. */
async function childProcessReady() {
  const t0 = performance.now();
  await new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ["-e", "process.stdout.write('ready\\n')"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    c.stdout.once("data", () => resolve());
    c.once("error", reject);
  });
  return performance.now() - t0;
}

function inProcessRoundTrip() {
  const d = new FrameDecoder();
  const samples = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    d.push(encodeFrame({ type: "request", id: i, method: "ping", args: null }));
    d.push(encodeFrame({ type: "reply", id: i, ok: true, value: "pong" }));
    samples.push(performance.now() - t0);
  }
  return median(samples);
}

export async function run({ json }) {
  const qemu = await findOnPath("qemu-system-x86_64");
  if (!qemu) return [{ bench: "runtime", op: "skipped", reason: "qemu-system-x86_64 not on PATH" }];
  const dir = mkdtempSync(join(tmpdir(), "bench-runtime-"));
  try {
    const t0 = performance.now();
    await hydrate({ cacheDir: dir });
    const hydrateMs = performance.now() - t0;
    const assets = await loadAssets(dir);
    const accel = (await probeBoot(qemu, "kvm", 10_000)).status === "pass" ? "kvm" : "emulated";
    const spawnMs = median([await childProcessReady(), await childProcessReady(), await childProcessReady()]);
    const started = performance.now();
    const vm = await bootMicroVm({ qemu, assets, accel, bootTimeoutMs: 600_000 });
    const rtts = [];
    for (let i = 0; i < 30; i++) {
      const r0 = performance.now();
      await vm.connection.request("ping", null, 60_000);
      rtts.push(performance.now() - r0);
    }
    await vm.connection.request("exit", null, 60_000);
    await vm.exited;
    const perTaskMs = performance.now() - started - rtts.reduce((a, b) => a + b, 0) + median(rtts);
    await vm.stop();
    const inProc = inProcessRoundTrip();
    // The guest trains with these kernel pins too, so the hashes can be compared.
    process.env.ENCLAVE_KERNELS_CPU ??= "generic";
    process.env.ENCLAVE_THREADS ??= "1";
    const tasks = await trainTasks(dir, qemu, accel);
    const records = [
      {
        bench: "runtime",
        op: "hydrate",
        accel,
        ms: round(hydrateMs),
        rootfs_mb: round(assets.manifest.rootfs.bytes / 2 ** 20),
      },
      {
        bench: "runtime",
        op: "boot-to-ready",
        accel,
        ms: vm.bootMs,
        baseline: "node child process",
        baseline_ms: round(spawnMs),
        ratio: round(vm.bootMs / spawnMs),
      },
      {
        bench: "runtime",
        op: "round-trip",
        accel,
        ms: round(median(rtts)),
        baseline: "in-process framing",
        baseline_ms: round(inProc),
        ratio: round(median(rtts) / inProc),
      },
      {
        bench: "runtime",
        op: "per-task",
        accel,
        ms: round(perTaskMs),
        baseline: "node child process",
        baseline_ms: round(spawnMs),
        ratio: round(perTaskMs / spawnMs),
      },
      ...["process", "microvm"].map((mode) => ({
        bench: "runtime",
        op: "train-task",
        isolation: mode,
        accel: mode === "microvm" ? accel : undefined,
        ms: round(tasks[mode].ms),
        baseline: "the same task in-process (--isolation none)",
        baseline_ms: round(tasks.none.ms),
        ratio: round(tasks[mode].ms / tasks.none.ms),
        overhead_ms: round(tasks[mode].ms - tasks.none.ms),
        same_hash: tasks[mode].hash === tasks.none.hash,
      })),
    ];
    if (!json && accel === "emulated")
      console.error(
        "runtime: KVM not usable here (probe boot failed): microVM numbers are under software emulation (TCG)",
      );
    return records;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
