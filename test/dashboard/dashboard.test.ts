// The dashboard in a real browser (Debian's chromium through playwright-core).
// Live: a running `enclave poc` (a coordinator and three agents as separate OS processes on
// loopback); the admin's one-time link from `enclave dashboard` logs a plain browser in before the
// job starts, and its rounds appear live, a site's epsilon rises, the non-private baseline is drawn,
// with no console errors. Recorded: what a POC of healthy sites never shows (an untrusted site's
// failed check, hardware TCB values, excluded and dropped rounds) rendered from chain entries.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditChain } from "../../src/audit/chain.js";
import { HeadSigner } from "../../src/audit/entry.js";
import { Dashboard } from "../../src/dashboard/dashboard.js";
import { startHostApi, type HostApi } from "../../src/host/host-api.js";
import { MemoryJobDirectory } from "../../src/host/job-directory.js";
import { createProjectCa, issueCertificate, type Credential } from "../../src/identity/certificates.js";
import { openDatabase, type Database } from "../../src/storage/database.js";

const CHROMIUM = "/usr/bin/chromium";
const MAIN = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
const ROUNDS = 8;

function post(
  port: number,
  ca: string,
  cred: Credential | null,
  path: string,
): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: "POST",
        ca,
        servername: "localhost",
        agent: false,
        ...(cred ? { cert: cred.certPem, key: cred.keyPem } : {}),
      },
      (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => done({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", fail);
    req.end();
  });
}

/** A page that records console errors and uncaught exceptions. */
async function watchedPage(browser: Browser): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ ignoreHTTPSErrors: true, viewport: { width: 1150, height: 1500 } });
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  return { page, errors };
}

const cell = (page: Page, table: string, key: string, n: number) =>
  page.textContent(`#${table} tr[data-site="${key}"] td:nth-child(${n})`);

let browser: Browser;
beforeAll(async () => {
  if (existsSync(CHROMIUM))
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});
afterAll(async () => browser?.close());

describe.skipIf(!existsSync(CHROMIUM))("the dashboard in chromium, against a running enclave poc", () => {
  let root: string;
  let poc: ChildProcess;
  let endpoint: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "enclave-ui-poc-"));
    poc = spawn(
      process.execPath,
      [MAIN, "poc", "--clients", "3", "--rounds", String(ROUNDS), "--workspace", join(root, "poc")].concat([
        "--port",
        "0",
        "--keep-running",
        "--json",
      ]),
      { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, DATABASE_URL: "" } },
    );
    endpoint = await new Promise<string>((done, fail) => {
      const lines = createInterface({ input: poc.stderr! });
      lines.on("line", (l) => {
        const m = /coordinator listening on (https:\/\/127\.0\.0\.1:\d+)/.exec(l);
        if (m) done(m[1]);
      });
      poc.once("exit", (code) =>
        fail(new Error(`enclave poc exited ${code} before its coordinator listened`)),
      );
    });
  }, 180_000);

  afterAll(async () => {
    if (poc && poc.exitCode === null) {
      const exited = new Promise((r) => poc.once("exit", r));
      poc.kill("SIGTERM");
      await exited;
    }
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("logs in with the link enclave dashboard prints; rounds, epsilon and the baseline appear live", async () => {
    const link = await new Promise<string>((done, fail) =>
      execFile(
        process.execPath,
        [MAIN, "dashboard", "--kit", join(root, "poc", "kits", "admin"), "--endpoint", endpoint],
        { timeout: 60_000 },
        (err, out) => (err ? fail(err) : done(out.split("\n")[0])),
      ),
    );
    expect(link).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/ui\/login\?token=[A-Za-z0-9_-]{43}$/);
    const { page, errors } = await watchedPage(browser);
    await page.goto(link);
    expect(page.url()).toMatch(/\/ui\/$/);
    await page.waitForSelector("#chain-status.ok");
    // the link is spent
    const again = await browser.newPage({ ignoreHTTPSErrors: true });
    expect((await again.goto(link))?.status()).toBe(401);
    await again.close();

    // round 1 while the job still runs: fewer rows than rounds when it first shows
    await page.waitForSelector('#rounds tr[data-round="1"]', { timeout: 180_000 });
    expect(await page.locator("#rounds tbody tr").count()).toBeLessThan(ROUNDS);
    const epsAfterRound1 = Number(await cell(page, "epsilon", "hospital-a", 2));
    expect(epsAfterRound1).toBeGreaterThan(0);
    await page.waitForSelector(`#rounds tr[data-round="${ROUNDS}"]`, { timeout: 180_000 });
    await page.locator("#jobs tbody", { hasText: "completed" }).waitFor({ timeout: 60_000 });
    await expect
      .poll(async () => Number(await cell(page, "epsilon", "hospital-a", 2)), { timeout: 30_000 })
      .toBeGreaterThan(epsAfterRound1);
    expect(Number(await cell(page, "epsilon", "hospital-a", 2))).toBeLessThanOrEqual(3);
    expect(await page.textContent('#sites tr[data-site="hospital-b"]')).toContain("SIMULATED");
    expect(await cell(page, "sites", "hospital-b", 5)).toBe("TRUSTED");
    expect(await cell(page, "sites", "hospital-b", 8)).toBe("active");
    // the coordinator trained the baseline on the POC's pooled shards; it is a series of the chart
    expect(await page.textContent("#baseline")).toMatch(
      /^accuracy 0\.\d{4}, loss \d+\.\d{4} \(\d+ pooled examples/,
    );
    expect(await page.textContent("#chart-accuracy")).toContain("non-private baseline");
    const ticks = (await page.getAttribute("#chart-accuracy .uplot", "data-round-ticks")) ?? "";
    expect(ticks.split(",").filter(Boolean)).toEqual(expect.arrayContaining(["1", String(ROUNDS)]));
    for (const t of ticks.split(",")) expect(t).toMatch(/^\d*$/);
    expect(await page.textContent("#chain-status")).toMatch(/^intact, \d+ entries/);
    await page.screenshot({
      path: join(process.env.DASHBOARD_SCREENSHOT_DIR ?? root, "dashboard.png"),
      fullPage: true,
    });
    expect(errors.join("\n")).toBe("");
    await page.close();
  }, 400_000);
});

describe.skipIf(!existsSync(CHROMIUM))("the dashboard in chromium, from recorded entries", () => {
  let api: HostApi;
  let db: Database;
  let admin: Credential;
  let caPem: string;
  let chain: AuditChain;
  const job = "3f1c9d3e-58a4-4d6b-9a57-2d1e4b6a7c10";
  const hash = (c: string) => c.repeat(64);

  beforeAll(async () => {
    const ca = await createProjectCa("demo");
    caPem = ca.certPem;
    const coordinator = await issueCertificate(ca, {
      name: "coordinator",
      role: "coordinator",
      hosts: ["localhost", "127.0.0.1"],
    });
    admin = await issueCertificate(ca, { name: "alice", role: "admin" });
    db = await openDatabase({ workspace: "", url: "", memory: true });
    chain = await AuditChain.open(db, {
      actor: "coordinator/coordinator",
      role: "coordinator",
      signer: new HeadSigner(coordinator.keyPem),
    });
    const jobs = new MemoryJobDirectory();
    api = await startHostApi({
      credential: coordinator,
      caPem,
      jobs,
      host: "127.0.0.1",
      port: 0,
      audit: chain,
      dashboard: new Dashboard(chain, jobs),
    });
    const at = { job_id: job };
    await chain.append("job_started", {
      ...at,
      sites: 3,
      rounds: 2,
      min_clients: 1,
      strategy: "FED_AVG",
      mechanism: "DP_SGD",
      model_sha256: hash("a"),
      target_epsilon: 3,
      delta: 1e-5,
    });
    const verdict = { ...at, round: 1, verdict: "TRUSTED" as const, reason: "POLICY_PASSED" };
    await chain.append("attestation_verdict", {
      ...verdict,
      site: "snp-site",
      evidence_kind: "AMD_SEV_SNP",
      measurement: hash("b").slice(0, 96),
      tcb: "bootloader=3,tee=0,snp=8,microcode=115,guest_svn=0",
    });
    await chain.append("attestation_verdict", {
      ...verdict,
      site: "tdx-site",
      evidence_kind: "INTEL_TDX",
      measurement: hash("c").slice(0, 96),
      tcb: "tee_tcb_svn=06010300000000000000000000000000",
      tcb_status: "UpToDate",
    });
    await chain.append("attestation_verdict", {
      ...verdict,
      site: "insecure-site",
      evidence_kind: "INSECURE",
      measurement: hash("d"),
      verdict: "UNTRUSTED",
      reason: "POLICY_REFUSED",
      failed_check: "policy.kind",
    });
    await chain.append("update_rejected", {
      ...at,
      round: 1,
      site: "insecure-site",
      state: "untrusted",
      reason: "ATTESTATION_UNTRUSTED",
    });
    await chain.append("update_rejected", {
      ...at,
      round: 1,
      site: "tdx-site",
      state: "dropped",
      reason: "AGENT_TIMEOUT",
    });
    for (const round of [1, 2])
      await chain.append("update_received", {
        ...at,
        round,
        site: "snp-site",
        update_sha256: hash("e"),
        examples: 100,
        steps: 7,
      });
    // tdx-site rejoined in round 2
    await chain.append("update_received", {
      ...at,
      round: 2,
      site: "tdx-site",
      update_sha256: hash("f"),
      examples: 100,
      steps: 7,
    });
    await chain.signHead("round_end");
  });

  afterAll(async () => {
    await api?.close();
    await db?.close();
  });

  it("refuses /ui/ without a login, and a login link without an admin certificate", async () => {
    expect((await post(api.port, caPem, null, "/ui/link")).status).toBe(403);
    const page = await browser.newPage({ ignoreHTTPSErrors: true });
    const r = await page.goto(`https://127.0.0.1:${api.port}/ui/`);
    expect(r?.status()).toBe(401);
    await page.close();
  });

  it("shows TCB values, the failed check by name and every round a site was excluded or dropped in", async () => {
    const link = JSON.parse((await post(api.port, caPem, admin, "/ui/link")).body) as { path: string };
    const { page, errors } = await watchedPage(browser);
    await page.goto(`https://127.0.0.1:${api.port}${link.path}`);
    await page.waitForSelector('#sites tr[data-site="insecure-site"]');
    expect(await cell(page, "sites", "snp-site", 4)).toBe(
      "bootloader=3,tee=0,snp=8,microcode=115,guest_svn=0",
    );
    expect(await cell(page, "sites", "snp-site", 3)).toBe(hash("b").slice(0, 96));
    expect(await cell(page, "sites", "tdx-site", 4)).toBe(
      "tee_tcb_svn=06010300000000000000000000000000 (UpToDate)",
    );
    expect(await cell(page, "sites", "insecure-site", 5)).toBe("UNTRUSTED");
    expect(await cell(page, "sites", "insecure-site", 6)).toMatch(
      /^policy\.kind: this evidence kind or label is not allowed/,
    );
    expect(await cell(page, "sites", "insecure-site", 7)).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(await cell(page, "sites", "insecure-site", 8)).toBe("untrusted (ATTESTATION_UNTRUSTED)");
    expect(await page.getAttribute('#sites tr[data-site="insecure-site"]', "class")).toBe("out");
    // dropped in round 1, back in round 2: active, with the dropped round still listed
    expect(await cell(page, "sites", "tdx-site", 8)).toBe("active");
    expect(await cell(page, "sites", "tdx-site", 9)).toBe("round 1: dropped (AGENT_TIMEOUT)");
    expect(await page.textContent("#baseline")).toContain("not known for this job");
    expect(errors.join("\n")).toBe("");
    await page.close();
  });
});
