import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../storage/database.js";
import { describeOnPostgres } from "../../test/support/postgres-server.js";
import { AuditChain, readChain } from "./chain.js";
import { entryHash, HeadSigner, pemKeySha256, type AuditEntry } from "./entry.js";
import { entryLine, parseJsonl } from "./jsonl.js";
import { verifyChain } from "./verify.js";

const JOB = "3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b";
const H = (c: string) => c.repeat(64);

function keyPem(): string {
  return generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
    type: "pkcs8",
    format: "pem",
  }) as string;
}

/** A small signed chain as a coordinator writes it: a job, one round, a signed end. */
async function sampleChain(db: Database, signer = new HeadSigner(keyPem())): Promise<AuditChain> {
  const chain = await AuditChain.open(db, { actor: "coordinator/coord", role: "coordinator", signer });
  await chain.append(
    "job_submitted",
    {
      job_id: JOB,
      job_sha256: H("a"),
      sites: 2,
      rounds: 1,
      min_clients: 2,
      strategy: "FED_AVG",
      mechanism: "DP_SGD",
      target_epsilon: 3,
      delta: 1e-5,
    },
    "admin/alice",
  );
  await chain.signHead("admin_action");
  await chain.append("model_sent", { job_id: JOB, round: 1, site: "site-a", model_sha256: H("b") });
  await chain.append("update_received", {
    job_id: JOB,
    round: 1,
    site: "site-a",
    update_sha256: H("c"),
    examples: 100,
    steps: 10,
  });
  await chain.append("budget_spent", {
    job_id: JOB,
    round: 1,
    site: "site-a",
    epsilon_before: 0,
    epsilon_after: 0.81,
    delta: 1e-5,
    accountant: "rdp",
  });
  await chain.signHead("round_end");
  return chain;
}

async function all(db: Database): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for await (const e of readChain(db)) out.push(e);
  return out;
}

/** Re-hash an entry after an edit (an attacker who knows the format). */
const rehash = (e: AuditEntry): AuditEntry => {
  const { hash: _h, ...body } = e;
  return { ...e, hash: entryHash(body) };
};

function databaseRules(open: () => Promise<Database>) {
  it("refuses UPDATE, DELETE, TRUNCATE and an insert that does not link to the last entry", async () => {
    const db = await open();
    try {
      await sampleChain(db);
      await expect(db.exec("update audit_entries set actor = 'admin/mallory' where seq = 2")).rejects.toThrow(
        /append-only/,
      );
      await expect(db.exec("delete from audit_entries where seq = 4")).rejects.toThrow(/append-only/);
      await expect(db.exec("truncate audit_entries")).rejects.toThrow(/append-only/);
      await expect(
        db.exec(
          `insert into audit_entries values (99, '2026-01-01T00:00:00.000Z', 'admin/x', 'admin_action', '{}', '${H("0")}', '${H("9")}')`,
        ),
      ).rejects.toThrow(/must follow the last one/);
      const entries = await all(db);
      expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(verifyChain(entries).intact).toBe(true);
    } finally {
      await db.close();
    }
  });

  it("reopens the chain where it ended and goes on linking", async () => {
    const db = await open();
    try {
      const signer = new HeadSigner(keyPem());
      await sampleChain(db, signer);
      const again = await AuditChain.open(db, { actor: "coordinator/coord", role: "coordinator", signer });
      expect(again.head.seq).toBe(8);
      await again.append("admin_action", { action: "abort", job_id: JOB }, "admin/alice");
      await again.signHead("admin_action");
      // A new kit's key is declared in the chain before it signs.
      const other = await AuditChain.open(db, {
        actor: "coordinator/coord",
        role: "coordinator",
        signer: new HeadSigner(keyPem()),
      });
      expect((await other.entries(11))[0].kind).toBe("signer_added");
      const v = verifyChain(await all(db));
      expect(v).toMatchObject({ intact: true, entries: 12, signedThrough: 12 });
      expect(v.signers).toHaveLength(2);
    } finally {
      await db.close();
    }
  });
}

describe("AuditChain on PGlite", () => {
  databaseRules(() => openDatabase({ workspace: mkdtempSync(join(tmpdir(), "enclave-audit-")), url: "" }));

  it("refuses a payload that is not ids, hashes, numbers and enums, naming the field and not the value", async () => {
    const db = await openDatabase({ workspace: "", url: "", memory: true });
    try {
      const chain = await AuditChain.open(db, { actor: "coordinator/coord", role: "coordinator" });
      const canary = "CANARY-7f3e-patient-name";
      const attempts: [string, unknown][] = [
        ["update_rejected", { job_id: JOB, round: 1, site: "s", state: "failed", reason: canary }],
        ["model_sent", { job_id: JOB, round: 1, site: "s", model_sha256: H("b"), note: canary }],
        ["model_sent", { job_id: JOB, round: 1, site: canary + " x", model_sha256: H("b") }],
        ["budget_spent", { job_id: JOB, round: 1, site: "s", epsilon_before: canary, epsilon_after: 1 }],
        ["job_finished", { job_id: canary, status: "completed", rounds_completed: 1, model_sha256: H("b") }],
        ["model_sent", { job_id: JOB, round: 1, site: "s", model_sha256: H("b") + "00" }],
      ];
      for (const [kind, payload] of attempts) {
        const err = await (async () => chain.append(kind as never, payload as never))().catch(
          (e: Error) => e,
        );
        expect(err).toMatchObject({ code: "AUDIT_PAYLOAD_INVALID" });
        expect((err as Error).message).not.toContain("CANARY");
        expect((err as Error).message).not.toContain("note");
      }
      await expect(chain.append("admin_action", { action: "abort" }, "somebody")).rejects.toMatchObject({
        code: "AUDIT_PAYLOAD_INVALID",
      });
      expect(chain.head.seq).toBe(1);
    } finally {
      await db.close();
    }
  });
});

describeOnPostgres("AuditChain on a real PostgreSQL server", (server) => {
  databaseRules(async () => openDatabase({ workspace: "", url: await server().freshDatabase() }));
});

describe("verifyChain names the first bad entry", () => {
  let entries: AuditEntry[];
  let signerSha: string;
  let pem: string;
  beforeAll(async () => {
    const db = await openDatabase({ workspace: "", url: "", memory: true });
    pem = keyPem();
    signerSha = new HeadSigner(pem).keySha256;
    await sampleChain(db, new HeadSigner(pem));
    entries = await all(db);
    await db.close();
  });
  const copy = () => entries.map((e) => structuredClone(e));

  it("passes an intact chain, through its export file and back", () => {
    const text = entries.map(entryLine).join("");
    expect(text.split("\n")).toHaveLength(entries.length + 1);
    expect(verifyChain(parseJsonl(text), { pinnedSigner: signerSha })).toMatchObject({
      intact: true,
      entries: 8,
      signedThrough: 8,
    });
    expect(pemKeySha256(pem)).toBe(signerSha);
  });

  it("an edited entry", () => {
    const c = copy();
    c[5].payload.examples = 1000;
    expect(verifyChain(c).problem).toMatchObject({ seq: 6, kind: "edited" });
  });

  it("an edited entry whose hash was recomputed (the next entry's link names it)", () => {
    const c = copy();
    c[5].payload.examples = 1000;
    c[5] = rehash(c[5]);
    expect(verifyChain(c).problem).toMatchObject({ seq: 6, kind: "edited" });
  });

  it("a removed entry", () => {
    const c = copy();
    c.splice(4, 1);
    expect(verifyChain(c).problem).toMatchObject({ seq: 5, kind: "removed" });
  });

  it("a removed first entry", () => {
    expect(verifyChain(copy().slice(1)).problem).toMatchObject({ seq: 1, kind: "removed" });
  });

  it("two entries swapped", () => {
    const c = copy();
    [c[4], c[5]] = [c[5], c[4]];
    expect(verifyChain(c).problem).toMatchObject({ seq: 6, kind: "reordered" });
  });

  it("a forged head signature", () => {
    const c = copy();
    const sig = String(c[7].payload.signature);
    c[7].payload.signature = (sig[0] === "0" ? "1" : "0") + sig.slice(1);
    c[7] = rehash(c[7]);
    expect(verifyChain(c).problem).toMatchObject({ seq: 8, kind: "forged_signature" });
  });

  it("a rewritten history re-signed with another key, against the pinned coordinator key", () => {
    const mallory = new HeadSigner(keyPem());
    const c = copy();
    c[0].payload.signer_key = mallory.publicKeyHex;
    for (let i = 0; i < c.length; i++) {
      if (i > 0) c[i].prev = c[i - 1].hash;
      if (c[i].kind === "head_signed") {
        c[i].payload.signer_sha256 = mallory.keySha256;
        c[i].payload.head_sha256 = c[i - 1].hash;
        c[i].payload.signature = mallory.sign(i, c[i - 1].hash);
      }
      c[i] = rehash(c[i]);
    }
    expect(verifyChain(c).intact).toBe(true); // self-consistent, so only a pinned key catches it
    expect(verifyChain(c, { pinnedSigner: signerSha }).problem).toMatchObject({
      seq: 2,
      kind: "signer_not_pinned",
    });
  });

  it("a truncated tail: cut inside a signed round, cut mid-line, cut at a signed head against the anchor", () => {
    expect(verifyChain(copy().slice(0, 6)).problem).toMatchObject({ seq: 5, kind: "unsigned_tail" });
    const text = entries.map(entryLine).join("");
    expect(verifyChain(parseJsonl(text.slice(0, text.length - 40))).problem).toMatchObject({
      seq: 8,
      kind: "malformed",
    });
    const anchor = entries[7];
    expect(verifyChain(copy().slice(0, 4), { anchor }).problem).toMatchObject({ seq: 5, kind: "truncated" });
  });

  it("a payload widened to carry text", () => {
    const c = copy();
    c[5].payload.site = "site-a; name=CANARY";
    c[5] = rehash(c[5]);
    expect(verifyChain(c.slice(0, 6), { allowUnsignedTail: true }).problem).toMatchObject({
      seq: 6,
      kind: "invalid_payload",
    });
  });
});
