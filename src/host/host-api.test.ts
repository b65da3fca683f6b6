// The host API over real mTLS on loopback: /ping for anyone, every RPC only with a project
// certificate whose role may call it, checked before the body is read; Connect and gRPC callers.
import { request } from "node:https";
import { connect as tcpConnect, type Socket } from "node:net";
import { X509Certificate } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, ConnectError, Code, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { AgentService } from "../gen/agent/v1/agent_pb.js";
import {
  createProjectCa,
  issueCertificate,
  type Credential,
  type ProjectCa,
} from "../identity/certificates.js";
import { METHOD_ROLES } from "./authorization.js";
import { startHostApi, type HostApi } from "./host-api.js";
import { MemoryJobDirectory } from "./job-directory.js";

const PROTO = fileURLToPath(new URL("../../proto/", import.meta.url));

const job = (id: string) =>
  JSON.stringify({
    job_id: id,
    clients: ["site-a", "site-b"],
    min_clients: 2,
    rounds: 3,
    strategy: "FED_AVG",
    privacy: { mechanism: "DP_SGD", noise_multiplier: 1.1, max_grad_norm: 1, target_epsilon: 3, delta: 1e-5 },
    dataset_id: "breast-cancer-wisconsin.csv",
    model_arch: "SimpleMLP",
  });

/** A raw HTTPS request: status and body (optionally with a client certificate). */
function https(
  port: number,
  ca: string,
  path: string,
  o: { method?: string; cred?: Credential; body?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: o.method ?? "GET",
        ca,
        servername: "localhost",
        ...(o.cred ? { cert: o.cred.certPem, key: o.cred.keyPem } : {}),
        headers: o.body ? { "content-type": "application/json" } : {},
        agent: false,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end(o.body);
  });
}

describe("host API (mTLS on loopback)", () => {
  let ca: ProjectCa;
  let api: HostApi;
  let admin: Credential;
  let site: Credential;
  let revokedAdmin: Credential;
  let foreignAdmin: Credential;
  const revoked = new Set<string>();
  const jobs = new MemoryJobDirectory();

  const client = (
    cred: Credential,
    protocol: "connect" | "grpc" = "connect",
  ): Client<typeof AgentService> => {
    const options = {
      baseUrl: `https://localhost:${api.port}`,
      nodeOptions: { ca: ca.certPem, cert: cred.certPem, key: cred.keyPem },
    };
    return createClient(
      AgentService,
      protocol === "grpc"
        ? createGrpcTransport(options)
        : createConnectTransport({ ...options, httpVersion: "2" }),
    );
  };

  beforeAll(async () => {
    ca = await createProjectCa("demo");
    const coordinator = await issueCertificate(ca, {
      name: "coordinator",
      role: "coordinator",
      hosts: ["localhost", "127.0.0.1"],
    });
    admin = await issueCertificate(ca, { name: "admin-1", role: "admin" });
    site = await issueCertificate(ca, { name: "site-a", role: "site" });
    revokedAdmin = await issueCertificate(ca, { name: "admin-2", role: "admin" });
    revoked.add(new X509Certificate(revokedAdmin.certPem).serialNumber.toLowerCase());
    foreignAdmin = await issueCertificate(await createProjectCa("other"), { name: "admin-1", role: "admin" });
    api = await startHostApi({
      credential: coordinator,
      caPem: ca.certPem,
      jobs,
      host: "127.0.0.1",
      port: 0,
      isRevoked: (serial) => revoked.has(serial),
    });
  });

  afterAll(async () => {
    await api.close();
  });

  it("answers GET /ping with pong to a client without a certificate, and nothing else", async () => {
    expect(await https(api.port, ca.certPem, "/ping")).toEqual({ status: 200, body: "pong\n" });
    const rpc = await https(api.port, ca.certPem, "/agent.v1.AgentService/ListJobs", {
      method: "POST",
      body: "{}",
    });
    expect(rpc.status).toBe(401);
    expect(rpc.body).toMatch(/client certificate from the project CA is required/);
    expect((await https(api.port, ca.certPem, "/anything")).status).toBe(401);
  });

  it("refuses a certificate from another CA as if it had none", async () => {
    const r = await https(api.port, ca.certPem, "/agent.v1.AgentService/ListJobs", {
      method: "POST",
      body: "{}",
      cred: foreignAdmin,
    });
    expect(r.status).toBe(401);
    await expect(client(foreignAdmin).listJobs({})).rejects.toMatchObject({ code: Code.Unauthenticated });
  });

  it("lets an admin submit, read, list and abort jobs (Connect protocol)", async () => {
    const c = client(admin);
    const id = "6f1c1b0e-3f0a-4c55-9d7e-2a1b3c4d5e6f";
    expect((await c.submitJob({ jobJson: job(id) })).jobId).toBe(id);
    const got = (await c.getJob({ jobId: id })).job!;
    expect(got).toMatchObject({ jobId: id, status: "queued", rounds: 3, roundsCompleted: 0 });
    expect((await c.listJobs({})).jobs.map((j) => j.jobId)).toContain(id);
    expect((await c.abortJob({ jobId: id })).job!.status).toBe("aborted");
    // A watch of an ended job ends.
    const events = [];
    for await (const e of c.watchJob({ jobId: id })) events.push(e);
    expect(events).toEqual([]);
    await expect(c.getJob({ jobId: "nope" })).rejects.toMatchObject({ code: Code.NotFound });
  });

  it("refuses an invalid job naming the fields, never echoing values", async () => {
    const bad = JSON.parse(job("9b2d6c1e-0000-4000-8000-000000000001"));
    bad.min_clients = 7;
    bad.privacy.target_epsilon = 99;
    const err = await client(admin)
      .submitJob({ jobJson: JSON.stringify(bad) })
      .catch((e: unknown) => e as ConnectError);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).rawMessage).toMatch(
      /^VALIDATION_FAILED: invalid FederationJob: (?=.*min_clients: must be <= clients\.length)(?=.*privacy\.target_epsilon: must be <= 5)/,
    );
    expect((err as ConnectError).rawMessage).not.toMatch(/\b99\b/);
  });

  it("decides by role: a site certificate may not call the admin methods", async () => {
    await expect(client(site).listJobs({})).rejects.toMatchObject({ code: Code.PermissionDenied });
    await expect(
      client(site).submitJob({ jobJson: job("9b2d6c1e-0000-4000-8000-000000000002") }),
    ).rejects.toMatchObject({
      code: Code.PermissionDenied,
    });
    // Every method of the service has its roles; none is open to every role.
    for (const m of Object.values(AgentService.method)) {
      expect(METHOD_ROLES[m.name], m.name).toBeDefined();
      expect(METHOD_ROLES[m.name].length, m.name).toBeLessThan(3);
    }
  });

  it("refuses a revoked certificate at the handshake", async () => {
    await expect(client(revokedAdmin).listJobs({})).rejects.toBeInstanceOf(ConnectError);
    await expect(https(api.port, ca.certPem, "/ping", { cred: revokedAdmin })).rejects.toThrow();
    expect((await client(admin).listJobs({})).jobs.length).toBeGreaterThan(0);
  });

  it("serves a generic gRPC client that has only the .proto (grpc-js + proto-loader)", async () => {
    const def = protoLoader.loadSync("agent/v1/agent.proto", { includeDirs: [PROTO], keepCase: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      agent: { v1: { AgentService: grpc.ServiceClientConstructor } };
    };
    const call = (cred: Credential) =>
      new Promise<{ jobs: { job_id: string; status: string }[] }>((resolve, reject) => {
        const stub = new pkg.agent.v1.AgentService(
          `localhost:${api.port}`,
          grpc.credentials.createSsl(
            Buffer.from(ca.certPem),
            Buffer.from(cred.keyPem),
            Buffer.from(cred.certPem),
          ),
        );
        (
          stub as unknown as Record<
            string,
            (req: object, cb: (e: grpc.ServiceError | null, r: never) => void) => void
          >
        ).ListJobs({}, (e, r) => {
          stub.close();
          if (e) reject(e);
          else resolve(r);
        });
      });
    const r = await call(admin);
    expect(r.jobs.map((j) => j.job_id)).toContain("6f1c1b0e-3f0a-4c55-9d7e-2a1b3c4d5e6f");
    await expect(call(site)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    // And connect-node's own gRPC transport.
    expect((await client(admin, "grpc").listJobs({})).jobs.length).toBeGreaterThan(0);
  });
});

describe("pre-authentication work is bounded", () => {
  let ca: ProjectCa;
  let coordinator: Credential;
  beforeAll(async () => {
    ca = await createProjectCa("bounds");
    coordinator = await issueCertificate(ca, {
      name: "coordinator",
      role: "coordinator",
      hosts: ["127.0.0.1"],
    });
  });

  const open = (port: number) =>
    new Promise<Socket>((resolve, reject) => {
      const s = tcpConnect(port, "127.0.0.1", () => resolve(s));
      s.on("error", reject);
    });
  const closed = (s: Socket) =>
    new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once("close", () => resolve())));

  it("drops connections beyond an address's burst, and beyond the handshakes in flight, unread", async () => {
    const api = await startHostApi({
      credential: coordinator,
      caPem: ca.certPem,
      jobs: new MemoryJobDirectory(),
      host: "127.0.0.1",
      port: 0,
      limits: {
        connectionBurst: 4,
        connectionsPerSecond: 0.001,
        maxPendingHandshakes: 2,
        handshakeTimeoutMs: 60_000,
      },
    });
    try {
      // Nobody sends a ClientHello: two handshakes are in flight, the rest are dropped at once.
      const sockets = await Promise.all(Array.from({ length: 6 }, () => open(api.port)));
      await new Promise((r) => setTimeout(r, 200));
      expect(api.guard.pendingHandshakes).toBe(2);
      expect(api.guard.dropped.pending).toBe(2);
      expect(api.guard.dropped.rate).toBe(2);
      expect(sockets.filter((s) => s.destroyed || s.readyState === "closed").length).toBeGreaterThanOrEqual(
        0,
      );
      for (const s of sockets) s.destroy();
    } finally {
      await api.close();
    }
  });

  it("ends a handshake that does not complete in time", async () => {
    const api = await startHostApi({
      credential: coordinator,
      caPem: ca.certPem,
      jobs: new MemoryJobDirectory(),
      host: "127.0.0.1",
      port: 0,
      limits: { handshakeTimeoutMs: 300 },
    });
    try {
      const s = await open(api.port);
      const t0 = Date.now();
      await closed(s);
      expect(Date.now() - t0).toBeLessThan(5000);
      await new Promise((r) => setTimeout(r, 50));
      expect(api.guard.pendingHandshakes).toBe(0);
    } finally {
      await api.close();
    }
  });
});
