import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parseTrustPolicy } from "../attestation/policy/load.js";
import { SimulatedProvider } from "../attestation/providers/software.js";
import { ConfidentialClient } from "./client.js";
import { CredentialRefresher, ImdsCredentialSource, type CredentialSource } from "./credential-refresher.js";
import { InferenceError } from "./errors.js";
import type { CredentialsPlaintext } from "./protocol.js";
import { InferenceServer } from "./server.js";
import { netTransport } from "./transport.js";
import type { ChatEvent, ChatUpstream } from "./upstream.js";

/** A local IMDSv2: a session token is required on every GET, as on EC2. */
async function fakeImds(expiration: () => string) {
  const token = "tok-123";
  let issued = 0;
  const server = createServer((req, res) => {
    if (req.method === "PUT" && req.url === "/latest/api/token") {
      if (!req.headers["x-aws-ec2-metadata-token-ttl-seconds"]) return void res.writeHead(400).end();
      return void res.writeHead(200).end(token);
    }
    if (req.headers["x-aws-ec2-metadata-token"] !== token) return void res.writeHead(401).end();
    if (req.url === "/latest/meta-data/iam/security-credentials/")
      return void res.writeHead(200).end("enclave-role\n");
    if (req.url === "/latest/meta-data/iam/security-credentials/enclave-role") {
      issued++;
      return void res.writeHead(200).end(
        JSON.stringify({
          Code: "Success",
          Type: "AWS-HMAC",
          AccessKeyId: `ASIAFAKE${issued}`,
          SecretAccessKey: "secret",
          Token: "session",
          Expiration: expiration(),
        }),
      );
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    issued: () => issued,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

afterEach(() => vi.useRealTimers());

describe("parent-side credentials", () => {
  it("fetches instance credentials with the IMDSv2 token flow", async () => {
    const imds = await fakeImds(() => "2030-01-01T00:00:00Z");
    const c = await new ImdsCredentialSource({ baseUrl: imds.url, region: "us-east-1" }).fetch(
      new AbortController().signal,
    );
    expect(c).toEqual({
      access_key_id: "ASIAFAKE1",
      secret_access_key: "secret",
      session_token: "session",
      expiration: "2030-01-01T00:00:00.000Z",
      region: "us-east-1",
    });
    await imds.close();
    const down = await new ImdsCredentialSource({ baseUrl: imds.url, timeoutMs: 500 })
      .fetch(new AbortController().signal)
      .catch((e: InferenceError) => e);
    expect((down as InferenceError).code).toBe("UPSTREAM_FAILED");
    expect((down as InferenceError).message).toMatch(/^IMDS token/);
  });

  it("refreshes ahead of expiry, retries with backoff, reports health, and stops", async () => {
    vi.useFakeTimers();
    let t = 1_000_000;
    const pushed: CredentialsPlaintext[] = [];
    let failNext = 0;
    const source: CredentialSource = {
      name: "fake",
      fetch: async () => {
        if (failNext > 0) {
          failNext--;
          throw new InferenceError("UPSTREAM_FAILED", "IMDS token: HTTP 500");
        }
        return {
          access_key_id: `K${pushed.length}`,
          secret_access_key: "s",
          expiration: new Date(t + 60_000).toISOString(),
        };
      },
    };
    const r = new CredentialRefresher({
      source,
      push: async (c) => pushed.push(c),
      refreshBeforeMs: 10_000,
      now: () => t,
    });
    const advance = async (ms: number) => {
      t += ms;
      await vi.advanceTimersByTimeAsync(ms);
    };
    await r.start();
    expect(pushed).toHaveLength(1);
    expect(r.health()).toMatchObject({
      status: "ok",
      mode: "fake",
      has_credentials: true,
      consecutive_failures: 0,
    });
    await advance(49_999);
    expect(pushed).toHaveLength(1);
    failNext = 2;
    await advance(1); // 50 s: 10 s before expiry -> refresh, which fails
    expect(r.health()).toMatchObject({
      status: "degraded",
      has_credentials: true,
      consecutive_failures: 1,
      last_error: "UPSTREAM_FAILED",
    });
    await advance(1000); // retry after 1 s fails again
    expect(r.health().consecutive_failures).toBe(2);
    await advance(1999);
    expect(pushed).toHaveLength(1);
    await advance(1); // retry after 2 s succeeds
    expect(pushed).toHaveLength(2);
    expect(r.health()).toMatchObject({ status: "ok", consecutive_failures: 0 });
    r.stop();
    await advance(120_000);
    expect(pushed).toHaveLength(2);
    expect(r.health().status).toBe("stopped");
  });

  it("keeps a real enclave's credentials fresh: an expiring set is replaced before a chat needs it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "enclave-refresh-"));
    const seen: string[] = [];
    const chat: ChatUpstream = {
      name: "probe",
      needsCredentials: true,
      async *converse(_r, c): AsyncIterable<ChatEvent> {
        seen.push(c!.accessKeyId);
        yield { type: "text", text: "ok" };
      },
    };
    const server = await InferenceServer.create({
      provider: new SimulatedProvider({ measurement: new Uint8Array(48) }),
      chat,
      mode: "simulation",
    });
    const listener = await netTransport.listen(
      { kind: "unix", path: join(dir, "e.sock") },
      (s) => void server.handle(s),
    );
    const imds = await fakeImds(() => new Date(Date.now() + 1500).toISOString());
    const client = await ConfidentialClient.connect(listener.endpoint, {
      policy: parseTrustPolicy({ allow_simulated: true }),
    });
    const refresher = new CredentialRefresher({
      source: new ImdsCredentialSource({ baseUrl: imds.url }),
      push: (c) => client.setCredentials(c),
      refreshBeforeMs: 1000,
      minDelayMs: 10,
    });
    await refresher.start();
    await client.chat([{ role: "user", content: "a" }]);
    await new Promise((r) => setTimeout(r, 2000)); // the first set has expired by now
    expect(imds.issued()).toBeGreaterThanOrEqual(2);
    await client.chat([{ role: "user", content: "b" }]);
    expect(seen[0]).toBe("ASIAFAKE1");
    expect(seen[1]).not.toBe("ASIAFAKE1");
    refresher.stop();
    client.close();
    server.closeAll();
    await listener.close();
    await imds.close();
  });
});
