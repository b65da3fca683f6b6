import { createPrivateKey, sign, verify, X509Certificate } from "node:crypto";
import { existsSync, readFileSync, writeFileSync, renameSync } from "node:fs";
import { z } from "zod";
import { parseContract } from "../schemas/contract.js";
import type { ProjectCa } from "./certificates.js";
import { IdentityError } from "./errors.js";
import { WatchedFile } from "./watched-file.js";

/** revoked.json: the serial numbers (lower-case hex) the project CA has revoked, signed by it. */
const RevocationFile = z
  .object({
    format: z.literal("coreason-enclave-revocations/1"),
    project: z.string().min(1),
    serials: z.array(z.string().regex(/^[0-9a-f]{1,64}$/)),
    updated_at: z.string().min(1),
    /** The CA's signature over JSON.stringify({project, serials, updated_at}). */
    signature: z.string().min(1),
  })
  .strict();

const signedBytes = (project: string, serials: string[], updatedAt: string) =>
  Buffer.from(JSON.stringify({ project, serials, updated_at: updatedAt }));

/** Add `serials` to the CA's revocation list at `path` (created if missing), re-signed. */
export function revokeSerials(path: string, ca: ProjectCa, serials: string[]): string[] {
  const current = existsSync(path) ? readRevocations(path, ca.certPem) : [];
  const all = [...new Set([...current, ...serials.map((s) => s.toLowerCase())])].sort();
  const updatedAt = new Date().toISOString();
  const signature = sign(
    "sha256",
    signedBytes(ca.project, all, updatedAt),
    createPrivateKey(ca.keyPem),
  ).toString("base64");
  const body = {
    format: "coreason-enclave-revocations/1",
    project: ca.project,
    serials: all,
    updated_at: updatedAt,
    signature,
  };
  writeFileSync(`${path}.tmp`, JSON.stringify(body, null, 2) + "\n");
  renameSync(`${path}.tmp`, path);
  return all;
}

/** The serials of a CA-signed revocation list; an unsigned or edited list is refused. */
export function readRevocations(path: string, caPem: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new IdentityError("KIT_INVALID", "revocation list cannot be read");
  }
  const f = parseContract(RevocationFile, JSON.parse(text), "revocation list");
  const ok = verify(
    "sha256",
    signedBytes(f.project, f.serials, f.updated_at),
    new X509Certificate(caPem).publicKey,
    Buffer.from(f.signature, "base64"),
  );
  if (!ok) throw new IdentityError("KIT_INVALID", "revocation list is not signed by the project CA");
  return f.serials;
}

/**
 * A coordinator's view of the revocation list at `path`: re-read whenever the file changes, so a
 * revocation takes effect at the next handshake. A missing file revokes nothing; a list that
 * stops verifying keeps the last good one (and says so through `problem`).
 */
export class RevocationList {
  private serials = new Set<string>();
  private readonly file: WatchedFile;

  /** `onRevoked`: called with the serials each successful re-read adds (the audit ledger's hook). */
  constructor(
    path: string | undefined,
    private readonly caPem: string,
    private readonly onRevoked?: (serials: string[]) => void,
  ) {
    this.file = new WatchedFile(path);
  }

  /** Why the list on disk is not in force (the last good one is), or null. */
  get problem(): string | null {
    return this.file.problem;
  }

  /** Re-read the list now (at start, so revocations made while the coordinator was down are seen). */
  load(): void {
    this.refresh();
  }

  isRevoked(serialHex: string): boolean {
    this.refresh();
    return this.serials.has(serialHex.toLowerCase());
  }

  private refresh(): void {
    this.file.reread((path) => {
      const next = new Set(readRevocations(path, this.caPem));
      const added = [...next].filter((s) => !this.serials.has(s));
      this.serials = next;
      if (added.length) this.onRevoked?.(added);
    });
  }
}
