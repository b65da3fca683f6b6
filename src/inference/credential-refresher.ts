import { silentLogger, type Logger } from "../logging/logger.js";
import { InferenceError } from "./errors.js";
import type { CredentialsPlaintext } from "./protocol.js";

/** Where the parent gets short-lived cloud credentials (IMDSv2 on EC2; a fake in tests). */
export interface CredentialSource {
  readonly name: string;
  fetch(signal: AbortSignal): Promise<CredentialsPlaintext>;
}

export interface ImdsOptions {
  /** Default "http://169.254.169.254" (the instance metadata service). */
  baseUrl?: string;
  /** Session token lifetime. Default 21600 s (the IMDSv2 maximum). */
  tokenTtlSeconds?: number;
  /** Per-request timeout. Default 2 s. */
  timeoutMs?: number;
  region?: string;
}

const MAX_IMDS_BODY = 64 * 1024;

async function imdsText(res: Response, what: string): Promise<string> {
  if (!res.ok) throw new InferenceError("UPSTREAM_FAILED", `IMDS ${what}: HTTP ${res.status}`);
  const text = await res.text();
  if (text.length > MAX_IMDS_BODY)
    throw new InferenceError("UPSTREAM_FAILED", `IMDS ${what}: answer too large`);
  return text;
}

/**
 * IMDSv2: PUT a session token, list the instance role, GET its credentials. The credentials are
 * never logged or put in an error; errors name the step and the HTTP status.
 */
export class ImdsCredentialSource implements CredentialSource {
  readonly name = "imdsv2";
  private readonly base: string;

  constructor(private readonly o: ImdsOptions = {}) {
    this.base = (o.baseUrl ?? "http://169.254.169.254").replace(/\/+$/, "");
  }

  async fetch(signal: AbortSignal): Promise<CredentialsPlaintext> {
    const timeout = () => AbortSignal.any([signal, AbortSignal.timeout(this.o.timeoutMs ?? 2000)]);
    const call = async (path: string, init: RequestInit, what: string) => {
      try {
        return await imdsText(await fetch(this.base + path, { ...init, signal: timeout() }), what);
      } catch (err) {
        if (err instanceof InferenceError) throw err;
        throw new InferenceError(
          "UPSTREAM_FAILED",
          `IMDS ${what}: ${(err as Error)?.name ?? "request failed"}`,
        );
      }
    };
    const token = await call(
      "/latest/api/token",
      {
        method: "PUT",
        headers: { "X-aws-ec2-metadata-token-ttl-seconds": String(this.o.tokenTtlSeconds ?? 21600) },
      },
      "token",
    );
    const headers = { "X-aws-ec2-metadata-token": token.trim() };
    const roles = await call("/latest/meta-data/iam/security-credentials/", { headers }, "role list");
    const role = roles.split("\n")[0]?.trim();
    if (!role || !/^[\w+=,.@-]{1,128}$/.test(role)) {
      throw new InferenceError("NO_CREDENTIALS", "IMDS role list: the instance has no IAM role");
    }
    const body = await call(`/latest/meta-data/iam/security-credentials/${role}`, { headers }, "credentials");
    let doc: {
      AccessKeyId?: unknown;
      SecretAccessKey?: unknown;
      Token?: unknown;
      Expiration?: unknown;
      Code?: unknown;
    };
    try {
      doc = JSON.parse(body);
    } catch {
      throw new InferenceError("UPSTREAM_FAILED", "IMDS credentials: not JSON");
    }
    if (doc.Code !== undefined && doc.Code !== "Success") {
      throw new InferenceError("UPSTREAM_FAILED", "IMDS credentials: Code is not Success");
    }
    const str = (v: unknown, field: string) => {
      if (typeof v !== "string" || v.length === 0) {
        throw new InferenceError("UPSTREAM_FAILED", `IMDS credentials: ${field} missing`);
      }
      return v;
    };
    return {
      access_key_id: str(doc.AccessKeyId, "AccessKeyId"),
      secret_access_key: str(doc.SecretAccessKey, "SecretAccessKey"),
      session_token: typeof doc.Token === "string" ? doc.Token : undefined,
      expiration: new Date(str(doc.Expiration, "Expiration")).toISOString(),
      ...(this.o.region ? { region: this.o.region } : {}),
    };
  }
}

export interface RefresherOptions {
  source: CredentialSource;
  /** Pushes credentials sealed to the enclave (EnclaveClient.setCredentials). */
  push: (c: CredentialsPlaintext) => Promise<unknown>;
  /** Refresh this long before expiry. Default 5 min. */
  refreshBeforeMs?: number;
  /** First retry delay after a failure, doubled up to `maxRetryMs`. Defaults 1 s and 60 s. */
  retryMs?: number;
  maxRetryMs?: number;
  /** Floor on any delay, so a source handing out near-expired credentials cannot spin. Default 1 s. */
  minDelayMs?: number;
  logger?: Logger;
  now?: () => number;
}

export interface RefresherHealth {
  status: "ok" | "degraded" | "stopped";
  mode: string;
  has_credentials: boolean;
  expires_at?: string;
  last_refresh?: string;
  last_error?: string;
  consecutive_failures: number;
}

/**
 * The parent's credential refresher: fetch, push sealed, and schedule the next refresh
 * `refreshBeforeMs` ahead of expiry; on failure retry with a doubling delay up to `maxRetryMs`.
 * `start` resolves after the first attempt; `stop` cancels.
 */
export class CredentialRefresher {
  private timer: NodeJS.Timeout | null = null;
  private abort: AbortController | null = null;
  private running = false;
  private expiresAt: number | null = null;
  private lastRefresh: number | null = null;
  private lastError: string | undefined;
  private failures = 0;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly o: RefresherOptions) {
    this.now = o.now ?? Date.now;
    this.log = (o.logger ?? silentLogger).child({ component: "credential-refresher" });
  }

  /** Host start hook: first refresh now, the rest in the background. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await this.refresh();
  }

  /** Host stop hook: no further refreshes; an in-flight one is aborted. */
  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abort?.abort();
  }

  health(): RefresherHealth {
    const live = this.expiresAt !== null && this.expiresAt > this.now();
    return {
      status: !this.running ? "stopped" : live && this.failures === 0 ? "ok" : "degraded",
      mode: this.o.source.name,
      has_credentials: live,
      ...(this.expiresAt !== null ? { expires_at: new Date(this.expiresAt).toISOString() } : {}),
      ...(this.lastRefresh !== null ? { last_refresh: new Date(this.lastRefresh).toISOString() } : {}),
      ...(this.lastError ? { last_error: this.lastError } : {}),
      consecutive_failures: this.failures,
    };
  }

  /** One fetch-and-push; schedules the next one either way. */
  async refresh(): Promise<void> {
    if (!this.running) return;
    this.abort = new AbortController();
    try {
      const c = await this.o.source.fetch(this.abort.signal);
      await this.o.push(c);
      this.expiresAt = new Date(c.expiration).getTime();
      this.lastRefresh = this.now();
      this.failures = 0;
      this.lastError = undefined;
      this.log.info({ expires_at: c.expiration }, "credentials refreshed");
      this.schedule(this.expiresAt - this.now() - (this.o.refreshBeforeMs ?? 300_000));
    } catch (err) {
      this.failures++;
      const code = (err as { code?: unknown })?.code;
      this.lastError = typeof code === "string" ? code : "ERROR";
      const base = this.o.retryMs ?? 1000;
      const delay = Math.min(this.o.maxRetryMs ?? 60_000, base * 2 ** (this.failures - 1));
      this.log.warn(
        { code: this.lastError, failures: this.failures, retry_ms: delay },
        "credential refresh failed",
      );
      this.schedule(delay);
    } finally {
      this.abort = null;
    }
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), Math.max(this.o.minDelayMs ?? 1000, ms));
    this.timer.unref();
  }
}
