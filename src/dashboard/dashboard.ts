import { randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { APP_JS, INDEX_HTML } from "./page.js";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { createRequire } from "node:module";
import { readChain, type AuditChain } from "../audit/chain.js";
import type { AuditEntry } from "../audit/entry.js";
import { verifyChain } from "../audit/verify.js";
import type { Identity } from "../identity/certificates.js";
import type { JobDirectory } from "../host/job-directory.js";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

const LINK_TTL_MS = 5 * 60_000;
const SESSION_TTL_MS = 12 * 3600_000;
const COOKIE = "enclave_ui";
const require = createRequire(import.meta.url);

/** The page, its script and the charting library (uPlot, served from the package: no CDN). */
function assets(): Record<string, { type: string; body: Buffer }> {
  const js = "text/javascript; charset=utf-8";
  return {
    "/ui/": { type: "text/html; charset=utf-8", body: Buffer.from(INDEX_HTML) },
    "/ui/app.js": { type: js, body: Buffer.from(APP_JS) },
    "/ui/uplot.js": { type: js, body: readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js")) },
    "/ui/uplot.css": { type: "text/css", body: readFileSync(require.resolve("uplot/dist/uPlot.min.css")) },
  };
}

const token = () => randomBytes(32).toString("base64url");

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The admin dashboard under `/ui/`. A browser has no client certificate, so an admin's
 * certificate asks for a one-time login link (`POST /ui/link`, printed by `enclave dashboard`);
 * opening it sets a session cookie (HttpOnly, Secure, SameSite=Strict) and the link is spent.
 * The page reads `/ws/audit` (the same chain the CLI verifies) and `/ui/api/*`.
 */
export class Dashboard {
  private readonly links = new Map<string, number>();
  private readonly sessions = new Map<string, number>();
  private readonly files = assets();

  constructor(
    private readonly chain: AuditChain,
    private readonly jobs: JobDirectory,
  ) {}

  /** A one-time login path for an admin (valid for five minutes). */
  issueLink(): string {
    const t = token();
    this.links.set(t, Date.now() + LINK_TTL_MS);
    return `/ui/login?token=${t}`;
  }

  /** True when the request carries a live session cookie. */
  hasSession(req: Request): boolean {
    const cookie = String(req.headers.cookie ?? "")
      .split(";")
      .map((c) => c.trim())
      .find((c) => c.startsWith(`${COOKIE}=`));
    if (!cookie) return false;
    const sid = cookie.slice(COOKIE.length + 1);
    for (const [s, until] of this.sessions) if (same(s, sid)) return until > Date.now();
    return false;
  }

  /** Serve a `/ui/` request. */
  async handle(req: Request, res: Response, identity: Identity | null): Promise<void> {
    const url = new URL(req.url ?? "/", "https://host");
    const admin = identity?.role === "admin";
    if (url.pathname === "/ui/link" && req.method === "POST") {
      if (!admin) return this.text(res, 403, "an admin certificate is required");
      return this.json(res, { path: this.issueLink() });
    }
    if (url.pathname === "/ui/login" && req.method === "GET")
      return this.login(res, url.searchParams.get("token") ?? "");
    if (!admin && !this.hasSession(req))
      return this.text(res, 401, "log in with the link `enclave dashboard --kit ADMIN_KIT` prints");
    if (req.method !== "GET") return this.text(res, 405, "method not allowed");
    if (url.pathname === "/ui/api/jobs") return this.json(res, await this.jobs.list());
    if (url.pathname === "/ui/api/verify") return this.json(res, await this.verify());
    const file = this.files[url.pathname === "/ui" ? "/ui/" : url.pathname];
    if (!file) return this.text(res, 404, "not found");
    res.writeHead(200, {
      "content-type": file.type,
      "cache-control": "no-store",
      "content-security-policy":
        "default-src 'self'; img-src 'self' data:; connect-src 'self' wss:; style-src 'self' 'unsafe-inline'",
      "x-content-type-options": "nosniff",
    });
    res.end(file.body);
  }

  private login(res: Response, t: string): void {
    let ok = false;
    for (const [l, until] of this.links)
      if (same(l, t)) {
        this.links.delete(l);
        ok = until > Date.now();
      }
    if (!ok) return this.text(res, 401, "this login link is spent or expired: run enclave dashboard again");
    const sid = token();
    this.sessions.set(sid, Date.now() + SESSION_TTL_MS);
    res.writeHead(303, {
      location: "/ui/",
      "set-cookie": `${COOKIE}=${sid}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=${SESSION_TTL_MS / 1000}`,
    });
    res.end();
  }

  private async verify() {
    const entries: AuditEntry[] = [];
    for await (const e of readChain(this.chain)) entries.push(e);
    return verifyChain(entries, { allowUnsignedTail: true });
  }

  private json(res: Response, body: unknown): void {
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify(body));
  }

  private text(res: Response, status: number, body: string): void {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
    res.end(body + "\n");
  }
}
