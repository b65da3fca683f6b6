import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTrustPolicy } from "../../src/attestation/policy/load.js";
import { ConfidentialClient } from "../../src/inference/client.js";
import { createEnclaveClient } from "../../src/inference/enclave-client.js";
import { encodeFrame } from "../../src/inference/framing.js";
import { BIN, REPO } from "../canary/canary.js";
import { runEnclave } from "../support/enclave-process.js";

/**
 * The confidential-inference story end to end, each part a real process of the build: `enclave
 * train` writes a model, `enclave serve --simulation` holds it behind an attested key, `enclave
 * infer` seals rows to that key, and `enclave predict` answers the same rows locally. They must
 * agree exactly, and every refusal the issue names must happen before anything is sealed.
 */

const CSV = join(REPO, "data/breast-cancer-wisconsin.csv");
let root: string;
let env: NodeJS.ProcessEnv;
let model: string;
let rowsFile: string;
let serveProc: ChildProcess | undefined;
let socketPath: string;
let allowSimulated: string;
let strictPolicy: string;

const run = (args: string[]) => runEnclave(args, { cwd: root, env });

/** Start `enclave serve` and wait for its one `listening` line on stdout. */
function serve(args: string[]): Promise<{ proc: ChildProcess; listening: Record<string, string> }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, "serve", ...args], {
      cwd: root,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    proc.stderr!.on("data", (b) => (err += b));
    proc.stdout!.on("data", (b) => {
      out += b;
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line && out.includes("\n")) resolve({ proc, listening: JSON.parse(line) });
    });
    proc.on("exit", (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "enclave-e2e-"));
  mkdirSync(join(root, "home"));
  env = { ...process.env, HOME: join(root, "home"), DATABASE_URL: "", ENCLAVE_LOG_LEVEL: "warn" };
  const train = await run([
    "train",
    "--dataset",
    CSV,
    "--epochs",
    "8",
    "--target-epsilon",
    "3",
    "--seed",
    "11",
    "--workspace",
    join(root, "ws"),
    "--out",
    join(root, "trained"),
    "--json",
  ]);
  expect(train.code, train.stderr).toBe(0);
  model = join(root, "trained/model.safetensors");
  // Rows as a user would send them: the training file's header, a mix of classes, label column kept.
  const lines = readFileSync(CSV, "utf8").trim().split(/\r?\n/);
  rowsFile = join(root, "rows.csv");
  writeFileSync(rowsFile, [lines[0], ...lines.slice(1).filter((_, i) => i % 7 === 0)].join("\n") + "\n");
  allowSimulated = join(root, "allow-simulated.json");
  writeFileSync(allowSimulated, JSON.stringify({ allow_simulated: true }));
  strictPolicy = join(root, "default-policy.json");
  writeFileSync(strictPolicy, "{}");
  socketPath = join(root, "enclave.sock");
  const started = await serve([
    "--model",
    model,
    "--socket",
    socketPath,
    "--simulation",
    "--chat",
    "local",
    "--log-level",
    "warn",
  ]);
  serveProc = started.proc;
  expect(started.listening).toMatchObject({ listening: `unix:${socketPath}`, evidence_kind: "simulated" });
});

afterAll(() => {
  serveProc?.kill("SIGTERM");
});

describe("enclave serve / infer / predict", () => {
  it("infer through the simulated TEE prints exactly what predict prints, in input order, and the model is right", async () => {
    const local = await run(["predict", "--model", model, "--input", rowsFile, "--json"]);
    expect(local.code, local.stderr).toBe(0);
    const remote = await run([
      "infer",
      "--endpoint",
      `unix:${socketPath}`,
      "--input",
      rowsFile,
      "--policy",
      allowSimulated,
      "--json",
    ]);
    expect(remote.code, remote.stderr).toBe(0);
    expect(remote.stdout).toBe(local.stdout);
    const { predictions } = JSON.parse(local.stdout) as {
      predictions: { label: string; probabilities: number[] }[];
    };
    const truth = readFileSync(rowsFile, "utf8")
      .trim()
      .split(/\r?\n/)
      .slice(1)
      .map((l) => l.slice(l.lastIndexOf(",") + 1));
    expect(predictions).toHaveLength(truth.length);
    // Independent of our code: the CSV's own labels. A DP model of this data is right on >= 90% of rows.
    const correct = predictions.filter((p, i) => p.label === truth[i]).length;
    expect(correct / truth.length).toBeGreaterThanOrEqual(0.9);
  });

  it("serve --chat local streams our own model's answer to a sealed conversation, offline", async () => {
    const client = await ConfidentialClient.connect(`unix:${socketPath}`, {
      policy: parseTrustPolicy({ allow_simulated: true }),
    });
    try {
      const rows = readFileSync(rowsFile, "utf8");
      const summary = await client.chat([{ role: "user", content: rows }]);
      const local = JSON.parse(
        (await run(["predict", "--model", model, "--input", rowsFile, "--json"])).stdout,
      );
      const labels = summary.text
        .trim()
        .split("\n")
        .map((l) => l.split(" ")[2]);
      expect(labels).toEqual(local.predictions.map((p: { label: string }) => p.label));
      expect(summary.chunks).toBe(labels.length);
    } finally {
      client.close();
    }
  });

  it("mock mode (ENCLAVE_MODE=mock) answers exactly as predict does", async () => {
    const local = JSON.parse(
      (await run(["predict", "--model", model, "--input", rowsFile, "--json"])).stdout,
    );
    const client = await createEnclaveClient({ env: { ENCLAVE_MODE: "mock", ENCLAVE_MODEL: model } });
    try {
      expect({ predictions: await client.predict(readFileSync(rowsFile, "utf8")) }).toEqual(local);
    } finally {
      await client.close();
    }
  });

  it("infer under the default policy refuses simulated evidence and says so", async () => {
    const r = await run([
      "infer",
      "--endpoint",
      `unix:${socketPath}`,
      "--input",
      rowsFile,
      "--policy",
      strictPolicy,
      "--json",
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /\[EVIDENCE_UNTRUSTED\].*before sealing anything.*simulated evidence is not hardware-backed/,
    );
  });

  it("serve refuses to start without TEE hardware unless --simulation or --insecure is given", async () => {
    const empty = mkdtempSync(join(tmpdir(), "no-tee-"));
    const saved = env;
    env = { ...env, ENCLAVE_TEE_DETECT_ROOT: empty };
    try {
      const r = await run(["serve", "--model", model, "--socket", join(root, "never.sock")]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/\[NO_TEE\].*--simulation/);
    } finally {
      env = saved;
    }
  });

  it("the serving process survives an oversized frame and a truncated one, and answers afterwards", async () => {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1 << 30);
    const reply = await new Promise<Buffer>((resolve) => {
      const s = connect(socketPath);
      const got: Buffer[] = [];
      s.on("data", (b) => got.push(b));
      s.on("close", () => resolve(Buffer.concat(got)));
      s.write(header);
    });
    expect(JSON.parse(reply.subarray(4).toString())).toMatchObject({ error: { code: "FRAME_TOO_LARGE" } });
    await new Promise<void>((resolve) => {
      const s = connect(socketPath, () =>
        s.end(encodeFrame(Buffer.from('{"command":"HEALTH"}\n')).subarray(0, 7)),
      );
      s.on("close", () => resolve());
    });
    const r = await run([
      "infer",
      "--endpoint",
      `unix:${socketPath}`,
      "--input",
      rowsFile,
      "--policy",
      allowSimulated,
      "--json",
    ]);
    expect(r.code, r.stderr).toBe(0);
  });

  it("refuses bad endpoints, unreadable inputs and rows outside the schema with named errors", async () => {
    const badEndpoint = await run([
      "infer",
      "--endpoint",
      "http://x",
      "--input",
      rowsFile,
      "--policy",
      allowSimulated,
    ]);
    expect(badEndpoint.stderr).toMatch(/\[ENDPOINT_INVALID\]/);
    const noInput = await run(["predict", "--model", model, "--input", join(root, "absent.csv")]);
    expect(noInput.stderr).toMatch(/\[INPUT_UNREADABLE\].*ENOENT/);
    const badRows = join(root, "bad.csv");
    const lines = readFileSync(rowsFile, "utf8").split("\n");
    writeFileSync(badRows, [lines[0], lines[1].replace(/^[^,]+/, "banana")].join("\n") + "\n");
    const remote = await run([
      "infer",
      "--endpoint",
      `unix:${socketPath}`,
      "--input",
      badRows,
      "--policy",
      allowSimulated,
    ]);
    expect(remote.code).toBe(1);
    expect(remote.stderr).toMatch(/\[PAYLOAD_INVALID\].*row 1.*mean_radius/);
    expect(remote.stderr).not.toMatch(/banana/);
  });
});
