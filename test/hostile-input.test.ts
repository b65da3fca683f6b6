import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseCsvDataset } from "../src/data/csv-loader.js";

const BIN = new URL("../bin/enclave.js", import.meta.url).pathname;
const VECTOR = new URL("./vectors/sev-snp/trustee_test-report.bin", import.meta.url).pathname;
const DATA = new URL("../data/", import.meta.url).pathname;

/** The built CLI as its own process (a hang shows as a timeout, a crash as a signal). */
function enclave(
  args: string[],
  cwd?: string,
): Promise<{ code: number; out: string; err: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((res) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { ...process.env, DATABASE_URL: "" }, timeout: 60_000, maxBuffer: 1 << 24 },
      (error, out, err) =>
        res({ code: error ? ((error as { code?: number }).code ?? -1) : 0, out, err, ms: Date.now() - t0 }),
    );
  });
}

const validJob = {
  job_id: "6f1c2b1e-3f0a-4c59-9a57-8f2f1b3f0c11",
  clients: ["site-a", "site-b"],
  min_clients: 2,
  rounds: 1,
  strategy: "FED_AVG",
  privacy: { mechanism: "DP_SGD", noise_multiplier: 1.1, max_grad_norm: 1, target_epsilon: 3, delta: 1e-5 },
  dataset_id: "breast-cancer-wisconsin.csv",
  model_arch: "SimpleMLP",
};

function expectTyped(r: { code: number; err: string; ms: number }, code: string) {
  expect(r.code, r.err).toBe(1);
  expect(r.err).toContain(`[${code}]`);
  expect(r.err).not.toContain("unexpected error");
  expect(r.ms).toBeLessThan(30_000);
}

describe("job files: path-safe ids, a strict bounded reader, no echo", () => {
  it("refuses ids that would write outside the report folder, before anything is written", async () => {
    const dir = mkdtempSync(join(tmpdir(), "enclave-hostile-"));
    mkdirSync(join(dir, "victim"));
    writeFileSync(join(dir, "victim", "owned.csv"), "precious\n");
    const out = join(dir, "a", "b", "c", "d", "report");
    const jobs: Record<string, unknown>[] = [
      { dataset_id: "../../../../victim/owned.csv" },
      { clients: ["../../../../victim-dir", "site-b"] },
      { clients: ["a\u0000b", "site-b"] },
      { clients: ["x".repeat(5000), "site-b"] },
    ];
    for (const [i, patch] of jobs.entries()) {
      const file = join(dir, `job-${i}.json`);
      writeFileSync(file, JSON.stringify({ ...validJob, ...patch }));
      const r = await enclave(["simulate", "--job", file, "--out", out]);
      expectTyped({ ...r }, "VALIDATION_FAILED");
      expect(r.err).not.toContain("x".repeat(100));
    }
    expect(readFileSync(join(dir, "victim", "owned.csv"), "utf8")).toBe("precious\n");
    expect(existsSync(join(dir, "a"))).toBe(false);
    expect(readdirSync(dir).sort()).toEqual(
      [...jobs.keys()]
        .map((i) => `job-${i}.json`)
        .concat("victim")
        .sort(),
    );
  });

  it("refuses duplicate keys, oversized files, special files, and never echoes a value", async () => {
    const dir = mkdtempSync(join(tmpdir(), "enclave-hostile-"));
    const dup = join(dir, "dup.json");
    writeFileSync(dup, JSON.stringify(validJob).replace('"rounds":1', '"rounds":1,"rounds":500'));
    expectTyped(await enclave(["simulate", "--job", dup]), "VALIDATION_FAILED");
    const big = join(dir, "big.json");
    writeFileSync(big, JSON.stringify({ ...validJob, model_arch: "M".repeat(2 << 20) }));
    const r = await enclave(["simulate", "--job", big]);
    expectTyped(r, "JOB_UNREADABLE");
    expect(r.err).not.toContain("MMMM");
    const secret = join(dir, "secret.yaml");
    writeFileSync(secret, `${JSON.stringify(validJob).slice(0, -1)}, "notes": "${"S3CRET".repeat(1000)}"}`);
    const s = await enclave(["simulate", "--job", secret]);
    expectTyped(s, "VALIDATION_FAILED");
    expect(s.err).not.toContain("S3CRET");
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    expectTyped(await enclave(["simulate", "--job", fifo]), "JOB_UNREADABLE");
    expectTyped(await enclave(["simulate", "--job", "/dev/zero"]), "JOB_UNREADABLE");
    expectTyped(await enclave(["simulate", "--job", dir]), "JOB_UNREADABLE");
  });
});

describe("every path that comes in is a bounded regular file", () => {
  it("verify refuses /dev/zero, a FIFO and a directory as evidence, certificate or policy, at once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "enclave-hostile-"));
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    for (const bad of ["/dev/zero", fifo, dir]) {
      expectTyped(await enclave(["verify", bad]), "INPUT_UNREADABLE");
      expectTyped(await enclave(["verify", VECTOR, "--cert", bad]), "INPUT_UNREADABLE");
      expectTyped(await enclave(["verify", VECTOR, "--policy", bad]), "POLICY_UNREADABLE");
    }
  });

  it("an unwritable --out is a typed error before any work in train, simulate, attest and schemas", async () => {
    const dir = mkdtempSync(join(tmpdir(), "enclave-hostile-"));
    const file = join(dir, "a-file");
    writeFileSync(file, "x");
    const under = join(file, "sub");
    expectTyped(await enclave(["simulate", "--out", under, "--rounds", "1"]), "OUTPUT_NOT_WRITABLE");
    expectTyped(
      await enclave(["attest", "--simulation", "--out", join(under, "e.bin")]),
      "OUTPUT_NOT_WRITABLE",
    );
    expectTyped(await enclave(["attest", "--simulation", "--out", dir]), "OUTPUT_NOT_WRITABLE");
    expectTyped(await enclave(["schemas", "--out", under]), "OUTPUT_NOT_WRITABLE");
    expectTyped(await enclave(["schemas", "--out", file]), "OUTPUT_NOT_WRITABLE");
    expect(readdirSync(dir)).toEqual(["a-file"]);
    // A directory where mkdir answers ENOENT (procfs): Node's recursive mkdir loops on it forever.
    expectTyped(await enclave(["schemas", "--out", "/proc/enclave-out"]), "OUTPUT_NOT_WRITABLE");
  });
});

describe("simulate: categorical features and exit codes", () => {
  it("a dataset with a category feature trains at every site; a completed run exits 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "enclave-cat-"));
    const text = readFileSync(join(DATA, "breast-cancer-wisconsin.csv"), "utf8")
      .replace(/\r\n/g, "\n")
      .trimEnd();
    const [header, ...rows] = text.split("\n");
    writeFileSync(
      join(dir, "cat.csv"),
      [`site,${header}`, ...rows.map((r, i) => `${i % 3 === 0 ? "north" : "south"},${r}`)].join("\n") + "\n",
    );
    const schema = JSON.parse(readFileSync(join(DATA, "breast-cancer-wisconsin.schema.json"), "utf8"));
    delete schema.sha256;
    schema.columns.unshift({ name: "site", type: "category", values: ["north", "south"] });
    writeFileSync(join(dir, "cat.schema.json"), JSON.stringify(schema));
    const r = await enclave([
      "simulate",
      "--dataset",
      join(dir, "cat.csv"),
      "--rounds",
      "1",
      "--clients",
      "2",
      "--seed",
      "1",
      "--json",
      "--out",
      join(dir, "rep"),
    ]);
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(r.out);
    expect(s.status).toBe("completed");
    expect(s.rounds[0].clients).toHaveLength(2);
  });

  it("a job that ends without completing exits non-zero with its documented code", async () => {
    const dir = mkdtempSync(join(tmpdir(), "enclave-exit-"));
    // Far too little budget for a round at this noise: the sites cannot train.
    const file = join(dir, "job.json");
    writeFileSync(
      file,
      JSON.stringify({
        ...validJob,
        privacy: { ...validJob.privacy, noise_multiplier: 0.5, target_epsilon: 0.01 },
      }),
    );
    const r = await enclave(["simulate", "--job", file, "--json", "--seed", "1", "--out", join(dir, "rep")]);
    const status = JSON.parse(r.out).status;
    expect(status).not.toBe("completed");
    expect(r.code).toBe(status === "privacy_budget_exhausted" ? 3 : 5);
  });
});

describe("CSV syntax errors", () => {
  it("name the row where the syntax breaks, not row 1", async () => {
    const schema = {
      format: "csv",
      header: true,
      columns: [
        { name: "a", type: "float" },
        { name: "y", type: "category", values: ["p", "q"] },
      ],
      label: { column: "y", classes: ["p", "q"] },
    };
    const lines = ["a,y", ...Array.from({ length: 500 }, (_, i) => `${i},p`), '1,"q', "2,q"];
    await expect(parseCsvDataset(Buffer.from(lines.join("\n")), schema, "x.csv")).rejects.toThrow(
      /row 501: CSV syntax error \(CSV_QUOTE_NOT_CLOSED\)/,
    );
  });
});
