import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";
import { runEnclave } from "../support/enclave-process.js";
import { AgentConfig } from "../../src/schemas/agent-config.js";
import { parseContract } from "../../src/schemas/contract.js";
import { FederationJob } from "../../src/schemas/federation.js";
import { startAgentProcess } from "../../src/agent/agent-process.js";
import { createLogger } from "../../src/logging/logger.js";
import { buildModelSpec } from "../../src/model/registry.js";
import { Network } from "../../src/model/network.js";
import { serializeSafetensors } from "../../src/model/safetensors.js";
import { SeededRandom } from "../../src/random.js";
import { kernels } from "../../src/tensor/backend.js";
import {
  NUMBER_CANARIES,
  databaseTemplate,
  findIn,
  needles,
  plantNumbers,
  scanTree,
  seedWorkspace,
  stringCanary,
  writeDataset,
} from "./canary.js";

/**
 * The non-negotiable, end to end: canary values planted in datasets must appear in no stdout,
 * stderr, log line (at trace), error message, HTTP response or written file. The CLI runs are real
 * processes of the build (`npm test` builds first) in a sandbox: HOME, TMPDIR and the working
 * directory all point inside it, so "every file it writes" is the sandbox minus the input data.
 */

interface Sandbox {
  root: string;
  input: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

function sandbox(): Sandbox {
  const root = mkdtempSync(join(tmpdir(), "canary-"));
  const dirs = {
    input: join(root, "input"),
    cwd: join(root, "cwd"),
    home: join(root, "home"),
    tmp: join(root, "tmp"),
  };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  return {
    root,
    input: dirs.input,
    cwd: dirs.cwd,
    env: {
      ...process.env,
      HOME: dirs.home,
      TMPDIR: dirs.tmp,
      ENCLAVE_WORKSPACE: join(dirs.home, "workspace"),
      ENCLAVE_LOG_LEVEL: "trace",
      DATABASE_URL: "",
    },
  };
}

const run = (box: Sandbox, args: string[]) => runEnclave(args, box);

const notInput = (rel: string) => rel === "input";

let template: string;
beforeAll(async () => {
  template = await databaseTemplate(mkdtempSync(join(tmpdir(), "canary-db-")));
});

describe("canary scanner (positive controls: the scan can fail)", () => {
  it("finds every planted number in the planted CSV, and their float bytes in a safetensors file", () => {
    const dir = mkdtempSync(join(tmpdir(), "canary-ctl-"));
    const csv = writeDataset(dir, "bc", plantNumbers);
    const text = readFileSync(csv);
    for (const c of NUMBER_CANARIES)
      expect(findIn(text, needles([], [c]))).toContain(`${c.cell} as "${c.cell}"`);
    const weights = new Map([
      [
        "w",
        { shape: [NUMBER_CANARIES.length], data: Float32Array.from(NUMBER_CANARIES.map((c) => c.value)) },
      ],
    ]);
    const bytes = Buffer.from(serializeSafetensors(weights, { format: "pt" }));
    const hits = findIn(bytes, needles([]));
    for (const c of NUMBER_CANARIES) expect(hits).toContain(`${c.cell} as float32 LE`);
    const s = stringCanary("CTL");
    expect(findIn(`error: ${s.toLowerCase()}`, needles([s]))).toContain(`${s} (tail)`);
  });
});

describe("canary: enclave train", () => {
  it("valid data with planted numbers: nothing of them in stdout, stderr, report, weights or ledger", async () => {
    const box = sandbox();
    const csv = writeDataset(box.input, "bc", plantNumbers);
    seedWorkspace(template, join(box.root, "ws"));
    const r = await run(box, [
      "train",
      "--dataset",
      csv,
      "--epochs",
      "2",
      "--target-epsilon",
      "3",
      "--workspace",
      join(box.root, "ws"),
      "--out",
      join(box.root, "out"),
      "--seed",
      "11",
      "--baseline",
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/written .*model\.safetensors/);
    const all = needles([]);
    expect(findIn(r.stdout, all)).toEqual([]);
    expect(findIn(r.stderr, all)).toEqual([]);
    expect(scanTree(box.root, all, notInput)).toEqual([]);
    // The run really read the planted rows: 569 rows, split 455/114.
    const report = JSON.parse(readFileSync(join(box.root, "out/report.json"), "utf8"));
    expect(report.dataset.train_rows + report.dataset.test_rows).toBe(569);
  });

  it("Data Sentry rejections name row and column, never the value, and write nothing that holds it", async () => {
    const cases: {
      name: string;
      canaries: string[];
      plant: Parameters<typeof writeDataset>[2];
      expect: RegExp;
    }[] = [];
    const labels = Array.from({ length: 12 }, () => stringCanary("LABEL"));
    cases.push({
      name: "label",
      canaries: labels,
      plant: (rows, col) => labels.forEach((s, i) => (rows[7 + i][col("diagnosis")] = s)),
      expect:
        /\[DATASET_SCHEMA_VIOLATION\]: dataset "label\.csv" refused: row 7, column "diagnosis": label is not one of the declared classes; .*\(and \d+ more\)/,
    });
    const num = stringCanary("NUM");
    cases.push({
      name: "number",
      canaries: [num],
      plant: (rows, col) => (rows[9][col("mean_texture")] = num),
      expect: /refused: row 9, column "mean_texture": is not a decimal number$/m,
    });
    cases.push({
      name: "range",
      canaries: [],
      plant: (rows, col) => (rows[11][col("mean_texture")] = "-84213.55719"),
      expect: /refused: row 11, column "mean_texture": is below the declared minimum 0$/m,
    });
    const extra = stringCanary("FIELD");
    cases.push({
      name: "fields",
      canaries: [extra],
      plant: (rows) => rows[12].push(extra),
      expect: /refused: row 12: has 32 fields, the schema declares 31$/m,
    });
    const header = stringCanary("HEADER");
    cases.push({
      name: "header",
      canaries: [header],
      plant: (rows) => (rows[0][3] = header),
      expect: /refused: .*header column 4 does not match the declared name/,
    });
    const quote = stringCanary("QUOTE");
    cases.push({
      name: "syntax",
      canaries: [quote],
      plant: (rows, col) => (rows[13][col("mean_texture")] = `"${quote}`),
      expect:
        /\[DATASET_MALFORMED\]: dataset "syntax\.csv" refused: row \d+: CSV syntax error \(CSV_QUOTE_NOT_CLOSED\)$/m,
    });
    const boxes = cases.map(() => sandbox());
    const results = await Promise.all(
      cases.map((c, i) => {
        const csv = writeDataset(boxes[i].input, c.name, c.plant);
        return run(boxes[i], [
          "train",
          "--dataset",
          csv,
          "--epochs",
          "1",
          "--target-epsilon",
          "3",
          "--out",
          join(boxes[i].root, "out"),
          "--seed",
          "1",
        ]);
      }),
    );
    const negative = {
      column: "mean_texture",
      row: 11,
      cell: "-84213.55719",
      value: -84213.55719,
      texts: ["84213.5", "8.4213e+4"],
    };
    cases.forEach((c, i) => {
      const r = results[i];
      expect(r.code, c.name).toBe(1);
      expect(r.stderr, c.name).toMatch(c.expect);
      const list = needles(c.canaries, [...NUMBER_CANARIES, negative]);
      expect(findIn(r.stdout + r.stderr, list), c.name).toEqual([]);
      expect(scanTree(boxes[i].root, list, notInput), c.name).toEqual([]);
    });
  });
});

describe("canary: enclave simulate --log-level trace", () => {
  it("planted numbers appear in no output, log line or report file", async () => {
    const box = sandbox();
    const csv = writeDataset(box.input, "bc", plantNumbers);
    const out = join(box.root, "out");
    // The sites' directories are kept (--sites-dir) so the scan covers them after the run.
    const sites = join(box.root, "sites");
    const r = await run(box, [
      "simulate",
      "--dataset",
      csv,
      "--clients",
      "2",
      "--rounds",
      "2",
      "--seed",
      "5",
      "--log-level",
      "trace",
      "--out",
      out,
      "--sites-dir",
      sites,
    ]);
    expect(r.code, r.stderr).toBe(0);
    // Logging really ran at trace: debug-level (20) lines from the agents are there.
    expect(r.stderr).toMatch(/"level":20,.*"msg":"task received"/);
    expect(r.stderr).toMatch(/"msg":"task trained and sanitised"/);
    const all = needles([]);
    expect(findIn(r.stdout, all)).toEqual([]);
    expect(findIn(r.stderr, all)).toEqual([]);
    // sites/<id>/data/ is each simulated site's own local data root: the partitioned rows
    // legitimately live there (as they would at a hospital), so it is the one place not scanned.
    const siteData = (rel: string) => rel === "input" || /^sites\/[^/]+\/data$/.test(rel);
    expect(scanTree(box.root, all, siteData)).toEqual([]);
    // ...and the exclusion is not hiding everything: the site shards do hold planted values.
    const shards = scanTree(sites, all, () => false);
    expect(shards.length).toBeGreaterThan(0);
  });

  it("a rejected dataset's values stay out of simulate's error output", async () => {
    const box = sandbox();
    const s = stringCanary("SIMLABEL");
    const csv = writeDataset(box.input, "bad", (rows, col) => (rows[3][col("diagnosis")] = s));
    const r = await run(box, [
      "simulate",
      "--dataset",
      csv,
      "--clients",
      "2",
      "--rounds",
      "1",
      "--log-level",
      "trace",
      "--out",
      join(box.root, "out"),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refused: row 3, column "diagnosis": label is not one of the declared classes/);
    expect(findIn(r.stdout + r.stderr, needles([s]))).toEqual([]);
    expect(scanTree(box.root, needles([s]), notInput)).toEqual([]);
  });
});

describe("canary: the agent's executor and sidecar (in process, logs at trace)", () => {
  it("what leaves the agent (outcome, weights, logs, errors, sidecar responses) holds no planted value", async () => {
    const dir = mkdtempSync(join(tmpdir(), "canary-agent-"));
    writeDataset(join(dir, "data"), "bc", plantNumbers);
    const label = stringCanary("AGENTLABEL");
    writeDataset(join(dir, "data"), "bad", (rows, col) => (rows[21][col("diagnosis")] = label));
    seedWorkspace(template, join(dir, "ws"));
    let logs = "";
    const sink = new Writable({
      write(chunk, _enc, done) {
        logs += chunk;
        done();
      },
    });
    const agent = await startAgentProcess({
      config: parseContract(
        AgentConfig,
        { node_id: "hospital-a", data_root: "data", dataset_id: "bc.csv" },
        "config",
      ),
      configDir: dir,
      workspace: join(dir, "ws"),
      mode: "SIMULATED",
      port: 0,
      logger: createLogger({ level: "trace", destination: sink }),
      detect: { root: mkdtempSync(join(tmpdir(), "no-tee-")), runCommand: null },
    });
    try {
      const model = buildModelSpec("SimpleMLP", { input_dim: 30, num_classes: 2, hidden: [8] });
      const job = (datasetId: string) =>
        parseContract(
          FederationJob,
          {
            job_id: "5b0f3c1e-8d7a-4e4b-9a51-2c6f0e9d7b13",
            clients: ["hospital-a"],
            min_clients: 1,
            rounds: 1,
            strategy: "SCAFFOLD",
            privacy: { mechanism: "DP_SGD", noise_multiplier: 1.1, max_grad_norm: 1, target_epsilon: 3 },
            dataset_id: datasetId,
            model_arch: "SimpleMLP",
          },
          "FederationJob",
        );
      const global = new Network(model, kernels(), new SeededRandom(3)).weights();
      const plan = { epochs: 1, batchSize: 32, learningRate: 0.05, momentum: 0 };
      const outcome = await agent.agent.run({ job: job("bc.csv"), round: 1, model, global, plan });
      expect(outcome.numExamples).toBe(569);
      const err = await agent.agent
        .run({ job: job("bad.csv"), round: 2, model, global, plan })
        .catch((e: Error) => e);
      expect(err).toMatchObject({ code: "DATASET_SCHEMA_VIOLATION" });
      const responses = await Promise.all(
        ["/health", "/attestation", "/privacy/budget", "/metrics"].map(async (p) =>
          (await fetch(`http://127.0.0.1:${agent.port}${p}`)).text(),
        ),
      );
      const list = needles([label]);
      const tensors = [...outcome.weights.values(), ...(outcome.controlDelta?.values() ?? [])];
      const tensorBytes = Buffer.concat(
        tensors.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
      );
      expect(tensorBytes.length).toBeGreaterThan(0);
      expect(findIn(tensorBytes, list)).toEqual([]);
      expect(
        findIn(JSON.stringify({ ...outcome, weights: undefined, controlDelta: undefined }), list),
      ).toEqual([]);
      expect(findIn(`${(err as Error).message} ${String((err as Error).stack)}`, list)).toEqual([]);
      expect(findIn(responses.join("\n"), list)).toEqual([]);
      expect(logs).toMatch(/"level":20,/); // debug lines were written
      expect(findIn(logs, list)).toEqual([]);
    } finally {
      await agent.stop();
    }
  });
});
