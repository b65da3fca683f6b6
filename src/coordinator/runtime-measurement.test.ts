// The isolated runtime's measurement in attestation: bound into the report data with the nonce and
// the node key, so a coordinator's trust policy can pin the runtime an agent's tasks run in.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { LocalAgent } from "../agent/local-agent.js";
import { appraiseEvidence } from "../attestation/appraise.js";
import { parseTrustPolicy } from "../attestation/policy/load.js";
import { SimulatedProvider } from "../attestation/providers/software.js";
import type { AgentHandle } from "../federation/agent-handle.js";
import { AgentSession } from "../agent/agent-session.js";
import { startHostApi } from "../host/host-api.js";
import { MemoryJobDirectory } from "../host/job-directory.js";
import { loadKit } from "../identity/kit.js";
import { parseProjectText } from "../identity/project.js";
import { provisionProject } from "../identity/provision.js";
import type { AttestationReport } from "../schemas/attestation.js";
import { AttestationGate } from "./attestation-gate.js";
import { SessionHub } from "./session-hub.js";

const DATA = fileURLToPath(new URL("../../data/", import.meta.url));
const runtimeA = createHash("sha256").update("runtime manifest A").digest("hex");
const runtimeB = createHash("sha256").update("runtime manifest B").digest("hex");
const policy = (measurements: string[]) =>
  parseTrustPolicy({ allow_simulated: true, runtime: { measurements } });

const agents: LocalAgent[] = [];
afterAll(async () => {
  for (const a of agents) await a.close();
});

async function agent(runtimeMeasurement?: string): Promise<LocalAgent> {
  const a = await LocalAgent.start({
    id: `site-${agents.length}`,
    workspace: mkdtempSync(join(tmpdir(), "runtime-measurement-")),
    memoryDatabase: true,
    dataRoot: DATA,
    provider: new SimulatedProvider(),
    policy: policy([]),
    accountant: "rdp",
    runtimeMeasurement,
  });
  agents.push(a);
  return a;
}

async function admitted(gatePolicy: string[], handle: AgentHandle) {
  const report = await new AttestationGate(policy(gatePolicy)).admit(handle);
  return report.status;
}

describe("the runtime measurement in attestation", () => {
  it("admits an agent whose bound runtime is pinned, and refuses one whose runtime another policy pins", async () => {
    const a = await agent(runtimeA);
    const bound = await a.evidence(new Uint8Array(32));
    expect(Buffer.from(bound.runtimeMeasurement!).toString("hex")).toBe(runtimeA);
    expect(await admitted([runtimeA], a)).toBe("TRUSTED");
    expect(await admitted([runtimeB], a)).toBe("UNTRUSTED");
    expect(await admitted([runtimeB, runtimeA], a)).toBe("TRUSTED");
    // Unpinned: any runtime is accepted.
    expect(await admitted([], a)).toBe("TRUSTED");
  });

  it("refuses an agent without an isolated runtime where the policy pins one, and a runtime claim the evidence does not bind", async () => {
    const plain = await agent();
    expect((await plain.evidence(new Uint8Array(32))).runtimeMeasurement).toBeUndefined();
    expect(await admitted([runtimeA], plain)).toBe("UNTRUSTED");
    expect(await admitted([], plain)).toBe("TRUSTED");
    // An agent bound to runtime B that claims the pinned runtime A: the binding no longer matches.
    const b = await agent(runtimeB);
    const lying: AgentHandle = {
      id: b.id,
      evidence: async (nonce) => ({
        ...(await b.evidence(nonce)),
        runtimeMeasurement: new Uint8Array(Buffer.from(runtimeA, "hex")),
      }),
      probe: (t) => b.probe(t),
      run: (t) => b.run(t),
      close: () => b.close(),
    };
    expect(await admitted([runtimeA], lying)).toBe("UNTRUSTED");
    expect(await admitted([runtimeB], b)).toBe("TRUSTED");
  });

  it("names the failed check and carries the claimed runtime in the appraisal", async () => {
    const a = await agent(runtimeA);
    const nonce = new Uint8Array(32).fill(7);
    const bound = await a.evidence(nonce);
    const r = await appraiseEvidence(bound.evidence, {
      policy: policy([runtimeB]),
      binding: { nonce, publicKey: bound.publicKey, runtimeMeasurement: bound.runtimeMeasurement },
    });
    expect(r.runtimeMeasurement).toBe(runtimeA);
    expect(r.result.checks.find((c) => c.name === "policy.binding")?.status).toBe("pass");
    expect(r.result.checks.find((c) => c.name === "policy.runtime_measurement")).toEqual({
      name: "policy.runtime_measurement",
      status: "fail",
      detail: `runtime ${runtimeA} matches none of the 1 pinned runtime measurements`,
    });
  });

  it("reaches the coordinator's gate over a real agent.v1 session (EvidenceReply.runtime_measurement)", async () => {
    const out = mkdtempSync(join(tmpdir(), "runtime-measurement-kits-"));
    await provisionProject(
      parseProjectText(
        "name: rt\ncoordinator: {host: localhost, port: 7339}\nsites: [site-a, site-b]\nadmins: [admin]\n",
      ),
      out,
    );
    const coordinator = await loadKit(join(out, "kits", "coordinator"));
    const verdicts = new Map<string, AttestationReport>();
    const gate = new AttestationGate(policy([runtimeA]));
    const sessions = new SessionHub({
      gate: { admit: async (a) => (verdicts.set(a.id, await gate.admit(a)), verdicts.get(a.id)!) },
      reattestSeconds: 600,
      coordinatorId: "coordinator",
      maxChunkBytes: 1 << 20,
    });
    const api = await startHostApi({
      credential: coordinator.credential,
      caPem: coordinator.caPem,
      jobs: new MemoryJobDirectory(),
      sessions,
      host: "127.0.0.1",
      port: 0,
    });
    const dialled: AgentSession[] = [];
    try {
      for (const [site, runtime] of [
        ["site-a", runtimeA],
        ["site-b", runtimeB],
      ]) {
        const local = await agent(runtime);
        const s = new AgentSession({
          kit: await loadKit(join(out, "kits", site)),
          endpoint: `https://localhost:${api.port}`,
          work: {
            evidence: (n, k) => local.evidence(n, k),
            probe: (t) => local.probe(t),
            run: (t) => local.run(t),
          },
        });
        dialled.push(s);
        s.start();
      }
      for (let i = 0; i < 200 && verdicts.size < 2; i++) await new Promise((r) => setTimeout(r, 50));
      // site-a's runtime is the pinned one; site-b's is not, and the check that says so is the policy's.
      expect(verdicts.get("site-a")?.status).toBe("TRUSTED");
      expect(verdicts.get("site-b")?.status).toBe("UNTRUSTED");
      expect(sessions.admitted(["site-a", "site-b"])).toEqual(["site-a"]);
    } finally {
      for (const s of dialled) await s.stop();
      await api.close();
      rmSync(out, { recursive: true, force: true });
    }
  });
});
