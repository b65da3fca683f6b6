import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { simulationTrustPolicy } from "../../src/attestation/policy/simulation.js";
import { AttestationGate } from "../../src/coordinator/attestation-gate.js";
import { runFederation } from "../../src/coordinator/coordinator.js";
import type { TaskOutcome } from "../../src/federation/task.js";
import { weightsHash } from "../../src/model/safetensors.js";
import { TaskRuntime, type RuntimeEvent } from "../../src/runtime/task-runtime.js";
import { createStrategy } from "../../src/strategies/factory.js";
import { poissonSchedule } from "../../src/training/trainer.js";
import { pinKernels, siteRecords, smallRound, startRoundAgent } from "../support/isolated-task.js";

pinKernels();

/** One epoch of the bundled 569 rows at batch 32. */
const STEPS = poissonSchedule(569, 32).stepsPerEpoch;

const dir = mkdtempSync(join(tmpdir(), "isolated-round-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Two SCAFFOLD rounds on one agent: the second from the first's update, so streams and c_i carry over. */
async function twoRounds(workspace: string, runtime?: TaskRuntime): Promise<TaskOutcome[]> {
  const agent = await startRoundAgent(workspace, runtime);
  try {
    const first = smallRound({ jobId: "9b3c1e4a-0d7e-4a51-9a39-6f0c2b8d1e01", strategy: "SCAFFOLD" });
    const a = await agent.run(first);
    const b = await agent.run({ ...first, round: 2, global: a.weights });
    return [a, b];
  } finally {
    await agent.close();
  }
}

/**
 * `enclave agent --isolation process`: each round's Validate -> Train -> Sanitize runs in the guest
 * program (dist/runtime/guest/guest-main.js, the one the microVM runs) in a child process, on the steps
 * the host reserved; only the Airlock's output comes back, and the host's Airlock admits it.
 */
describe("a federated round in an isolated runtime (process)", () => {
  it("gives the in-process agent's updates, round after round; the ledger holds exactly the reserved steps, and the site chain what the guest did", async () => {
    const none = await twoRounds(join(dir, "ws-none"));
    const events: RuntimeEvent[] = [];
    const runtime = await TaskRuntime.prepare({
      mode: "process",
      cacheDir: dir,
      onEvent: (e) => events.push(e),
    });
    const workspace = join(dir, "ws-process");
    const isolated = await twoRounds(workspace, runtime);
    for (const i of [0, 1]) {
      expect(weightsHash(isolated[i]!.weights)).toBe(weightsHash(none[i]!.weights));
      expect(weightsHash(isolated[i]!.controlDelta!)).toBe(weightsHash(none[i]!.controlDelta!));
      expect(isolated[i]!.status).toBe("ok");
      expect(isolated[i]!.metrics.steps).toBe(none[i]!.metrics.steps);
      expect(isolated[i]!.metrics.epsilon).toBeCloseTo(none[i]!.metrics.epsilon!, 10);
      expect(isolated[i]!.metrics.loss).toBe(none[i]!.metrics.loss);
    }
    const steps = none[0]!.metrics.steps!;
    const { jobs, chain } = await siteRecords(workspace);
    // One row per job: each round's reservation, charged in full, as the in-process guard recorded it.
    expect(jobs).toMatchObject([{ steps: 2 * steps, reserved: false, segments: [{ steps }, { steps }] }]);
    const inProcess = await siteRecords(join(dir, "ws-none"));
    expect(jobs.map((j) => j.segments)).toEqual(inProcess.jobs.map((j) => j.segments));
    const guest = chain.filter((e) => e.kind === "guest_task").map((e) => e.payload);
    expect(guest).toEqual(
      [1, 2].map((round) =>
        expect.objectContaining({
          round,
          mode: "process",
          steps_reserved: steps,
          steps_charged: steps,
          outcome: "released",
          exit_code: 0,
          guest_sha256: weightsHash(isolated[round - 1]!.weights),
        }),
      ),
    );
    expect(chain.map((e) => e.kind)).toEqual([
      "chain_opened",
      "guest_task",
      "update_released",
      "guest_task",
      "update_released",
    ]);
    expect(events.map((e) => e.event)).toEqual([
      "boot",
      "task_start",
      "task_end",
      "exit",
      "boot",
      "task_start",
      "task_end",
      "exit",
    ]);
  });

  it("turns a guest that hangs into a failure of that site within the deadline (the round goes on without it), and one that crashes into a typed error; every reserved step is charged", async () => {
    const hang = await TaskRuntime.prepare({
      mode: "process",
      cacheDir: dir,
      testFault: "hang",
      taskTimeoutMs: 2000,
    });
    const healthy = await TaskRuntime.prepare({ mode: "process", cacheDir: dir });
    const a = await startRoundAgent(join(dir, "ws-a"), healthy, "site-a");
    const bWorkspace = join(dir, "ws-b");
    const b = await startRoundAgent(bWorkspace, hang, "site-b");
    const task = smallRound();
    let result;
    const t0 = performance.now();
    try {
      result = await runFederation({
        job: { ...task.job, rounds: 1 },
        model: task.model,
        plan: task.plan,
        agents: [a, b],
        initial: task.global,
        strategy: createStrategy({ name: "FED_AVG" }),
        gate: new AttestationGate(simulationTrustPolicy()),
        evaluate: () => ({ accuracy: 0, loss: 0 }),
        ordered: true,
      });
    } finally {
      await a.close();
      await b.close();
    }
    expect(performance.now() - t0).toBeLessThan(60_000);
    expect(result.status).toBe("completed");
    expect(result.rounds).toHaveLength(1);
    const site = (id: string) => result.clients.find((c) => c.id === id)!;
    expect(site("site-a").state).toBe("active");
    expect(site("site-b")).toMatchObject({
      state: "failed",
      reason: expect.stringMatching(/^RUNTIME_GUEST_TIMEOUT: /),
    });
    const hung = await siteRecords(bWorkspace);
    expect(hung.jobs).toEqual([expect.objectContaining({ steps: STEPS, reserved: false })]);
    expect(hung.chain.filter((e) => e.kind === "guest_task").map((e) => e.payload)).toEqual([
      expect.objectContaining({
        outcome: "failed",
        reason: "RUNTIME_GUEST_TIMEOUT",
        steps_charged: STEPS,
        exit_signal: "SIGKILL",
      }),
    ]);
    expect(hung.chain.some((e) => e.kind === "update_released")).toBe(false);

    const crash = await TaskRuntime.prepare({ mode: "process", cacheDir: dir, testFault: "crash" });
    const c = await startRoundAgent(join(dir, "ws-c"), crash, "site-c");
    try {
      await expect(c.run(smallRound())).rejects.toMatchObject({ code: "RUNTIME_GUEST_CRASHED" });
    } finally {
      await c.close();
    }
  });
});
