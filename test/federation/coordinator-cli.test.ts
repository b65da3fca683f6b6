// `enclave provision`, `enclave coordinator` and the admin verbs as separate OS processes on
// loopback: the coordinator serves its host API from its kit; an admin kit submits, lists,
// reads and aborts jobs; an edited kit and a revoked certificate are refused; a client without
// a certificate gets only /ping.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync, mkdtempSync, rmSync, cpSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { computeEpsilon } from "../../src/privacy/accountant/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = join(REPO, "dist", "cli", "main.js");

function enclave(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: 60_000 }, (error, out, err) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, out, err }),
    );
  });
}

function get(
  port: number,
  ca: string,
  path: string,
  method = "GET",
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path, method, ca, servername: "localhost", agent: false },
      (res) => {
        let body = "";
        res.on("data", (c) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end(method === "POST" ? "{}" : undefined);
  });
}

const JOB = {
  job_id: "1b4e28ba-2fa1-4d3b-a3f5-ef19b5a7633b",
  clients: ["site-a", "site-b"],
  min_clients: 2,
  rounds: 5,
  strategy: "FED_AVG",
  privacy: { mechanism: "DP_SGD", noise_multiplier: 1.1, max_grad_norm: 1, target_epsilon: 3, delta: 1e-5 },
  dataset_id: "breast-cancer-wisconsin.csv",
  model_arch: "SimpleMLP",
};

describe("enclave coordinator and the admin verbs (real processes, mTLS on loopback)", () => {
  let root: string;
  let coordinator: ChildProcess;
  let port: number;
  let endpoint: string;
  const kit = (name: string) => join(root, "kits", name);

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "enclave-coord-"));
    writeFileSync(
      join(root, "project.yaml"),
      "name: demo\ncoordinator: {host: localhost, port: 7339}\nsites: [site-a, site-b]\nadmins: [admin]\n",
    );
    const p = await enclave("provision", "--project", join(root, "project.yaml"), "--out", root, "--json");
    expect(p.code, p.err).toBe(0);
    expect(JSON.parse(p.out).kits.map((k: { participant: string }) => k.participant)).toEqual([
      "coordinator",
      "site-a",
      "site-b",
      "admin",
    ]);
    writeFileSync(join(root, "job.json"), JSON.stringify(JOB));
    await startCoordinator("0");
  });

  /** The coordinator as a child process on `listen`, with its jobs in `<root>/workspace`. */
  async function startCoordinator(listen: string): Promise<void> {
    coordinator = spawn(
      process.execPath,
      [
        MAIN,
        "coordinator",
        "--kit",
        kit("coordinator"),
        "--workspace",
        join(root, "workspace"),
        "--host",
        "127.0.0.1",
        "--port",
        listen,
        "--revocations",
        join(root, "ca", "revoked.json"),
        "--admin-actions",
        join(root, "ca", "admin-actions.json"),
        "--log-level",
        "warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, DATABASE_URL: "" } },
    );
    const first = await new Promise<string>((resolve, reject) => {
      createInterface({ input: coordinator.stdout! }).once("line", resolve);
      coordinator.once("exit", (code) => reject(new Error(`coordinator exited ${code}`)));
    });
    port = JSON.parse(first).listening.port;
    endpoint = `https://localhost:${port}`;
  }

  afterAll(async () => {
    if (coordinator.exitCode === null) {
      const exited = new Promise((r) => coordinator.once("exit", r));
      coordinator.kill("SIGTERM");
      await exited;
    }
    rmSync(root, { recursive: true, force: true });
  });

  it("a client without a certificate gets only /ping", async () => {
    const ca = readFileSync(join(kit("admin"), "ca.pem"), "utf8");
    expect(await get(port, ca, "/ping")).toEqual({ status: 200, body: "pong\n" });
    expect((await get(port, ca, "/agent.v1.AgentService/ListJobs", "POST")).status).toBe(401);
  });

  it("submit --json prints the job id; jobs, status and abort report it", async () => {
    const admin = ["--kit", kit("admin"), "--endpoint", endpoint, "--json"];
    const s = await enclave("submit", ...admin, join(root, "job.json"));
    expect(s.code, s.err).toBe(0);
    expect(JSON.parse(s.out)).toEqual({ job_id: JOB.job_id });
    const jobs = await enclave("jobs", ...admin);
    expect(JSON.parse(jobs.out)).toEqual([{ job_id: JOB.job_id, status: "queued", rounds_completed: 0 }]);
    const st = await enclave("status", ...admin, JOB.job_id);
    expect(JSON.parse(st.out)).toMatchObject({ job_id: JOB.job_id, status: "queued", rounds: 5 });
    const ab = await enclave("abort", ...admin, JOB.job_id);
    expect(JSON.parse(ab.out)).toMatchObject({ status: "aborted" });
    const missing = await enclave("status", ...admin, "no-such-job");
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/\[JOB_NOT_FOUND\]/);
  });

  it("a bad job file is refused before anything is sent, naming the field", async () => {
    writeFileSync(join(root, "bad.json"), JSON.stringify({ ...JOB, rounds: 0 }));
    const r = await enclave("submit", "--kit", kit("admin"), "--endpoint", endpoint, join(root, "bad.json"));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/\[VALIDATION_FAILED\]: invalid FederationJob: rounds: must be >= 1/);
  });

  it("refuses an edited admin kit, and a site kit for admin verbs", async () => {
    const edited = join(root, "edited-admin");
    cpSync(kit("admin"), edited, { recursive: true });
    const config = join(edited, "kit.json");
    writeFileSync(
      config,
      readFileSync(config, "utf8").replace('"host": "localhost"', '"host": "evil.example"'),
    );
    const r = await enclave("jobs", "--kit", edited, "--endpoint", endpoint);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /\[KIT_INVALID\]: startup kit refused: kit\.json was changed after the project CA signed it/,
    );
    const site = await enclave("jobs", "--kit", kit("site-a"), "--endpoint", endpoint);
    expect(site.err).toMatch(/\[KIT_INVALID\]: --kit: this is a site kit; this command needs an admin kit/);
  });

  it("keeps its jobs, statuses and events across a SIGKILL and restart (PGlite in its workspace)", async () => {
    const admin = ["--kit", kit("admin"), "--endpoint", endpoint, "--json"];
    const second = { ...JOB, job_id: "6f1c2a9e-5b7d-4c3e-9a8f-2d4b6c8e0a1f" };
    writeFileSync(join(root, "second.json"), JSON.stringify(second));
    expect((await enclave("submit", ...admin, join(root, "second.json"))).code).toBe(0);
    const before = JSON.parse((await enclave("jobs", ...admin)).out);
    const exited = new Promise((r) => coordinator.once("exit", r));
    coordinator.kill("SIGKILL");
    await exited;
    await startCoordinator(String(port));
    const after = await enclave("jobs", ...admin);
    expect(after.code, after.err).toBe(0);
    expect(JSON.parse(after.out)).toEqual(before);
    expect(before).toEqual([
      { job_id: second.job_id, status: "queued", rounds_completed: 0 },
      { job_id: JOB.job_id, status: "aborted", rounds_completed: 0 },
    ]);
    const st = await enclave("status", ...admin, JOB.job_id);
    expect(JSON.parse(st.out)).toMatchObject({ status: "aborted", reason: "aborted by an admin", rounds: 5 });
  });

  it("submit fills a fresh job id and the noise calibrated to the target when the file omits them, and says so", async () => {
    const admin = ["--kit", kit("admin"), "--endpoint", endpoint, "--json"];
    const { job_id: _, ...bare } = JOB;
    const handWritten = { ...bare, privacy: { ...JOB.privacy, noise_multiplier: undefined } };
    writeFileSync(join(root, "hand.json"), JSON.stringify(handWritten));
    // DP_SGD's noise depends on the sites' rows, which the job cannot know: refused until --rows says.
    const refused = await enclave("submit", ...admin, join(root, "hand.json"));
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/privacy\.noise_multiplier: is omitted: give --rows N/);
    const s = await enclave("submit", ...admin, "--rows", "455", join(root, "hand.json"));
    expect(s.code, s.err).toBe(0);
    const id = JSON.parse(s.out).job_id as string;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(s.err).toContain(`job_id not in the job file: generated ${id}`);
    const sigma = Number(
      /calibrated to ([0-9.]+) so the job fits target epsilon 3 at delta 0.00001/.exec(s.err)?.[1],
    );
    // The same calibration as simulate's: 5 rounds x 1 epoch x 29 steps at q = 1/29 (455 rows, batch 16).
    const eps = computeEpsilon({
      accountant: "rdp",
      sampleRate: 1 / 29,
      noiseMultiplier: sigma,
      steps: 5 * 29,
      delta: 1e-5,
    });
    expect(eps.epsilon).toBeLessThanOrEqual(3);
    expect(eps.epsilon).toBeGreaterThan(2.98);
    // DP_FEDAVG: z from the job alone (its rounds at q), no flag needed.
    const clientLevel = {
      ...handWritten,
      privacy: { ...handWritten.privacy, mechanism: "DP_FEDAVG", max_grad_norm: 0.3 },
    };
    writeFileSync(join(root, "client-level.json"), JSON.stringify(clientLevel));
    const c = await enclave("submit", ...admin, join(root, "client-level.json"));
    expect(c.code, c.err).toBe(0);
    expect(c.err).toMatch(
      /privacy\.noise_multiplier not in the job file: calibrated to [0-9.]+ so the job fits target epsilon 3/,
    );
  });

  /** Enrol `name` and approve its request at the CA (as the admin of `kitDir`, or the CA). */
  async function approve(name: string, kitDir?: string) {
    const e = await enclave("enroll", "--name", name, "--out", join(root, `enrol-${name}`));
    expect(e.code, e.err).toBe(0);
    return enclave(
      "approve",
      "--ca",
      join(root, "ca"),
      "--csr",
      join(root, `enrol-${name}`, "csr.pem"),
      "--out",
      join(root, `kit-${name}`),
      "--json",
      ...(kitDir ? ["--kit", kitDir] : []),
    );
  }

  it("refuses a revoked admin certificate at its next handshake", async () => {
    const ap = await approve("site-c", kit("admin"));
    expect(ap.code, ap.err).toBe(0);
    expect(JSON.parse(ap.out).actor).toBe("admin/admin");
    const before = await enclave("jobs", "--kit", kit("admin"), "--endpoint", endpoint, "--json");
    expect(before.code).toBe(0);
    const rv = await enclave(
      "revoke",
      "--ca",
      join(root, "ca"),
      "--cert",
      join(kit("admin"), "cert.pem"),
      "--kit",
      kit("admin"),
      "--json",
    );
    expect(rv.code, rv.err).toBe(0);
    expect(JSON.parse(rv.out).actor).toBe("admin/admin");
    const after = await enclave("jobs", "--kit", kit("admin"), "--endpoint", endpoint, "--json");
    expect(after.code).toBe(1);
    expect(after.out).toBe("");
  });

  it("records an approval and a revocation in the audit chain under the admin who made them", async () => {
    const refused = await approve("site-d", kit("admin"));
    expect(refused.code).not.toBe(0); // the admin's certificate is revoked now
    expect(refused.err).toContain("this admin's certificate is revoked");
    const ap = await approve("site-d");
    expect(ap.code, ap.err).toBe(0);
    const byCa = JSON.parse(ap.out) as { serial: string; actor: string };
    expect(byCa.actor).toBe("ca/demo");
    const siteC = new X509Certificate(readFileSync(join(root, "kit-site-c", "cert.pem"))).serialNumber;
    // the coordinator reads the log at its next handshake (any client's)
    await enclave("jobs", "--kit", kit("admin"), "--endpoint", endpoint);
    const exited = new Promise((r) => coordinator.once("exit", r));
    coordinator.kill("SIGTERM");
    await exited;
    const ex = await enclave("audit", "export", "--workspace", join(root, "workspace"));
    expect(ex.code, ex.err).toBe(0);
    const actions = ex.out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { kind: string; actor: string; payload: Record<string, unknown> })
      .filter((e) => e.kind === "admin_action" && e.payload.action !== "abort");
    const serial = new X509Certificate(
      readFileSync(join(kit("admin"), "cert.pem")),
    ).serialNumber.toLowerCase();
    expect(actions.map((e) => [e.actor, e.payload])).toEqual([
      [
        "admin/admin",
        { action: "approve", serial: siteC.toLowerCase(), participant: "site-c", role: "site" },
      ],
      ["admin/admin", { action: "revoke", serial }],
      ["ca/demo", { action: "approve", serial: byCa.serial, participant: "site-d", role: "site" }],
    ]);
    const v = await enclave("audit", "verify", "--workspace", join(root, "workspace"));
    expect(v.code, v.out).toBe(0);
  });
});
