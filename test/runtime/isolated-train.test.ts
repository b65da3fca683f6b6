import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BudgetLedger } from "../../src/privacy/budget-ledger.js";
import { TaskRuntime, type RuntimeEvent } from "../../src/runtime/task-runtime.js";
import { openDatabase } from "../../src/storage/database.js";
import { pinKernels, SMALL_TASK } from "../support/isolated-task.js";
import { runLocalTraining } from "../../src/training/local-training.js";

pinKernels();

const dir = mkdtempSync(join(tmpdir(), "isolated-train-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function ledgerJobs(workspace: string) {
  const db = await openDatabase({ workspace });
  try {
    const ledger = await BudgetLedger.open(db);
    const [key] = await ledger.datasets();
    return { key, jobs: key ? await ledger.jobDetails(key) : [] };
  } finally {
    await db.close();
  }
}

/**
 * `--isolation process` end to end: the guest program (the build's guest-main.js, the one the microVM
 * runs) in a child process, speaking the channel's framing over an inherited socket. The host
 * reserves, the child trains on its reservation, the host admits and charges.
 */
describe("an isolated training task (process runtime)", () => {
  const workspace = join(dir, "ws-isolated");

  it("returns the model the same task trains in-process, and the ledger holds exactly the reserved steps", async () => {
    const none = await runLocalTraining({ ...SMALL_TASK, workspace: join(dir, "ws-none") });
    const events: RuntimeEvent[] = [];
    const runtime = await TaskRuntime.prepare({
      mode: "process",
      cacheDir: dir,
      onEvent: (e) => events.push(e),
    });
    const isolated = await runLocalTraining({ ...SMALL_TASK, workspace, isolated: runtime });
    expect(isolated.report.isolation).toEqual({ mode: "process", channel: "pipe" });
    expect(none.report.isolation).toEqual({ mode: "none" });
    expect(isolated.report.model.sha256).toBe(none.report.model.sha256);
    expect(isolated.report.training.steps).toBe(none.report.training.steps);
    expect(isolated.report.privacy.epsilon).toBeCloseTo(none.report.privacy.epsilon, 10);
    expect(isolated.report.accuracy).toBe(none.report.accuracy);
    const { jobs } = await ledgerJobs(workspace);
    expect(jobs).toMatchObject([
      { jobId: isolated.report.job_id, steps: none.report.training.steps, reserved: false },
    ]);
    expect(events.map((e) => e.event)).toEqual(["boot", "task_start", "task_end", "exit"]);
    expect(events[1]).toMatchObject({ source: "guest", steps_reserved: none.report.training.steps });
    expect(events[2]).toMatchObject({ model_sha256: none.report.model.sha256 });
    expect(events[3]).toMatchObject({ code: 0 });
  });

  it("turns a task that hangs or crashes into a typed error within its deadline, charging every reserved step", async () => {
    const workspace = join(dir, "ws-faults");
    const task = { ...SMALL_TASK, workspace, targetEpsilon: 5, noiseMultiplier: 2 };
    const hang = await TaskRuntime.prepare({
      mode: "process",
      cacheDir: dir,
      testFault: "hang",
      taskTimeoutMs: 3000,
    });
    const t0 = performance.now();
    await expect(runLocalTraining({ ...task, isolated: hang })).rejects.toMatchObject({
      code: "RUNTIME_GUEST_TIMEOUT",
      message: "guest did not answer fault:hang within 3000 ms",
    });
    expect(performance.now() - t0).toBeLessThan(60_000);
    const crash = await TaskRuntime.prepare({ mode: "process", cacheDir: dir, testFault: "crash" });
    await expect(runLocalTraining({ ...task, isolated: crash })).rejects.toMatchObject({
      code: "RUNTIME_GUEST_CRASHED",
      message: "the guest process ended (signal SIGKILL) before the guest finished",
    });
    // A guest that never became ready never had the task: nothing is charged.
    const late = await TaskRuntime.prepare({ mode: "process", cacheDir: dir, bootTimeoutMs: 1 });
    await expect(runLocalTraining({ ...task, isolated: late })).rejects.toMatchObject({
      code: "RUNTIME_TASK_NOT_STARTED",
    });
    const { jobs } = await ledgerJobs(workspace);
    // 455 training rows at batch 32: 15 steps an epoch, reserved in full before each task.
    expect(jobs.map((j) => [j.steps, j.reserved])).toEqual([
      [15, false],
      [15, false],
      [0, false],
    ]);
  });

  it("trains the named fashion-mnist in the guest to the in-process model, its four IDX files its only inputs", async () => {
    // A miniature Fashion-MNIST (40 train, 20 test images) where the loader looks first.
    const fm = join(dir, "fashion-mnist");
    mkdirSync(fm);
    const idx = (dims: number[], payload: Uint8Array) => {
      const head = Buffer.alloc(4 + 4 * dims.length);
      head[2] = 0x08;
      head[3] = dims.length;
      dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
      return Buffer.concat([head, payload]);
    };
    for (const [prefix, n] of [
      ["train", 40],
      ["t10k", 20],
    ] as const) {
      const pixels = Uint8Array.from({ length: n * 784 }, (_, i) => (i * 37 + (i % 784) * 11) % 256);
      writeFileSync(join(fm, `${prefix}-images-idx3-ubyte`), idx([n, 28, 28], pixels));
      writeFileSync(
        join(fm, `${prefix}-labels-idx1-ubyte`),
        idx(
          [n],
          Uint8Array.from({ length: n }, (_, i) => i % 10),
        ),
      );
    }
    process.env.ENCLAVE_FASHION_MNIST_DIR = fm;
    try {
      const task = { ...SMALL_TASK, datasetFile: "fashion-mnist", batchSize: 8, hidden: [4] };
      const none = await runLocalTraining({ ...task, workspace: join(dir, "ws-fm-none") });
      const runtime = await TaskRuntime.prepare({ mode: "process", cacheDir: dir });
      const isolated = await runLocalTraining({ ...task, workspace: join(dir, "ws-fm"), isolated: runtime });
      expect(isolated.report.dataset).toEqual(none.report.dataset);
      expect(isolated.report.model.sha256).toBe(none.report.model.sha256);
      expect(isolated.report.accuracy).toBe(none.report.accuracy);
      expect(isolated.report.training.steps).toBe(none.report.training.steps);
    } finally {
      delete process.env.ENCLAVE_FASHION_MNIST_DIR;
    }
  });
});
