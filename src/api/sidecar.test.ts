import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentService } from "../agent/agent-service.js";
import { startSidecar, type Sidecar } from "./sidecar.js";

const trusted = {
  node_id: "hospital-a",
  hardware_type: "AMD_SEV_SNP" as const,
  enclave_signature: "ab".repeat(48),
  measurement_hash: "cd".repeat(48),
  status: "TRUSTED" as const,
};

describe("management sidecar over real HTTP", () => {
  const service = new AgentService("hospital-a");
  let sidecar: Sidecar;
  let base: string;
  beforeAll(async () => {
    sidecar = await startSidecar(service, 0);
    base = `http://127.0.0.1:${sidecar.port}`;
  });
  afterAll(() => sidecar.close());

  it("is 503 with a reason before attestation", async () => {
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: "NOT_ATTESTED", trusted: false, reason: "not attested yet" });
    expect((await fetch(`${base}/attestation`)).status).toBe(503);
  });

  it("is 503 when attestation is UNTRUSTED", async () => {
    service.setAttestation({ ...trusted, status: "UNTRUSTED" });
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { reason: string }).reason).toMatch(/UNTRUSTED/);
  });

  it("is 200 ATTESTED only when attested and healthy, and serves the report", async () => {
    service.setAttestation(trusted);
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ATTESTED", trusted: true });
    expect(await (await fetch(`${base}/attestation`)).json()).toEqual(trusted);
    service.setFault("privacy ledger unavailable");
    const sick = await fetch(`${base}/health`);
    expect(sick.status).toBe(503);
    expect(((await sick.json()) as { reason: string }).reason).toBe("privacy ledger unavailable");
    service.setFault(null);
  });

  it("serves the budget and Prometheus metrics", async () => {
    const budget = await (await fetch(`${base}/privacy/budget`)).json();
    expect(budget).toMatchObject({ epsilon: 0, ceiling: 5 });
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^# HELP enclave_attested /m);
    expect(text).toMatch(/^enclave_attested 1$/m);
    expect(text).toMatch(/^# TYPE enclave_tasks_completed_total counter$/m);
    // Every sample line is `name value` with a number (the exposition format).
    for (const line of text
      .trim()
      .split("\n")
      .filter((l) => !l.startsWith("#")))
      expect(line).toMatch(/^[a-z_]+ (-?[0-9.e+-]+|NaN)$/);
  });

  it("answers unknown paths 404 and writes 405", async () => {
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/health`, { method: "POST" })).status).toBe(405);
  });

  it("listens on loopback only", async () => {
    const { networkInterfaces } = await import("node:os");
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === "IPv4" && !i.internal);
    if (!external) return; // no external interface on this machine: nothing to reach
    await expect(fetch(`http://${external.address}:${sidecar.port}/health`)).rejects.toThrow();
  });
});
