import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import type { AdminClient } from "./admin-client.js";
import { foldOutcome, watchJob, type JobEvent } from "./orchestrate.js";

const ID = "6f1e28ba-2fa1-4d3b-a3f5-ef19b5a7633b";
const record = (round: number, accuracy: number | null) => ({
  round,
  clients: ["a", "b"],
  loss: 0.5,
  accuracy,
  epsilon: { a: round / 10, b: round / 10 },
  examples: 20,
  seconds: 0.1,
});
const EVENTS = [
  { type: "job_started", job_id: ID, clients: ["a", "b"], rounds: 2 },
  { type: "client_reported", job_id: ID, round: 1, client_id: "a", epsilon: 0.1, examples: 10 },
  { type: "round_completed", job_id: ID, round: 1, record: record(1, 0.9), model_sha256: "1" },
  {
    type: "client_excluded",
    job_id: ID,
    round: 2,
    client_id: "b",
    state: "dropped",
    reason: "AGENT_DISCONNECTED: gone",
  },
  { type: "round_completed", job_id: ID, round: 2, record: record(2, null), model_sha256: "2" },
  { type: "job_finished", job_id: ID, status: "completed", rounds_completed: 2, model_sha256: "2" },
] as unknown as JobEvent[];

/** A client whose WatchJob streams are scripted: each call yields its events, then throws or ends. */
function scripted(streams: { upTo: number; then?: Error }[]): AdminClient & { calls: number } {
  const c = {
    calls: 0,
    async *watchJob() {
      const s = streams[Math.min(c.calls++, streams.length - 1)];
      for (const e of EVENTS.slice(0, s.upTo))
        yield { event: { type: e.type, eventJson: JSON.stringify(e) } };
      if (s.then) throw s.then;
    },
  };
  return c as unknown as AdminClient & { calls: number };
}

const collect = async (it: AsyncIterable<JobEvent>) => {
  const out: JobEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
};

describe("watchJob", () => {
  it("re-opens a stream the coordinator broke and yields each event once, in order", async () => {
    const client = scripted([
      { upTo: 3, then: new ConnectError("reset", Code.Unavailable) },
      { upTo: 4, then: new ConnectError("cancelled", Code.Canceled) },
      { upTo: 6 },
    ]);
    const events = await collect(watchJob(client, ID, { reconnects: 3 }));
    expect(events).toEqual(EVENTS);
    expect(client.calls).toBe(3);
  });

  it("passes a refusal on with the coordinator's own code and message, without retrying", async () => {
    const refusal = new ConnectError("JOB_NOT_FOUND: no job with this id", Code.NotFound, {
      "enclave-error-code": "JOB_NOT_FOUND",
    });
    const client = scripted([{ upTo: 0, then: refusal }]);
    await expect(collect(watchJob(client, ID))).rejects.toMatchObject({
      code: "JOB_NOT_FOUND",
      message: "no job with this id",
    });
    expect(client.calls).toBe(1);
  });

  it("gives up with COORDINATOR_UNAVAILABLE after its reconnects", async () => {
    const client = scripted([{ upTo: 1, then: new ConnectError("refused", Code.Unavailable) }]);
    await expect(collect(watchJob(client, ID, { reconnects: 1 }))).rejects.toMatchObject({
      name: "SdkError",
      code: "COORDINATOR_UNAVAILABLE",
    });
    expect(client.calls).toBe(2);
  });

  it("a stream that ends before job_finished is JOB_STREAM_ENDED, not a silent end", async () => {
    await expect(collect(watchJob(scripted([{ upTo: 2 }]), ID))).rejects.toMatchObject({
      code: "JOB_STREAM_ENDED",
    });
  });
});

describe("foldOutcome", () => {
  it("folds rounds, each client's last standing and the last round's score (unknown as null)", () => {
    expect(foldOutcome(ID, EVENTS)).toEqual({
      job_id: ID,
      status: "completed",
      rounds: [record(1, 0.9), record(2, null)],
      final: { accuracy: null, loss: 0.5 },
      clients: [
        { id: "a", epsilon: 0.2, examples: 10, state: "active" },
        { id: "b", epsilon: 0.2, examples: 0, state: "dropped", reason: "AGENT_DISCONNECTED: gone" },
      ],
      model_sha256: "2",
    });
  });

  it("has no outcome before job_finished", () => {
    expect(foldOutcome(ID, EVENTS.slice(0, 5))).toBeUndefined();
  });
});
