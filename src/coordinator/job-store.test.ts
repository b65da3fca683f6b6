import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeOnPostgres } from "../../test/support/postgres-server.js";
import { weightsHash } from "../model/safetensors.js";
import { FederationJob } from "../schemas/federation.js";
import { tensor, type TensorMap } from "../tensor/tensor.js";
import { openDatabase, type Database } from "../storage/database.js";
import type { RoundRecord } from "./coordinator.js";
import type { CoordinatorEvent } from "./events.js";
import { JobStore } from "./job-store.js";

function job(rounds = 3): FederationJob {
  return FederationJob.parse({
    job_id: randomUUID(),
    clients: ["site-a", "site-b"],
    min_clients: 2,
    rounds,
    strategy: "FED_AVG",
    privacy: { mechanism: "DP_SGD", noise_multiplier: 1.1, max_grad_norm: 1, target_epsilon: 3, delta: 1e-5 },
    dataset_id: "d.csv",
    model_arch: "SimpleMLP",
  });
}

const model = (v: number): TensorMap =>
  new Map([
    ["w", tensor([2, 2], Float32Array.from([v, v + 1, v + 2, v + 3]))],
    ["b", tensor([2], Float32Array.from([-v, v / 3]))],
  ]);

const record = (round: number): RoundRecord => ({
  round,
  clients: ["site-a", "site-b"],
  loss: 0.5 / round,
  accuracy: 0.8 + round / 100,
  epsilon: { "site-a": 0.4 * round, "site-b": 0.5 * round },
  examples: 200,
  seconds: 0.1,
});

/** The events of `rounds` released rounds of a job, as runFederation emits them. */
function events(id: string, rounds: number, from = 1): CoordinatorEvent[] {
  const out: CoordinatorEvent[] = [];
  if (from === 1)
    out.push({
      type: "job_started",
      job_id: id,
      clients: ["site-a", "site-b"],
      rounds: 3,
      min_clients: 2,
      strategy: "FED_AVG",
      mechanism: "DP_SGD",
      model_sha256: weightsHash(model(0)),
      target_epsilon: 3,
      delta: 1e-5,
    });
  for (let r = from; r < from + rounds; r++) {
    out.push({ type: "round_started", job_id: id, round: r });
    for (const [c, eps] of [
      ["site-a", 0.4],
      ["site-b", 0.5],
    ] as const)
      out.push({
        type: "client_reported",
        job_id: id,
        round: r,
        client_id: c,
        epsilon_before: eps * (r - 1),
        epsilon: eps * r,
        examples: 100,
        update_sha256: weightsHash(model(r)),
        steps: 4,
      });
    out.push({
      type: "round_completed",
      job_id: id,
      round: r,
      record: record(r),
      model_sha256: weightsHash(model(r)),
      global: model(r),
      strategy: { round: r, tensors: new Map([["m/w", tensor([2], Float32Array.from([r, -r]))]]) },
    });
  }
  return out;
}

async function recordAll(store: JobStore, es: CoordinatorEvent[]) {
  for (const e of es) await store.record(e);
}

async function collect(it: AsyncIterable<CoordinatorEvent>): Promise<CoordinatorEvent[]> {
  const out: CoordinatorEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

function behavesLikeAJobStore(open: () => Promise<Database>) {
  let db: Database;
  let store: JobStore;
  beforeAll(async () => {
    db = await open();
    store = await JobStore.open(db, { pollMs: 50 });
  });
  afterAll(() => db.close());

  it("submits, lists newest first, reads and aborts jobs; refuses a second job with the same id", async () => {
    const [a, b] = [job(), job()];
    expect(await store.submit(a)).toMatchObject({
      job_id: a.job_id,
      status: "queued",
      rounds: 3,
      rounds_completed: 0,
    });
    await store.submit(b);
    await expect(store.submit(a)).rejects.toMatchObject({ code: "JOB_EXISTS" });
    const listed = (await store.list()).map((v) => v.job_id);
    expect(listed.indexOf(b.job_id)).toBeLessThan(listed.indexOf(a.job_id));
    expect(await store.abort(a.job_id)).toMatchObject({ status: "aborted", reason: "aborted by an admin" });
    await expect(store.get("no-such-job")).rejects.toMatchObject({ code: "JOB_NOT_FOUND" });
    await store.abort(b.job_id);
  });

  it("claims the oldest queued job once, and hands a running job back with its checkpoint", async () => {
    const j = job();
    await store.submit(j);
    const claimed = await store.claim();
    expect(claimed).toEqual({ job: j });
    // It stays queued, waiting for its sites, until the runner records job_started.
    expect((await store.get(j.job_id)).status).toBe("queued");
    await recordAll(store, events(j.job_id, 2));
    // round 3 began, one site reported, then the coordinator stopped
    await store.record({ type: "round_started", job_id: j.job_id, round: 3 });
    await store.record({
      type: "client_excluded",
      job_id: j.job_id,
      round: 3,
      client_id: "site-b",
      state: "budget_exhausted",
      reason: "privacy budget exhausted during the round",
    });
    const again = await store.claim();
    expect(again?.job).toEqual(j);
    const cp = again!.resume!;
    expect(cp.rounds.map((r) => r.round)).toEqual([1, 2]);
    expect(cp.rounds[1]).toEqual(record(2));
    expect(weightsHash(cp.global)).toBe(weightsHash(model(2)));
    expect(cp.strategy?.round).toBe(2);
    expect([...cp.strategy!.tensors.get("m/w")!.data]).toEqual([2, -2]);
    expect(cp.clients.sort((x, y) => x.id.localeCompare(y.id))).toEqual([
      { id: "site-a", state: "active", epsilon: 0.8, examples: 100 },
      {
        id: "site-b",
        state: "budget_exhausted",
        epsilon: 1,
        examples: 100,
        reason: "privacy budget exhausted during the round",
      },
    ]);
    expect(await store.get(j.job_id)).toMatchObject({
      rounds_completed: 2,
      model_sha256: weightsHash(model(2)),
    });
    await store.abort(j.job_id);
  });

  it("records each round once: a second round_completed for it is refused and writes nothing", async () => {
    const j = job();
    await store.submit(j);
    await store.claim();
    await recordAll(store, events(j.job_id, 1));
    const before = (await collect(store.watch(j.job_id, AbortSignal.timeout(200)))).length;
    await expect(store.record(events(j.job_id, 1, 1).at(-1)!)).rejects.toMatchObject({
      code: "ROUND_RECORDED_TWICE",
    });
    expect(await collect(store.watch(j.job_id, AbortSignal.timeout(200)))).toHaveLength(before);
    await store.abort(j.job_id);
  });

  it("refuses a round whose model does not match its event's hash, recording nothing", async () => {
    const j = job();
    await store.submit(j);
    await store.claim();
    const [start, ...rest] = events(j.job_id, 1);
    await store.record(start);
    const done = rest.at(-1) as Extract<CoordinatorEvent, { type: "round_completed" }>;
    await expect(store.record({ ...done, global: model(9) })).rejects.toMatchObject({
      code: "CHECKPOINT_INVALID",
    });
    expect((await store.get(j.job_id)).rounds_completed).toBe(0);
    await store.abort(j.job_id);
  });

  it("refuses to resume from a checkpoint whose bytes were altered", async () => {
    const j = job();
    await store.submit(j);
    await store.claim();
    await recordAll(store, events(j.job_id, 1));
    await db.query(
      "update coordinator_checkpoints set model = overlay(model placing '\\x00'::bytea from length(model)) where job_id = $1",
      [j.job_id],
    );
    await expect(store.claim()).rejects.toMatchObject({
      code: "CHECKPOINT_INVALID",
      message: expect.stringContaining("does not match its SHA-256"),
    });
    await store.abort(j.job_id);
  });

  it("keeps an aborted job aborted: later events are dropped, the final one lands", async () => {
    const j = job();
    await store.submit(j);
    await store.claim();
    await recordAll(store, events(j.job_id, 1));
    await store.abort(j.job_id);
    await store.record(events(j.job_id, 1, 2).at(-1)!);
    await store.record({
      type: "job_finished",
      job_id: j.job_id,
      status: "completed",
      rounds_completed: 1,
      model_sha256: weightsHash(model(1)),
    });
    expect(await store.get(j.job_id)).toMatchObject({ status: "aborted", rounds_completed: 1 });
    const seen = await collect(store.watch(j.job_id, AbortSignal.timeout(5000)));
    expect(seen.map((e) => e.type).slice(-2)).toEqual(["round_completed", "job_finished"]);
    expect(await store.claim()).toBeNull();
  });

  it("streams a job's history, then live events, and ends when the job ends", async () => {
    const j = job(2);
    await store.submit(j);
    await store.claim();
    const [first, ...later] = events(j.job_id, 2);
    await store.record(first);
    const watching = collect(store.watch(j.job_id, AbortSignal.timeout(30_000)));
    await recordAll(store, later);
    await store.record({
      type: "job_finished",
      job_id: j.job_id,
      status: "completed",
      rounds_completed: 2,
      model_sha256: weightsHash(model(2)),
    });
    const seen = await watching;
    expect(seen.map((e) => e.type)).toEqual([
      "job_started",
      ...Array(2).fill(["round_started", "client_reported", "client_reported", "round_completed"]).flat(),
      "job_finished",
    ]);
    const done = seen.find((e) => e.type === "round_completed")!;
    expect(done).toMatchObject({ round: 1, record: record(1), model_sha256: weightsHash(model(1)) });
    expect(await store.get(j.job_id)).toMatchObject({ status: "completed", rounds_completed: 2 });
  });
}

describe("JobStore on embedded PostgreSQL (PGlite)", () => {
  behavesLikeAJobStore(() => openDatabase({ workspace: "", url: "", memory: true }));

  it("keeps jobs, statuses, events and the checkpoint across a restart of the coordinator's workspace", async () => {
    const ws = mkdtempSync(join(tmpdir(), "enclave-jobstore-"));
    try {
      const j = job();
      let store = await JobStore.openWorkspace(ws, { url: "" });
      await store.submit(j);
      await store.claim();
      await recordAll(store, events(j.job_id, 2));
      await store.close();
      store = await JobStore.openWorkspace(ws, { url: "" });
      expect(await store.get(j.job_id)).toMatchObject({ status: "running", rounds_completed: 2 });
      const resumed = await store.claim();
      expect(resumed?.resume?.rounds.map((r) => r.round)).toEqual([1, 2]);
      expect(weightsHash(resumed!.resume!.global)).toBe(weightsHash(model(2)));
      const seen = await collect(store.watch(j.job_id, AbortSignal.timeout(300)));
      expect(seen).toHaveLength(events(j.job_id, 2).length);
      await store.close();
    } finally {
      rmSync(ws, { recursive: true, force: true });
    }
  });
});

describeOnPostgres("JobStore on a real PostgreSQL server", (server) => {
  let url = "";
  beforeAll(async () => {
    url = await server().freshDatabase();
  });

  describe("the same rules", () => {
    behavesLikeAJobStore(() => openDatabase({ workspace: "", url }));
  });
});
