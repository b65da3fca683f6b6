// The audit ledger end to end: a federation run by the coordinator's real loop, its events and
// admin actions written to the coordinator's chain, each site's own chain of what left it, then
// the CLI's verify, export and cross-check, on intact and on tampered records.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditChain } from "../../src/audit/chain.js";
import { AUDIT_ANCHOR_FILE } from "../../src/audit/coordinator-audit.js";
import { AuditedJobDirectory } from "../../src/audit/audited-jobs.js";
import { auditFirst, CoordinatorAuditor } from "../../src/audit/coordinator-auditor.js";
import { entryHash, HeadSigner, type AuditEntry } from "../../src/audit/entry.js";
import { entryLine, parseJsonl } from "../../src/audit/jsonl.js";
import { createProjectCa, issueCertificate } from "../../src/identity/certificates.js";
import { MemoryJobDirectory } from "../../src/host/job-directory.js";
import { openDatabase } from "../../src/storage/database.js";
import { databaseTemplate, findIn, needles } from "../canary/canary.js";
import { cli } from "../support/cli.js";
import { demoJob, runJob, startSites, type Site } from "../support/audited-federation.js";

const ROUNDS = 2;

describe("the audit ledger of a federation", () => {
  let root: string;
  let coordWs: string;
  let certPath: string;
  let keyPem: string;
  let sites: Site[];
  let labelCanary: string;
  let exportText: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "enclave-audit-fed-"));
    const template = await databaseTemplate(join(root, "template"));
    ({ sites, labelCanary } = await startSites(root, template, ["site-a", "site-b", "site-c"], ["site-c"]));
    const ca = await createProjectCa("demo");
    const coordinator = await issueCertificate(ca, {
      name: "coordinator",
      role: "coordinator",
      hosts: ["127.0.0.1"],
    });
    keyPem = coordinator.keyPem;
    certPath = join(root, "coordinator-cert.pem");
    writeFileSync(certPath, coordinator.certPem);
    coordWs = join(root, "coordinator");
    cpSync(template, join(coordWs, "db"), { recursive: true });
    const db = await openDatabase({ workspace: coordWs, url: "" });
    const chain = await AuditChain.open(db, {
      actor: "coordinator/coordinator",
      role: "coordinator",
      signer: new HeadSigner(keyPem),
      anchorPath: join(coordWs, AUDIT_ANCHOR_FILE),
    });
    const auditor = new CoordinatorAuditor(chain);
    const directory = new MemoryJobDirectory();
    const jobs = new AuditedJobDirectory(directory, auditor);
    const job = demoJob(
      sites.map((s) => s.id),
      ROUNDS,
    );
    const alice = { role: "admin" as const, name: "alice" };
    await jobs.submit(job, alice);
    await expect(jobs.submit(job, alice)).rejects.toMatchObject({ code: "JOB_EXISTS" });
    const result = await runJob(
      job,
      sites,
      auditFirst(auditor, (e) => directory.record(e)),
    );
    expect(result.status).toBe("completed");
    await jobs.abort(job.job_id, alice);
    await auditor.revoked(["0a1b2c"], "ca/demo");
    await auditor.revoked(["0a1b2c"], "ca/demo"); // recorded once
    await db.close();
    for (const s of sites) await s.agent.close();
    const r = await cli("audit", "export", "--workspace", coordWs, "--format", "jsonl");
    expect(r.code, r.err).toBe(0);
    exportText = r.out;
    writeFileSync(join(root, "coordinator.jsonl"), exportText);
  }, 600_000);

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const entries = (): AuditEntry[] => parseJsonl(exportText) as AuditEntry[];

  it("records every kind of step, from the admin's submission to the signed job end", () => {
    const e = entries();
    const kinds = e.map((x) => x.kind);
    for (const k of [
      "chain_opened",
      "job_submitted",
      "job_started",
      "attestation_verdict",
      "model_sent",
      "update_received",
      "update_rejected",
      "budget_spent",
      "round_aggregated",
      "job_finished",
      "admin_action",
      "head_signed",
    ])
      expect(kinds, k).toContain(k);
    expect(e.find((x) => x.kind === "job_submitted")!.actor).toBe("admin/alice");
    expect(e.filter((x) => x.kind === "round_aggregated")).toHaveLength(ROUNDS);
    expect(e.filter((x) => x.kind === "admin_action").map((x) => x.payload.action)).toEqual([
      "abort",
      "revoke",
    ]);
    // site-c's data was refused by its Data Sentry: the reason is the error's code, nothing else.
    const rejected = e.filter((x) => x.kind === "update_rejected");
    expect(rejected.length).toBeGreaterThan(0);
    expect(
      rejected.every((x) => x.payload.site === "site-c" && /^[A-Z_]+$/.test(String(x.payload.reason))),
    ).toBe(true);
    // Heads are signed after every round and at the end: the last entry is a signature.
    const causes = e.filter((x) => x.kind === "head_signed").map((x) => x.payload.cause);
    expect(causes.filter((c) => c === "round_end")).toHaveLength(ROUNDS);
    expect(causes).toContain("job_end");
    expect(e[e.length - 1].kind).toBe("head_signed");
  });

  it("holds no data value: no planted number or label in any entry of either chain", async () => {
    const list = needles([labelCanary]);
    expect(findIn(exportText, list)).toEqual([]);
    for (const s of sites) {
      const r = await cli("audit", "export", "--workspace", s.workspace);
      expect(r.code, r.err).toBe(0);
      expect(findIn(r.out, list), s.id).toEqual([]);
    }
    // positive control: the scan does find the canary where it is
    expect(findIn(readFileSync(join(root, "site-c", "data", "bc.csv")), list).length).toBeGreaterThan(0);
  });

  it("verifies intact: the workspace (with its anchor) and the export pinned to the coordinator's certificate", async () => {
    const w = await cli("audit", "verify", "--workspace", coordWs, "--cert", certPath);
    expect(w.code, w.out + w.err).toBe(0);
    expect(w.out).toMatch(
      /^audit chain intact: \d+ entries, head seq \d+ sha256:[0-9a-f]{64}, signed through seq/,
    );
    const f = await cli(
      "audit",
      "verify",
      "--file",
      join(root, "coordinator.jsonl"),
      "--cert",
      certPath,
      "--json",
    );
    expect(f.code, f.out).toBe(0);
    expect(JSON.parse(f.out)).toMatchObject({ intact: true, entries: entries().length });
    // a site's chain is signed with its kit key: pinned to the site's certificate it verifies
    const s = await cli("audit", "verify", "--workspace", sites[0].workspace, "--cert", sites[0].certPath);
    expect(s.code, s.out).toBe(0);
    expect(s.out).toMatch(/signed through seq \d+ by key/);
  });

  it("cross-checks each site's chain against the coordinator's record", async () => {
    for (const s of sites.slice(0, 2)) {
      const r = await cli(
        "audit",
        "cross-check",
        "--site-workspace",
        s.workspace,
        "--coordinator-export",
        join(root, "coordinator.jsonl"),
        "--cert",
        certPath,
        "--site-cert",
        s.certPath,
      );
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(`consistent: site ${s.id} released ${ROUNDS} update(s)`);
    }
  });

  it("a coordinator that rewrites its own record and re-signs it passes verify, but not the site's cross-check", async () => {
    const signer = new HeadSigner(keyPem);
    const e = entries();
    const target = e.findIndex(
      (x) => x.kind === "update_received" && x.payload.site === "site-a" && x.payload.round === 2,
    );
    e[target].payload.update_sha256 = "f".repeat(64);
    for (let i = target; i < e.length; i++) {
      e[i].prev = e[i - 1].hash;
      if (e[i].kind === "head_signed") {
        e[i].payload.head_sha256 = e[i - 1].hash;
        e[i].payload.signature = signer.sign(e[i - 1].seq, e[i - 1].hash);
      }
      const { hash: _h, ...body } = e[i];
      e[i].hash = entryHash(body);
    }
    const forged = join(root, "rewritten.jsonl");
    writeFileSync(forged, e.map(entryLine).join(""));
    expect((await cli("audit", "verify", "--file", forged, "--cert", certPath)).code).toBe(0);
    const r = await cli(
      "audit",
      "cross-check",
      "--site-workspace",
      sites[0].workspace,
      "--coordinator-export",
      forged,
    );
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /MISMATCH job \S+ site seq \d+: round 2: the coordinator recorded update ffffffffffffffff/,
    );
  });

  describe("names the first bad entry of a tampered export", () => {
    const tamper = async (name: string, edit: (e: AuditEntry[]) => AuditEntry[] | string) => {
      const out = edit(entries());
      const file = join(root, `${name}.jsonl`);
      writeFileSync(file, typeof out === "string" ? out : out.map(entryLine).join(""));
      const r = await cli("audit", "verify", "--file", file, "--cert", certPath);
      expect(r.code).toBe(1);
      return r.out;
    };
    const seqOf = (pred: (e: AuditEntry) => boolean) => entries().find(pred)!.seq;

    it("edited", async () => {
      const seq = seqOf((e) => e.kind === "budget_spent");
      const out = await tamper("edited", (e) => {
        e[seq - 1].payload.epsilon_after = 0.001;
        return e;
      });
      expect(out).toContain(`seq ${seq} (edited)`);
    });

    it("removed", async () => {
      const seq = seqOf((e) => e.kind === "update_rejected");
      const out = await tamper("removed", (e) => e.filter((x) => x.seq !== seq));
      expect(out).toContain(`seq ${seq} (removed)`);
    });

    it("reordered", async () => {
      const seq = seqOf((e) => e.kind === "model_sent");
      const out = await tamper("reordered", (e) => {
        [e[seq - 1], e[seq]] = [e[seq], e[seq - 1]];
        return e;
      });
      expect(out).toContain(`seq ${seq + 1} (reordered)`);
    });

    it("forged signature", async () => {
      const seq = seqOf((e) => e.kind === "head_signed" && e.payload.cause === "round_end");
      const out = await tamper("forged", (e) => {
        const x = e[seq - 1];
        x.payload.signature = new HeadSigner(keyPem).sign(1, "0".repeat(64));
        const { hash: _h, ...body } = x;
        x.hash = entryHash(body);
        // later entries re-linked, so only the signature is wrong
        for (let i = seq; i < e.length; i++) {
          e[i].prev = e[i - 1].hash;
          const { hash: _g, ...b } = e[i];
          e[i].hash = entryHash(b);
        }
        return e;
      });
      expect(out).toContain(`seq ${seq} (forged_signature)`);
    });

    it("truncated tail (cut inside the last round, and cut mid-line)", async () => {
      const last = seqOf((e) => e.kind === "job_finished");
      const cut = await tamper("cut", (e) => e.slice(0, last));
      expect(cut).toMatch(/seq \d+ \(unsigned_tail\)/);
      const mid = await tamper("midline", () => exportText.slice(0, exportText.length - 30));
      expect(mid).toContain(`seq ${entries().length} (malformed)`);
    });
  });

  describe("in the database, past its guards (an attacker who disabled the triggers)", () => {
    const copyWorkspace = (name: string) => {
      const ws = join(root, name);
      cpSync(coordWs, ws, { recursive: true });
      return ws;
    };
    const attack = async (ws: string, sql: string) => {
      const db = await openDatabase({ workspace: ws, url: "" });
      await db.exec(`alter table audit_entries disable trigger user; ${sql}`);
      await db.close();
    };

    it("an edited row is named", async () => {
      const ws = copyWorkspace("db-edited");
      const seq = entries().find((e) => e.kind === "update_received")!.seq;
      await attack(
        ws,
        `update audit_entries set payload = replace(payload, '"examples":', '"examples":1') where seq = ${seq}`,
      );
      const r = await cli("audit", "verify", "--workspace", ws);
      expect(r.code).toBe(1);
      expect(r.out).toContain(`seq ${seq} (edited)`);
    });

    it("a deleted signed tail is caught by the anchor outside the database", async () => {
      const ws = copyWorkspace("db-cut");
      const seq = entries().find((e) => e.kind === "job_finished")!.seq;
      // cut just after a signed round end: the chain alone would look complete
      const lastRoundSig = entries()
        .filter((e) => e.kind === "head_signed" && e.seq < seq)
        .pop()!.seq;
      await attack(ws, `delete from audit_entries where seq > ${lastRoundSig}`);
      const r = await cli("audit", "verify", "--workspace", ws);
      expect(r.code).toBe(1);
      expect(r.out).toContain(`seq ${lastRoundSig + 1} (truncated)`);
    });
  });

  describe("a site's own record, authenticated by its kit key", () => {
    /** Copy a site's workspace and replace its chain with `rows` (its triggers disabled). */
    const replaceChain = async (name: string, from: Site, rows: AuditEntry[]) => {
      const ws = join(root, name);
      cpSync(from.workspace, ws, { recursive: true });
      const db = await openDatabase({ workspace: ws, url: "" });
      await db.exec("alter table audit_entries disable trigger user; delete from audit_entries");
      for (const e of rows)
        await db.query(
          "insert into audit_entries (seq, at, actor, kind, payload, prev_hash, hash) values ($1, $2, $3, $4, $5, $6, $7)",
          [e.seq, e.at, e.actor, e.kind, JSON.stringify(e.payload), e.prev, e.hash],
        );
      await db.close();
      return ws;
    };
    const siteEntries = async (s: Site) =>
      parseJsonl((await cli("audit", "export", "--workspace", s.workspace)).out) as AuditEntry[];
    const crossCheck = (ws: string, siteCert: string) =>
      cli(
        "audit",
        "cross-check",
        "--site-workspace",
        ws,
        "--coordinator-export",
        join(root, "coordinator.jsonl"),
        "--cert",
        certPath,
        "--site-cert",
        siteCert,
      );

    it("a site record rewritten and re-signed with another key is refused by the pinned cross-check", async () => {
      const e = await siteEntries(sites[0]);
      const other = new HeadSigner(
        (await issueCertificate(await createProjectCa("x"), { name: "site-a", role: "site" })).keyPem,
      );
      // the forger claims round 1 released another update, signed with a key of its own
      e[0].payload.signer_key = other.publicKeyHex;
      e.find((x) => x.kind === "update_released")!.payload.update_sha256 = "e".repeat(64);
      for (let i = 0; i < e.length; i++) {
        e[i].prev = i === 0 ? "0".repeat(64) : e[i - 1].hash;
        if (e[i].kind === "head_signed") {
          e[i].payload.head_sha256 = e[i - 1].hash;
          e[i].payload.signer_sha256 = other.keySha256;
          e[i].payload.signature = other.sign(e[i - 1].seq, e[i - 1].hash);
        }
        const { hash: _h, ...body } = e[i];
        e[i].hash = entryHash(body);
      }
      const ws = await replaceChain("site-forged", sites[0], e);
      // self-consistent: verify without a pin passes, and names the key it was signed with
      const self = await cli("audit", "verify", "--workspace", ws);
      expect(self.code, self.out).toBe(0);
      expect(self.out).toContain(`by key sha256:${other.keySha256.slice(0, 16)}`);
      const r = await crossCheck(ws, sites[0].certPath);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/site chain: audit chain NOT intact: seq \d+ \(signer_not_pinned\)/);
    });

    it("an edited site record is named, and another site's certificate does not vouch for this chain", async () => {
      const e = await siteEntries(sites[0]);
      const seq = e.find((x) => x.kind === "update_released")!.seq;
      e[seq - 1].payload.epsilon_after = 0;
      const ws = await replaceChain("site-edited", sites[0], e);
      const r = await crossCheck(ws, sites[0].certPath);
      expect(r.code).toBe(1);
      expect(r.out).toContain(`site chain: audit chain NOT intact: seq ${seq} (edited)`);
      const wrong = await crossCheck(sites[0].workspace, sites[1].certPath);
      expect(wrong.code).toBe(1);
      expect(wrong.out).toContain("(signer_not_pinned)");
    });
  });
});
