import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { BudgetLedger } from "../../src/privacy/budget-ledger.js";
import { openDatabase } from "../../src/storage/database.js";
import { emptyLedgerCopier } from "../support/ledger-template.js";
import { describeOnPostgres } from "../support/postgres-server.js";
import { writePresentations } from "./presentations.js";

const BIN = new URL("../../bin/enclave.js", import.meta.url).pathname;

/** The built CLI as its own process: exit code, stdout, stderr. */
function enclave(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((res) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, DATABASE_URL: "", ...env }, maxBuffer: 1 << 24, timeout: 120_000 },
      (error, out, err) => res({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err }),
    );
  });
}

const trainArgs = (file: string, ws: string, out: string, ...more: string[]) => [
  "train",
  "--dataset",
  file,
  "--epochs",
  "20",
  "--target-epsilon",
  "5",
  "--workspace",
  ws,
  "--out",
  out,
  "--json",
  ...more,
];

function backendSuite(name: string, freshEnv: () => Promise<Record<string, string>>) {
  describe(`train and the ledger on ${name}, each run its own process`, () => {
    let seed: (ws: string) => void;
    beforeAll(async () => {
      seed = await emptyLedgerCopier(mkdtempSync(join(tmpdir(), "enclave-tpl-")));
    });
    let vars: Record<string, string> = {};
    const env = () => vars;
    /** A fresh ledger per test: a new PGlite workspace, or a new database on the server. */
    const workspace = async () => {
      vars = await freshEnv();
      const ws = mkdtempSync(join(tmpdir(), "enclave-ws-"));
      if (!vars.DATABASE_URL) seed(ws);
      return ws;
    };

    it("a larger delta, another presentation or a stronger delta gets no fresh budget; nothing is written on refusal", async () => {
      const dir = mkdtempSync(join(tmpdir(), "enclave-train-"));
      const [original, renamed, lf, gz, reversed] = writePresentations(dir);
      const ws = await workspace();
      const first = await enclave(trainArgs(original, ws, join(dir, "o1")), env());
      expect(first.code, first.err).toBe(0);
      const r1 = JSON.parse(first.out);
      expect(r1.privacy.epsilon).toBeGreaterThan(4.9);
      expect(r1.privacy.epsilon).toBeLessThanOrEqual(5);
      for (const [i, [file, more]] of (
        [
          [original, []],
          [original, ["--delta", "2e-4"]], // the exploit: a weaker delta re-evaluated the history
          [original, ["--delta", "1e-7"]],
          [renamed, []],
          [lf, []],
          [gz, []],
          [reversed, ["--delta", "2e-4"]],
        ] as [string, string[]][]
      ).entries()) {
        const out = join(dir, `refused-${i}`);
        const r = await enclave(trainArgs(file, ws, out, ...more), env());
        expect(r.code, r.err).toBe(4);
        expect(r.err).toContain("PRIVACY_BUDGET_INSUFFICIENT");
        expect(r.err).toMatch(/already spent epsilon \d+\.\d{4} \(at delta/);
        expect(r.err).toContain("enclave ledger show");
        expect(JSON.parse(r.out).refused.spent_epsilon).toBeGreaterThan(4.9);
        expect(existsSync(out)).toBe(false);
      }
      const shown = JSON.parse((await enclave(["ledger", "show", "--workspace", ws, "--json"], env())).out);
      expect(shown.datasets).toHaveLength(1);
      expect(shown.datasets[0].dataset).toMatch(/^records:v1:[0-9a-f]{64}$/);
      expect(shown.datasets[0].delta).toBe(1e-5);
      expect(shown.datasets[0].jobs).toHaveLength(1);
      expect(shown.datasets[0].epsilon).toBeCloseTo(r1.privacy.epsilon, 10);
    });

    it("delta must be well below 1/n: refused with the reason before training", async () => {
      const dir = mkdtempSync(join(tmpdir(), "enclave-train-"));
      const [original] = writePresentations(dir);
      const ws = await workspace();
      const r = await enclave(trainArgs(original, ws, join(dir, "o"), "--delta", "1e-3"), env());
      expect(r.code).toBe(1);
      expect(r.err).toContain("DELTA_TOO_LARGE");
      expect(r.err).toContain("n = 455");
      expect(existsSync(join(dir, "o"))).toBe(false);
      const shown = JSON.parse((await enclave(["ledger", "show", "--workspace", ws, "--json"], env())).out);
      expect(shown.datasets).toEqual([]);
    });

    it("a reset is an explicit operator action with a confirmation, and it is audited", async () => {
      const dir = mkdtempSync(join(tmpdir(), "enclave-train-"));
      const [original] = writePresentations(dir);
      const ws = await workspace();
      expect((await enclave(trainArgs(original, ws, join(dir, "o1")), env())).code).toBe(0);
      const key = JSON.parse(
        (await enclave(["ledger", "show", "--workspace", ws, "--dataset", original, "--json"], env())).out,
      ).datasets[0].dataset;
      const wrong = await enclave(
        ["ledger", "reset", "--workspace", ws, "--dataset", original, "--confirm", "x", "--reason", "r"],
        env(),
      );
      expect(wrong.code).toBe(1);
      expect(wrong.err).toContain("--confirm");
      const reset = await enclave(
        [
          "ledger",
          "reset",
          "--workspace",
          ws,
          "--dataset",
          key,
          "--confirm",
          key,
          "--reason",
          "new consent round",
          "--json",
        ],
        env(),
      );
      expect(reset.code, reset.err).toBe(0);
      expect(JSON.parse(reset.out).before.epsilon).toBeGreaterThan(4.9);
      const again = await enclave(trainArgs(original, ws, join(dir, "o2")), env());
      expect(again.code, again.err).toBe(0);
      expect(JSON.parse(again.out).privacy.epsilon_before).toBe(0);
      const shown = JSON.parse((await enclave(["ledger", "show", "--workspace", ws, "--json"], env())).out);
      expect(shown.audit.map((a: { action: string; reason: string }) => [a.action, a.reason])).toEqual([
        ["reset", "new consent round"],
      ]);
      expect(shown.datasets[0].jobs).toHaveLength(1);
    });

    it("history recorded under the old file-hash key is adopted, not forgotten (migration)", async () => {
      const dir = mkdtempSync(join(tmpdir(), "enclave-train-"));
      const [original] = writePresentations(dir);
      const ws = await workspace();
      // The key `train` used before records identities: sha256 of the file bytes.
      const sha = (await import("node:crypto"))
        .createHash("sha256")
        .update((await import("node:fs")).readFileSync(original))
        .digest("hex");
      const db = await openDatabase({ workspace: ws, url: env().DATABASE_URL ?? "" });
      try {
        const ledger = await BudgetLedger.open(db);
        await ledger.reserve(
          `sha256:${sha}`,
          "legacy-job",
          { noiseMultiplier: 0.8, sampleRate: 0.0667 },
          () => 2000,
        );
      } finally {
        await db.close();
      }
      const r = await enclave(trainArgs(original, ws, join(dir, "o")), env());
      expect(r.code, r.err).toBe(4);
      const shown = JSON.parse(
        (await enclave(["ledger", "show", "--workspace", ws, "--dataset", original, "--json"], env())).out,
      );
      expect(shown.datasets[0].jobs.map((j: { job_id: string }) => j.job_id)).toEqual(["legacy-job"]);
      expect(shown.audit.filter((a: { action: string }) => a.action === "migrate")).toHaveLength(1);
    });
  });
}

backendSuite("embedded PostgreSQL (PGlite)", async () => ({}));

describeOnPostgres("real PostgreSQL server", (server) => {
  backendSuite("a real PostgreSQL server", async () => ({ DATABASE_URL: await server().freshDatabase() }));
});

describe("checks before the first step (no budget spent, nothing written)", () => {
  it("refuses an unwritable --out, a file as workspace, hostile model names, huge models and batches", async () => {
    const dir = mkdtempSync(join(tmpdir(), "enclave-pre-"));
    const [original] = writePresentations(dir);
    const file = join(dir, "a-file");
    writeFileSync(file, "x");
    const ws = join(dir, "ws");
    const cases: [string[], string][] = [
      [["--out", join(file, "sub")], "OUTPUT_NOT_WRITABLE"],
      [["--out", file], "OUTPUT_NOT_WRITABLE"],
      [["--model", "__proto__"], "UNKNOWN_MODEL_ARCH"],
      [["--model", "constructor"], "UNKNOWN_MODEL_ARCH"],
      [["--model", "toString"], "UNKNOWN_MODEL_ARCH"],
      [["--hidden", "65536,65536"], "MEMORY_ESTIMATE_EXCEEDED"],
      [["--batch-size", "1e9"], "--batch-size"],
      [["--noise-multiplier", "1e308"], "--noise-multiplier"],
      [["--delta", "0.1"], "--delta"],
    ];
    for (const [more, code] of cases) {
      const args = [
        "train",
        "--dataset",
        original,
        "--epochs",
        "1",
        "--target-epsilon",
        "1",
        "--workspace",
        ws,
        "--out",
        join(dir, "out"),
        ...more,
      ];
      const r = await enclave(args);
      expect(r.code, `${more.join(" ")}: ${r.err}`).not.toBe(0);
      expect(r.err).toContain(code);
      expect(r.err).not.toContain("unexpected error");
    }
    // Without --epochs the usage error names the architecture: never an unknown --model value.
    const canary = "canary-model-7f3a9c";
    const noEpochs = await enclave([
      "train",
      "--dataset",
      original,
      "--model",
      canary,
      "--target-epsilon",
      "1",
    ]);
    expect(noEpochs.code).not.toBe(0);
    expect(noEpochs.err).toContain("--epochs");
    expect(noEpochs.err).not.toContain(canary);
    const asWs = await enclave([
      "train",
      "--dataset",
      original,
      "--epochs",
      "1",
      "--target-epsilon",
      "1",
      "--workspace",
      file,
      "--out",
      join(dir, "out"),
    ]);
    expect(asWs.err).toContain("WORKSPACE_INVALID");
    expect(existsSync(join(dir, "out"))).toBe(false);
    // No case reached the ledger with a step.
    if (existsSync(ws)) {
      const shown = JSON.parse((await enclave(["ledger", "show", "--workspace", ws, "--json"])).out);
      expect(shown.datasets).toEqual([]);
    }
    expect(readdirSync(dir).sort()).toEqual(
      readdirSync(dir)
        .filter((n) => n !== "out")
        .sort(),
    );
  });

  it("without --delta a large dataset trains at min(1e-5, 0.1/n); an explicit --delta above 0.1/n is still refused", async () => {
    // 15,000 rows, 12,000 for training: the old default 1e-5 is above 0.1/n = 8.33e-6.
    const dir = mkdtempSync(join(tmpdir(), "enclave-delta-"));
    const rows = ["x,y"];
    for (let i = 0; i < 15_000; i++) rows.push(`${(i % 97) / 97},${i % 2 ? "b" : "a"}`);
    const file = join(dir, "large.csv");
    writeFileSync(file, rows.join("\n") + "\n");
    writeFileSync(
      join(dir, "large.schema.json"),
      JSON.stringify({
        format: "csv",
        header: true,
        columns: [
          { name: "x", type: "float" },
          { name: "y", type: "category", values: ["a", "b"] },
        ],
        label: { column: "y", classes: ["a", "b"] },
        min_rows: 1,
        max_rows: 20_000,
      }),
    );
    const ws = join(dir, "ws");
    (await emptyLedgerCopier(dir))(ws);
    const args = (out: string, ...more: string[]) => [
      ...["train", "--dataset", file, "--model", "LogisticRegression", "--epochs", "1"],
      ...["--batch-size", "2000", "--target-epsilon", "3", "--workspace", ws, "--out", join(dir, out)],
      ...["--json", ...more],
    ];
    const refused = await enclave(args("o1", "--delta", "1e-5"));
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("DELTA_TOO_LARGE");
    expect(refused.err).toContain("n = 12000");
    expect(existsSync(join(dir, "o1"))).toBe(false);
    const r = await enclave(args("o2"));
    expect(r.code, r.err).toBe(0);
    const p = JSON.parse(r.out).privacy;
    expect(p.delta).toBeCloseTo(0.1 / 12_000, 15);
    expect(p.delta * 12_000).toBeLessThanOrEqual(0.1);
    expect(p.accounting_delta).toBe(p.delta);
    expect(p.epsilon).toBeLessThanOrEqual(3);
  });

  it("budget refuses delta 0.99 and an extreme PRV noise multiplier quickly; epsilon is never negative", async () => {
    const t0 = Date.now();
    const big = await enclave([
      "budget",
      "--sample-rate",
      "0.01",
      "--noise-multiplier",
      "1.1",
      "--steps",
      "15",
      "--delta",
      "0.99",
    ]);
    expect(big.code).toBe(1);
    expect(big.err).toContain("--delta");
    const prv = await enclave([
      "budget",
      "--accountant",
      "prv",
      "--sample-rate",
      "0.01",
      "--noise-multiplier",
      "1e308",
      "--steps",
      "15",
      "--delta",
      "1e-5",
    ]);
    expect(prv.code).toBe(1);
    expect(prv.err).toContain("--noise-multiplier");
    const tiny = await enclave([
      "budget",
      "--sample-rate",
      "0.01",
      "--noise-multiplier",
      "1e6",
      "--steps",
      "15",
      "--delta",
      "1e-3",
      "--json",
    ]);
    expect(tiny.code, tiny.err).toBe(0);
    const j = JSON.parse(tiny.out);
    expect(j.rdp.epsilon).toBeGreaterThanOrEqual(0);
    expect(j.prv.epsilon).toBeGreaterThanOrEqual(0);
    expect(j.prv.lower).toBeGreaterThanOrEqual(0);
    expect(Date.now() - t0).toBeLessThan(60_000);
  });
});
