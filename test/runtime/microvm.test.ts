import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BudgetLedger } from "../../src/privacy/budget-ledger.js";
import { loadAssets } from "../../src/runtime/assets.js";
import { vsockUnavailableReason } from "../../src/inference/vsock-transport.js";
import { deviceFact, findOnPath, probeBoot } from "../../src/runtime/host-probe.js";
import { hydrate } from "../../src/runtime/hydrate.js";
import { TaskRuntime, type RuntimeEvent } from "../../src/runtime/task-runtime.js";
import type { BootedVm } from "../../src/runtime/vmm/qemu-microvm.js";
import { openDatabase } from "../../src/storage/database.js";
import { weightsHash } from "../../src/model/safetensors.js";
import {
  pinKernels,
  siteRecords,
  SMALL_TASK,
  smallRound,
  startRoundAgent,
} from "../support/isolated-task.js";
import { runLocalTraining } from "../../src/training/local-training.js";

pinKernels();

/**
 * A real microVM from hydrated assets: the kernel boots under QEMU microvm (KVM if the probe passes,
 * else emulation, which is what these machines give), /init unpacks the task's read-only dataset disk
 * and brings up loopback, the guest (the build's dist/runtime/guest/guest-main.js) trains a seeded DP
 * task on the steps the host reserved and answers over virtio-serial. One boot for every check: an
 * emulated boot costs 15-60 s on a shared 2-core machine. CI installs what it needs (.ci/run).
 */
const qemu = await findOnPath("qemu-system-x86_64");
const hostReady =
  !!qemu && existsSync("/bin/busybox") && readdirSync("/boot").some((n) => n.startsWith("vmlinuz-"));
/** QEMU drives vhost-vsock where the device opens and the host has AF_VSOCK sockets (these machines do not). */
const vhostVsock = await deviceFact("/dev/vhost-vsock");
const vsockWhyNot = !vhostVsock.readWrite
  ? `/dev/vhost-vsock ${vhostVsock.present ? "does not open" : "is absent"} on this host`
  : vsockUnavailableReason();
const channel = vsockWhyNot ? "virtio-serial" : "vsock";
const dir = mkdtempSync(join(tmpdir(), "microvm-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The channel the shared guest was booted with (the VMM's own report). */
let bootedChannel: string | undefined;

describe.skipIf(!hostReady && !process.env.CI)("a real microVM", () => {
  it(
    "trains the seeded DP task and an agent's federated round to the in-process model hashes, on exactly the reserved steps, seeing no network interface but lo; a hang or crash is a typed error in its deadline",
    { timeout: 600_000 },
    async () => {
      expect(hostReady, "CI must have QEMU, busybox-static and a kernel (.ci/run installs them)").toBe(true);
      const cacheDir = join(dir, "cache");
      const { measurement } = await hydrate({ cacheDir });
      expect((await loadAssets(cacheDir)).measurement).toBe(measurement);
      const kvm = await probeBoot(qemu!, "kvm", 10_000);
      const accel = kvm.status === "pass" ? "kvm" : "emulated";
      const none = await runLocalTraining({ ...SMALL_TASK, workspace: join(dir, "ws-none") });

      const events: RuntimeEvent[] = [];
      // One guest for every check (shareGuest): the train task, then an agent's round on the same
      // read-only inputs (the bundled data), then its interfaces, a hang and a crash on request.
      const runtime = await TaskRuntime.prepare({
        mode: "microvm",
        cacheDir,
        vmm: { qemu: qemu!, accel, channel },
        testFaults: true,
        shareGuest: true,
        taskTimeoutMs: 300_000,
        onEvent: (e) => events.push(e),
      });
      const workspace = join(dir, "ws-microvm");
      const t0 = performance.now();
      const isolated = await runLocalTraining({ ...SMALL_TASK, workspace, isolated: runtime });
      const ms = Math.round(performance.now() - t0);
      bootedChannel = (runtime.sharedGuest as BootedVm).channel;
      expect(bootedChannel).toBe(channel);
      expect(isolated.report.isolation).toEqual({
        mode: "microvm",
        vmm: "qemu-microvm",
        accel,
        channel,
        measurement,
      });
      expect(isolated.report.model.sha256).toBe(none.report.model.sha256);
      expect(isolated.report.training.kernels).toBe(none.report.training.kernels);
      expect(isolated.report.privacy.epsilon).toBeCloseTo(none.report.privacy.epsilon, 10);
      const db = await openDatabase({ workspace });
      try {
        const ledger = await BudgetLedger.open(db);
        const jobs = await ledger.jobDetails((await ledger.datasets())[0]!);
        expect(jobs).toMatchObject([
          { jobId: isolated.report.job_id, steps: none.report.training.steps, reserved: false },
        ]);
      } finally {
        await db.close();
      }

      // An agent's round in the same guest: the in-process agent's update, on exactly the reserved steps.
      const round = smallRound();
      const inProcess = await startRoundAgent(join(dir, "ws-round-none"));
      const expected = await inProcess.run(round).finally(() => inProcess.close());
      const siteWs = join(dir, "ws-round-microvm");
      const site = await startRoundAgent(siteWs, runtime);
      const t1 = performance.now();
      const update = await site.run(round).finally(() => site.close());
      const roundMs = Math.round(performance.now() - t1);
      expect(weightsHash(update.weights)).toBe(weightsHash(expected.weights));
      expect(update.metrics.epsilon).toBeCloseTo(expected.metrics.epsilon!, 10);
      const records = await siteRecords(siteWs);
      expect(records.jobs).toMatchObject([{ steps: expected.metrics.steps, reserved: false }]);
      expect(records.chain.find((e) => e.kind === "guest_task")?.payload).toMatchObject({
        mode: "microvm",
        measurement,
        steps_reserved: expected.metrics.steps,
        steps_charged: expected.metrics.steps,
        outcome: "released",
        guest_sha256: weightsHash(update.weights),
      });

      // The same guest still: only lo, then a hang and a crash become typed errors in their deadlines.
      const { connection, ready } = runtime.sharedGuest!;
      expect(ready.interfaces).toEqual(["lo"]);
      expect(ready.node).toBe(process.version);
      expect(await connection.request("interfaces", null, 60_000)).toEqual(["lo"]);
      const t2 = performance.now();
      await expect(connection.request("fault:hang", null, 2000)).rejects.toMatchObject({
        code: "RUNTIME_GUEST_TIMEOUT",
        message: "guest did not answer fault:hang within 2000 ms",
      });
      expect(performance.now() - t2).toBeLessThan(10_000);
      await expect(connection.request("fault:crash", null, 120_000)).rejects.toMatchObject({
        code: "RUNTIME_GUEST_CRASHED",
      });
      await runtime.close();
      expect(events.map((e) => e.event)).toEqual([
        "boot",
        "task_start",
        "task_end",
        "task_start",
        "task_end",
        "exit",
      ]);
      expect(events.filter((e) => e.event === "boot")).toHaveLength(1);
      expect(events[1]).toMatchObject({ source: "guest", steps_reserved: none.report.training.steps });
      expect(events[2]).toMatchObject({ source: "guest", model_sha256: none.report.model.sha256 });
      expect(events[4]).toMatchObject({ source: "guest", model_sha256: weightsHash(update.weights) });
      console.log(
        `microVM (qemu-microvm, ${accel}, ${channel}): ready after ${events[0]!.ms} ms, train task ${ms} ms in all, agent round ${roundMs} ms on the same guest`,
      );
    },
  );

  // The one boot above runs over vhost-vsock where the host offers it; here it says why it did not.
  it.skipIf(vsockWhyNot !== null)(
    `ran that boot's channel over vhost-vsock${vsockWhyNot ? ` (skipped: ${vsockWhyNot})` : ""}`,
    () => {
      expect(bootedChannel).toBe("vsock");
    },
  );
});
