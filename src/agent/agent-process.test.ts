import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../logging/logger.js";
import { openDatabase } from "../storage/database.js";
import { buildModelSpec } from "../model/registry.js";
import { AgentConfig } from "../schemas/agent-config.js";
import { FederationJob } from "../schemas/federation.js";
import { parseContract } from "../schemas/contract.js";
import { Network } from "../model/network.js";
import { SeededRandom } from "../random.js";
import { kernels } from "../tensor/backend.js";
import { parseAgentConfigText } from "./agent-config-file.js";
import { agentMode, startAgentProcess, type AgentMode } from "./agent-process.js";
import type { TrainTask } from "../federation/task.js";

const noTee = { root: mkdtempSync(join(tmpdir(), "no-tee-")), runCommand: null };

describe("agent config file", () => {
  it("reads JSON and YAML alike, with the schema's defaults", () => {
    const yaml = parseAgentConfigText("node_id: site-1\ndata_root: /srv/data\ndataset_id: a/b.csv\n");
    const json = parseAgentConfigText(
      '{"node_id": "site-1", "data_root": "/srv/data", "dataset_id": "a/b.csv"}',
    );
    expect(yaml).toEqual(json);
    expect(yaml).toEqual({
      node_id: "site-1",
      data_root: "/srv/data",
      dataset_id: "a/b.csv",
      sidecar_port: 8000,
      accountant: "rdp",
      accept_client_level_dp: false,
      log_level: "info",
    });
  });

  it("refuses unknown fields (including __proto__), duplicates, non-mappings and bad values by name", () => {
    const issues = (text: string) => {
      try {
        parseAgentConfigText(text);
      } catch (err) {
        return (err as Error).message;
      }
      return "accepted";
    };
    expect(issues('{"node_id": "a", "data_root": "d", "__proto__": {"x": 1}}')).toMatch(
      /unknown field\(s\) "__proto__" not allowed/,
    );
    expect(issues('{"node_id": "a", "node_id": "b", "data_root": "d"}')).toMatch(/DUPLICATE_KEY at line 1/);
    expect(issues("- node_id: a\n")).toMatch(/must be a mapping/);
    expect(issues("node_id: a\ndata_root: d\nsidecar_port: 70000\n")).toBe(
      "invalid agent config: sidecar_port: must be <= 65535",
    );
    expect(issues("data_root: d\n")).toMatch(/^invalid agent config: node_id: /);
    expect(issues("node_id: a\ndata_root: d\ndataset_id: ''\n")).toBe(
      "invalid agent config: dataset_id: must be a non-empty string",
    );
    // The schema object is the published contract: the parser adds nothing of its own.
    expect(AgentConfig.safeParse({ node_id: "a", data_root: "d", extra: 1 }).success).toBe(false);
  });

  it("treats --simulation with --insecure as a conflict", () => {
    expect(() => agentMode({ simulation: true, insecure: true })).toThrow(
      expect.objectContaining({ code: "MODE_CONFLICT" }),
    );
    expect(agentMode({})).toBe("HARDWARE");
    expect(agentMode({ simulation: true })).toBe("SIMULATED");
    expect(agentMode({ insecure: true })).toBe("INSECURE");
  });
});

/** A small, separable two-feature dataset with its schema in `<dir>/data`. */
function siteWithData(): { dir: string; dataRoot: string } {
  const dir = mkdtempSync(join(tmpdir(), "agent-proc-"));
  const dataRoot = join(dir, "data");
  mkdirSync(dataRoot);
  const rows = ["x1,x2,y"];
  for (let i = 0; i < 80; i++) {
    const pos = i % 2 === 0;
    rows.push(`${(pos ? 1 : -1) + (i % 7) * 0.05},${(i % 5) * 0.1},${pos ? "yes" : "no"}`);
  }
  writeFileSync(join(dataRoot, "toy.csv"), rows.join("\n") + "\n");
  writeFileSync(
    join(dataRoot, "toy.schema.json"),
    JSON.stringify({
      format: "csv",
      header: true,
      columns: [
        { name: "x1", type: "float" },
        { name: "x2", type: "float" },
        { name: "y", type: "category", values: ["no", "yes"] },
      ],
      label: { column: "y", classes: ["no", "yes"] },
    }),
  );
  return { dir, dataRoot };
}

function task(): TrainTask {
  const job = parseContract(
    FederationJob,
    {
      job_id: "0b7e7f4e-7a4e-4b43-9d33-4f0e8c3c2a11",
      clients: ["hospital-a"],
      min_clients: 1,
      rounds: 1,
      strategy: "FED_AVG",
      privacy: { mechanism: "DP_SGD", noise_multiplier: 1.2, max_grad_norm: 1, target_epsilon: 3 },
      dataset_id: "toy.csv",
      model_arch: "SimpleMLP",
    },
    "FederationJob",
  );
  const model = buildModelSpec("SimpleMLP", { input_dim: 2, num_classes: 2, hidden: [4] });
  return {
    job,
    round: 1,
    model,
    global: new Network(model, kernels(), new SeededRandom(7)).weights(),
    plan: { epochs: 1, batchSize: 16, learningRate: 0.1, momentum: 0 },
  };
}

/** A copy of an initialised, empty ledger database (a fresh one costs seconds of initdb). */
let dbTemplate = "";
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "agent-db-"));
  await (await openDatabase({ workspace: dir, url: "" })).close();
  dbTemplate = join(dir, "db");
});

async function running(mode: AgentMode, policy?: string) {
  const { dir } = siteWithData();
  cpSync(dbTemplate, join(dir, "ws", "db"), { recursive: true });
  if (policy) writeFileSync(join(dir, "policy.yaml"), policy);
  const config = {
    node_id: "hospital-a",
    data_root: "data",
    ...(policy ? { trust_policy: "policy.yaml" } : {}),
  };
  return startAgentProcess({
    config: parseContract(AgentConfig, config, "config"),
    configDir: dir,
    workspace: join(dir, "ws"),
    mode,
    port: 0,
    logger: silentLogger,
    detect: noTee,
  });
}

describe("agent process (in this process)", () => {
  it("refuses to start in HARDWARE mode without a TEE", async () => {
    const { dir } = siteWithData();
    const err = await startAgentProcess({
      config: parseContract(AgentConfig, { node_id: "hospital-a", data_root: "data" }, "config"),
      configDir: dir,
      workspace: join(dir, "ws"),
      mode: "HARDWARE",
      port: 0,
      logger: silentLogger,
      detect: noTee,
    }).catch((e) => e);
    expect(err.code).toBe("NO_TEE");
  });

  it("--insecure: the agent serves, reports UNTRUSTED and refuses to train", async () => {
    const agent = await running("INSECURE");
    try {
      expect(agent.service.attestation()).toMatchObject({ status: "UNTRUSTED", hardware_type: "INSECURE" });
      expect(agent.service.health()).toMatchObject({ healthy: false });
      await expect(agent.agent.run(task())).rejects.toMatchObject({ code: "ATTESTATION_NOT_TRUSTED" });
      expect(agent.service.metrics()).toMatch(/^enclave_tasks_refused_total 1$/m);
      expect(agent.service.metrics()).toMatch(/^enclave_train_steps_total 0$/m);
    } finally {
      await agent.stop();
    }
  });

  it("--insecure under a policy that allows it: TRUSTED, and fails closed when re-attestation hangs", async () => {
    const agent = await running("INSECURE", "allow_insecure: true\nreattest_interval_seconds: 1\n");
    try {
      expect(agent.service.attestation()).toMatchObject({ status: "TRUSTED", hardware_type: "INSECURE" });
      expect(agent.service.health()).toEqual({ healthy: true });
      // The device stops answering: the next collection never completes.
      let calls = 0;
      agent.agent.attest = () => {
        calls++;
        return new Promise(() => undefined);
      };
      for (let i = 0; i < 50 && agent.service.health().healthy; i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(calls).toBeGreaterThanOrEqual(1);
      expect(agent.service.health()).toEqual({
        healthy: false,
        reason: "attestation expired: re-attestation has not completed; this agent refuses to train",
      });
    } finally {
      await agent.stop();
    }
  });

  it("--simulation: the sidecar's budget is the guard the executor enforced", async () => {
    const agent = await running("SIMULATED");
    try {
      const res = await fetch(`http://127.0.0.1:${agent.port}/health`);
      expect(res.status).toBe(200);
      const outcome = await agent.agent.run(task());
      expect(outcome.metrics.steps).toBeGreaterThan(0);
      const budget = (await (await fetch(`http://127.0.0.1:${agent.port}/privacy/budget`)).json()) as Record<
        string,
        unknown
      >;
      expect(budget).toMatchObject({
        epsilon: outcome.metrics.epsilon,
        target_epsilon: 3,
        delta: 1e-5,
        steps: outcome.metrics.steps,
        dataset_id: "toy.csv",
      });
      expect(budget.epsilon as number).toBeGreaterThan(0);
    } finally {
      await agent.stop();
    }
    await agent.stop(); // idempotent
  });
});
