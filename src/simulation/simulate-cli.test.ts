// `enclave simulate --job FILE`: a FederationJob in JSON or YAML runs as written, `--json` prints one
// machine-readable object, and a bad job file is refused with an error naming each field, before
// anything is written. Spawns the built CLI: `npm run build` first.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify as toYaml } from "yaml";
import { computeEpsilon } from "../privacy/accountant/index.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const CLI = join(REPO, "bin", "enclave.js");

const job = {
  job_id: "0b7f2a4e-3c1d-4e5f-9a8b-7c6d5e4f3a2b",
  clients: ["site-north", "site-south"],
  min_clients: 2,
  rounds: 3,
  strategy: "SCAFFOLD",
  privacy: {
    mechanism: "DP_SGD",
    noise_multiplier: 1.2,
    max_grad_norm: 1,
    target_epsilon: 4,
    delta: 1e-5,
  },
  dataset_id: "breast-cancer-wisconsin.csv",
  model_arch: "SimpleMLP",
};

interface Cli {
  code: number;
  stdout: string;
  stderr: string;
}

function enclave(args: string[], cwd: string): Promise<Cli> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe("enclave simulate --job", () => {
  let root: string;

  beforeAll(async () => {
    expect(existsSync(join(REPO, "dist", "cli", "main.js")), "dist/ is missing: run `npm run build`").toBe(
      true,
    );
    root = mkdtempSync(join(tmpdir(), "enclave-cli-"));

    writeFileSync(join(root, "job.json"), JSON.stringify(job, null, 2));
    writeFileSync(join(root, "job.yaml"), toYaml(job));
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("runs a JSON job as written and prints one JSON summary", async () => {
    const out = join(root, "from-json");
    const r = await enclave(["simulate", "--job", "job.json", "--seed", "4", "--json", "--out", out], root);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]);

    expect(s.status).toBe("completed");
    expect(s.job_id).toBe(job.job_id);
    expect(s.report_dir).toBe(out);
    expect(s.rounds).toHaveLength(job.rounds);
    for (const round of s.rounds) {
      expect(round.clients).toEqual(job.clients);
      expect(Object.keys(round.epsilon).sort()).toEqual([...job.clients].sort());
    }
    for (const v of [s.final.accuracy, s.final.loss, s.baseline.accuracy])
      expect(Number.isFinite(v)).toBe(true);
    expect(s.final.accuracy).toBe(s.rounds[job.rounds - 1].accuracy);
    expect(s.final.accuracy).toBeGreaterThan(0.8);

    expect(s.clients.map((c: { id: string }) => c.id)).toEqual(job.clients);
    let rows = 0;
    for (const c of s.clients) {
      for (const key of ["id", "epsilon", "delta", "examples"]) expect(c).toHaveProperty(key);
      expect(c.delta).toBe(job.privacy.delta);
      rows += c.examples;
      // The job's sigma, not a calibrated one: 3 rounds of one epoch, at Opacus' q = 1/ceil(n/16).
      const batches = Math.ceil(c.examples / 16);
      const expected = computeEpsilon({
        accountant: "rdp",
        noiseMultiplier: job.privacy.noise_multiplier,
        sampleRate: 1 / batches,
        steps: job.rounds * batches,
        delta: job.privacy.delta,
      }).epsilon;
      expect(c.epsilon).toBeCloseTo(expected, 9);
      expect(c.epsilon).toBeLessThanOrEqual(job.privacy.target_epsilon);
    }
    expect(rows).toBe(455); // 569 rows of the bundled data less the 20% held out

    const written = JSON.parse(readFileSync(join(out, "job.json"), "utf8"));
    expect(written).toEqual({ ...job, proximal_mu: 0.01 }); // the contract's default filled in
  });

  it("runs the same job from YAML to the same model", async () => {
    const out = join(root, "from-yaml");
    const r = await enclave(["simulate", "--job", "job.yaml", "--seed", "4", "--json", "--out", out], root);
    expect(r.code).toBe(0);
    const fromYaml = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
    const fromJson = JSON.parse(readFileSync(join(root, "from-json", "summary.json"), "utf8"));
    expect(fromYaml.job).toEqual(fromJson.job);
    expect(fromYaml.model_sha256).toBe(fromJson.model_sha256);
  });

  it("fills a fresh job id and the calibrated noise when the job file omits them, and says so", async () => {
    const { job_id: _id, ...rest } = job;
    const { noise_multiplier: _sigma, ...privacy } = job.privacy;
    void _id;
    void _sigma;
    writeFileSync(join(root, "short.json"), JSON.stringify({ ...rest, clients: ["a", "b", "c"], privacy }));
    const out = join(root, "short-out");
    const r = await enclave(["simulate", "--job", "short.json", "--workers", "3", "--out", out], root);
    expect(r.code, r.stderr).toBe(0);
    const written = JSON.parse(readFileSync(join(out, "job.json"), "utf8"));
    expect(written.job_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(r.stderr).toContain(`job_id not in the job file: generated ${written.job_id}`);
    expect(r.stderr).toMatch(
      new RegExp(
        `noise_multiplier not in the job file: calibrated to ${written.privacy.noise_multiplier.toFixed(4)} so the job fits target epsilon 4`,
      ),
    );
    // Calibrated to the job's own target: the sites end close to it and never above.
    const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8"));
    for (const c of summary.clients) {
      expect(c.epsilon).toBeGreaterThan(3.5);
      expect(c.epsilon).toBeLessThanOrEqual(4);
    }
    // One site order on every round line, whatever order the three worker threads answered in.
    const lines = r.stderr.split("\n").filter((l) => /^round +\d+\/3 /.test(l));
    expect(lines).toHaveLength(3);
    for (const line of lines)
      expect([...line.slice(line.indexOf("ε:")).matchAll(/\b([abc]) [0-9.]+/g)].map((m) => m[1])).toEqual([
        "a",
        "b",
        "c",
      ]);
  });

  it("refuses a bad job file naming every offending field, before writing anything", async () => {
    const bad = {
      ...job,
      min_clients: 3,
      privacy: { ...job.privacy, target_epsilon: 7 },
      learning_rate: 0.1,
    };
    writeFileSync(join(root, "bad.json"), JSON.stringify(bad));
    const out = join(root, "bad-out");
    const r = await enclave(["simulate", "--job", "bad.json", "--json", "--out", out], root);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^enclave: error \[VALIDATION_FAILED\]: invalid FederationJob: /);
    expect(r.stderr).toMatch(/min_clients: must be <= clients\.length \(2\)/);
    expect(r.stderr).toMatch(/privacy\.target_epsilon: must be <= 5/);
    expect(r.stderr).toMatch(/unknown field\(s\) "learning_rate"/);
    expect(existsSync(out)).toBe(false);

    writeFileSync(join(root, "broken.yaml"), "job_id: [unclosed\nclients: site-north\n");
    const y = await enclave(["simulate", "--job", "broken.yaml", "--out", out], root);
    expect(y.code).toBe(1);
    expect(y.stderr).toMatch(
      /VALIDATION_FAILED.*job file.*not valid JSON or YAML \(\w+ at line \d+, column \d+\)/,
    );
    expect(existsSync(out)).toBe(false);
  });
  it("runs a strategy by --strategy with --strategy-options, recorded in the job it writes", async () => {
    // Two by the CLI (flag parsing and job.json); all nine run in process in simulation.test.ts.
    const strategies: [string, string[]][] = [
      ["FED_ADAM", ["--strategy-options", "server_lr=0.05,variant=flower"]],
      ["MULTI_KRUM", ["--strategy-options", "byzantine=0,multi_krum=2"]],
    ];
    const hashes = new Map<string, string>();
    for (const [strategy, extra] of strategies) {
      const out = join(root, `strategy-${strategy}`);
      const args = ["simulate", "--strategy", strategy, ...extra, "--clients", "4", "--rounds", "1"];
      const r = await enclave([...args, "--seed", "5", "--json", "--out", out], root);
      expect(r.code, `${strategy}: ${r.stderr}`).toBe(0);
      expect(JSON.parse(r.stdout).status).toBe("completed");
      const written = JSON.parse(readFileSync(join(out, "job.json"), "utf8"));
      expect(written.strategy).toBe(strategy);
      hashes.set(strategy, JSON.parse(r.stdout).model_sha256);
      if (strategy === "MULTI_KRUM")
        expect(written.strategy_options).toEqual({ byzantine: 0, multi_krum: 2 });
      if (strategy === "FED_ADAM")
        expect(written.strategy_options).toEqual({ server_lr: 0.05, variant: "flower" });
    }
    expect(hashes.get("FED_ADAM")).not.toBe(hashes.get("MULTI_KRUM"));
  });

  it("runs a job file's strategy_options, and refuses one its strategy lacks, naming the field, before writing", async () => {
    writeFileSync(
      join(root, "trimmed.json"),
      JSON.stringify({ ...job, strategy: "TRIMMED_MEAN", strategy_options: { beta: 0.1 }, rounds: 1 }),
    );
    const ok = await enclave(
      ["simulate", "--job", "trimmed.json", "--json", "--out", join(root, "tm")],
      root,
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(root, "tm", "job.json"), "utf8")).strategy_options).toEqual({
      beta: 0.1,
    });

    const out = join(root, "krum-beta");
    const flag = await enclave(
      ["simulate", "--strategy", "KRUM", "--strategy-options", "beta=0.1", "--out", out],
      root,
    );
    expect(flag.code).toBe(1);
    expect(flag.stderr).toMatch(/strategy_options\.beta: is not an option of KRUM/);
    expect(existsSync(out)).toBe(false);
    writeFileSync(
      join(root, "krum.json"),
      JSON.stringify({ ...job, strategy: "KRUM", strategy_options: { byzantine: 1 } }),
    );
    const file = await enclave(["simulate", "--job", "krum.json", "--out", out], root);
    expect(file.code).toBe(1);
    expect(file.stderr).toMatch(/strategy_options\.byzantine: KRUM with f = 1 needs min_clients >= 5/);
    expect(existsSync(out)).toBe(false);
    const unknown = await enclave(["simulate", "--strategy", "BULYAN", "--out", out], root);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/--strategy/);
  });
  it("refuses a federation whose memory estimate does not fit, with the estimate, before writing anything", async () => {
    const out = join(root, "too-big");
    const args = ["simulate", "--clients", "64", "--hidden", "65536,65536", "--out", out];
    const r = await enclave(args, root);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /\[MEMORY_ESTIMATE_EXCEEDED\]: training would need about [0-9.]+ GiB \(\d+ parameters, batch 16, 64 sites\) but [0-9.]+ GiB is usable here/,
    );
    expect(existsSync(out)).toBe(false);
  });
});
