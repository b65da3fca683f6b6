// The dashboard in a real browser (Debian's chromium through playwright-core): the admin's
// one-time link logs a plain browser in, and a federation run by the coordinator's real loop
// (in process, feeding the same events and audit chain a networked coordinator does) appears
// live: a round, a site's epsilon, the chain's verification, with no console errors.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditChain } from "../../src/audit/chain.js";
import { AuditedJobDirectory } from "../../src/audit/audited-jobs.js";
import { auditFirst, CoordinatorAuditor } from "../../src/audit/coordinator-auditor.js";
import { HeadSigner } from "../../src/audit/entry.js";
import { coordinatorJobSetup } from "../../src/coordinator/job-setup.js";
import { Dashboard } from "../../src/dashboard/dashboard.js";
import { startHostApi, type HostApi } from "../../src/host/host-api.js";
import { MemoryJobDirectory } from "../../src/host/job-directory.js";
import { createProjectCa, issueCertificate, type Credential } from "../../src/identity/certificates.js";
import { openDatabase, type Database } from "../../src/storage/database.js";
import { databaseTemplate } from "../canary/canary.js";
import { demoJob, runJob, startSites, type Site } from "../support/audited-federation.js";

const CHROMIUM = "/usr/bin/chromium";

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

describe.skipIf(!existsSync(CHROMIUM))("the dashboard in chromium", () => {
  let root: string;
  let api: HostApi;
  let db: Database;
  let browser: Browser;
  let sites: Site[];
  let admin: Credential;
  let caPem: string;
  let chain: AuditChain;
  let directory: MemoryJobDirectory;
  let jobs: AuditedJobDirectory;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "enclave-ui-"));
    const template = await databaseTemplate(join(root, "template"));
    ({ sites } = await startSites(
      root,
      template,
      ["site-a", "site-b", "site-c", "site-d"],
      ["site-c"],
      ["site-d"],
    ));
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
    const auditor = new CoordinatorAuditor(chain);
    directory = new MemoryJobDirectory();
    jobs = new AuditedJobDirectory(directory, auditor);
    api = await startHostApi({
      credential: coordinator,
      caPem: ca.certPem,
      jobs,
      host: "127.0.0.1",
      port: 0,
      audit: chain,
      dashboard: new Dashboard(chain, jobs),
    });
    (globalThis as { auditor?: CoordinatorAuditor }).auditor = auditor;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    await api?.close();
    for (const s of sites ?? []) await s.agent.close();
    await db?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it("refuses /ui/ without a login, and a login link without an admin certificate", async () => {
    expect((await post(api.port, caPem, null, "/ui/link")).status).toBe(403);
    const page = await browser.newPage({ ignoreHTTPSErrors: true });
    const r = await page.goto(`https://127.0.0.1:${api.port}/ui/`);
    expect(r?.status()).toBe(401);
    await page.close();
  });

  it("logs in with a one-time link and shows a live round, each site's epsilon and the chain status", async () => {
    const link = JSON.parse((await post(api.port, caPem, admin, "/ui/link")).body) as { path: string };
    const page = await browser.newPage({ ignoreHTTPSErrors: true, viewport: { width: 1100, height: 1500 } });
    const errors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`https://127.0.0.1:${api.port}${link.path}`);
    expect(page.url()).toMatch(/\/ui\/$/);
    await page.waitForSelector("#chain-status.ok");
    // the link is spent
    const again = await browser.newPage({ ignoreHTTPSErrors: true });
    expect((await again.goto(`https://127.0.0.1:${api.port}${link.path}`))?.status()).toBe(401);
    await again.close();

    const job = demoJob(
      sites.map((s) => s.id),
      3,
    );
    await jobs.submit(job, { role: "admin", name: "alice" });
    const auditor = (globalThis as { auditor?: CoordinatorAuditor }).auditor!;
    // The coordinator's own baseline path: pooled data it holds, scored on its evaluation data.
    const bc = join(sites[0].workspace, "data", "bc.csv");
    let baseline = 0;
    await coordinatorJobSetup({
      evalData: bc,
      baselineData: bc,
      hidden: [8],
      onBaseline: async (j, b) => {
        baseline = b.accuracy;
        await auditor.baseline(j, b);
      },
    })(job);
    let epsAfterRound1 = "";
    const run = runJob(
      job,
      sites,
      auditFirst(auditor, async (e) => {
        directory.record(e);
        if (e.type === "round_completed" && e.round === 1) {
          // the page shows round 1 while the job is still running
          await page.waitForSelector('#rounds tr[data-round="1"]', { timeout: 60_000 });
          epsAfterRound1 = (await page.textContent('#epsilon tr[data-site="site-a"] td:nth-child(2)')) ?? "";
        }
      }),
    );
    const result = await run;
    expect(result.status).toBe("completed");
    await page.waitForSelector('#rounds tr[data-round="3"]', { timeout: 60_000 });
    await expect
      .poll(() => page.textContent('#epsilon tr[data-site="site-a"] td:nth-child(2)'), { timeout: 60_000 })
      .not.toBe(epsAfterRound1);
    expect(Number(epsAfterRound1)).toBeGreaterThan(0);
    const epsNow = Number(await page.textContent('#epsilon tr[data-site="site-a"] td:nth-child(2)'));
    expect(epsNow).toBeGreaterThan(Number(epsAfterRound1));
    expect(epsNow).toBeLessThanOrEqual(3);
    await page.locator("#jobs tbody", { hasText: "completed" }).waitFor({ timeout: 60_000 });
    expect(await page.textContent('#sites tr[data-site="site-a"]')).toContain("TRUSTED");
    expect(await page.textContent('#sites tr[data-site="site-c"]')).toContain("failed");
    // an untrusted site: its evidence kind, the failed check by name, and why it is out
    const d = await page.textContent('#sites tr[data-site="site-d"]');
    expect(d).toContain("INSECURE");
    expect(d).toContain("UNTRUSTED");
    expect(d).toContain("policy.kind");
    expect(d).toContain("untrusted");
    expect(await page.textContent("#baseline")).toContain(`accuracy ${baseline.toFixed(4)}`);
    // the baseline is a series of the accuracy chart; the round axis has integer ticks only
    expect(await page.textContent("#chart-accuracy")).toContain("non-private baseline");
    const ticks = (await page.getAttribute("#chart-accuracy .uplot", "data-round-ticks")) ?? "";
    expect(ticks.split(",").filter(Boolean)).toEqual(expect.arrayContaining(["1", "2", "3"]));
    for (const t of ticks.split(",")) expect(t).toMatch(/^\d*$/);
    expect(await page.textContent("#chain-status")).toMatch(/^intact, \d+ entries/);
    expect(await page.locator("#chart canvas").count()).toBeGreaterThan(0);
    await page.screenshot({
      path: join(process.env.DASHBOARD_SCREENSHOT_DIR ?? root, "dashboard.png"),
      fullPage: true,
    });
    expect(errors.join("\n")).toBe("");
    await page.close();
  });
});
