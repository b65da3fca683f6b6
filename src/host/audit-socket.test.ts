// GET /ws/audit over real mTLS on loopback: admins only, and a reconnect that resumes from the
// last sequence number seen gets every entry exactly once while the chain keeps growing.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { AuditChain } from "../audit/chain.js";
import { HeadSigner } from "../audit/entry.js";
import {
  createProjectCa,
  issueCertificate,
  type Credential,
  type ProjectCa,
} from "../identity/certificates.js";
import { openDatabase, type Database } from "../storage/database.js";
import { startHostApi, type HostApi } from "./host-api.js";
import { MemoryJobDirectory } from "./job-directory.js";

describe("GET /ws/audit", () => {
  let ca: ProjectCa;
  let api: HostApi;
  let db: Database;
  let chain: AuditChain;
  let admin: Credential;
  let site: Credential;
  const job = randomUUID();

  beforeAll(async () => {
    ca = await createProjectCa("demo");
    const coordinator = await issueCertificate(ca, {
      name: "coordinator",
      role: "coordinator",
      hosts: ["localhost"],
    });
    admin = await issueCertificate(ca, { name: "alice", role: "admin" });
    site = await issueCertificate(ca, { name: "site-a", role: "site" });
    db = await openDatabase({ workspace: "", url: "", memory: true });
    chain = await AuditChain.open(db, {
      actor: "coordinator/coordinator",
      role: "coordinator",
      signer: new HeadSigner(coordinator.keyPem),
    });
    api = await startHostApi({
      credential: coordinator,
      caPem: ca.certPem,
      jobs: new MemoryJobDirectory(),
      host: "127.0.0.1",
      port: 0,
      audit: chain,
    });
  });
  afterAll(async () => {
    await api?.close();
    await db?.close();
  });

  const open = (from: number, cred?: Credential) =>
    new WebSocket(`wss://localhost:${api.port}/ws/audit?from=${from}`, {
      ca: ca.certPem,
      ...(cred ? { cert: cred.certPem, key: cred.keyPem } : {}),
    });

  const status = (ws: WebSocket) =>
    new Promise<number>((resolve) => {
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.on("open", () => resolve(101));
      ws.on("error", () => resolve(-1));
    });

  const append = (round: number) =>
    chain.append("model_sent", { job_id: job, round, site: "site-a", model_sha256: "ab".repeat(32) });

  it("refuses a connection without a certificate (401), with a site's (403) and a bad from (400)", async () => {
    expect(await status(open(1))).toBe(401);
    expect(await status(open(1, site))).toBe(403);
    expect(await status(open(0, admin))).toBe(400);
  });

  it("streams from a sequence number, live, and resumes after a reconnect without gaps or duplicates", async () => {
    const seen: number[] = [];
    let waiter: { until: number; resolve: () => void } | null = null;
    const listen = (ws: WebSocket) => {
      ws.on("message", (m) => {
        seen.push((JSON.parse(String(m)) as { seq: number }).seq);
        if (waiter && seen[seen.length - 1] >= waiter.until) waiter.resolve();
      });
      return ws;
    };
    const take = (_ws: WebSocket, until: number) =>
      new Promise<void>((resolve) => {
        if (seen.length && seen[seen.length - 1] >= until) return resolve();
        waiter = { until, resolve };
      });
    for (let r = 1; r <= 5; r++) await append(r);
    const first = listen(open(1, admin));
    const initial = chain.head.seq;
    await take(first, initial);
    // live: appended while connected
    const live = take(first, initial + 3);
    for (let r = 6; r <= 8; r++) await append(r);
    await live;
    first.terminate();
    // appended while disconnected, and while the second connection reads its backlog
    for (let r = 9; r <= 20; r++) await append(r);
    const second = listen(open(seen[seen.length - 1] + 1, admin));
    const more = (async () => {
      for (let r = 21; r <= 40; r++) await append(r);
    })();
    await more;
    await take(second, chain.head.seq);
    second.close();
    expect(seen).toEqual(Array.from({ length: chain.head.seq }, (_, i) => i + 1));
  });
});
