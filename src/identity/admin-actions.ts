import { createPrivateKey, sign, verify, X509Certificate } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import canonicalize from "canonicalize";
import { z } from "zod";
import { parseContract } from "../schemas/contract.js";
import type { ProjectCa } from "./certificates.js";
import { IdentityError } from "./errors.js";
import { WatchedFile } from "./watched-file.js";

/** `role/name` of whoever took an action: an admin's certificate, or the CA when no admin kit was given. */
const Actor = z.string().regex(/^(?:admin|ca)\/[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/);
const Name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/);

const AdminActionRecord = z
  .object({
    action: z.enum(["approve", "revoke"]),
    /** The certificate issued or revoked (lower-case hex serial). */
    serial: z.string().regex(/^[0-9a-f]{1,64}$/),
    /** approve: the participant and role the certificate names. */
    participant: Name.optional(),
    role: z.enum(["site", "admin"]).optional(),
    actor: Actor,
    at: z.iso.datetime(),
  })
  .strict();
export type AdminActionRecord = z.output<typeof AdminActionRecord>;

/** admin-actions.json: every approval and revocation the CA's holder made, signed by the CA. */
const AdminActionFile = z
  .object({
    format: z.literal("coreason-enclave-admin-actions/1"),
    project: z.string().min(1),
    actions: z.array(AdminActionRecord),
    /** The CA's signature (base64) over the RFC 8785 JSON of {format, project, actions}. */
    signature: z.string().min(1),
  })
  .strict();

const FORMAT = "coreason-enclave-admin-actions/1";
const signedBytes = (project: string, actions: AdminActionRecord[]) =>
  Buffer.from(canonicalize({ format: FORMAT, project, actions }) ?? "");

/**
 * Append `record` to the CA's action log at `path` (created if missing), re-signed atomically.
 * Approvals and revocations are recorded where the CA key is, and travel to the coordinator as
 * this file (as revoked.json does) rather than over the host API: the CA's machine is meant to be
 * offline, and only the CA's signature, not any admin's certificate, can vouch that the CA issued
 * or revoked a certificate (docs/audit.md, "Admin actions").
 */
export function appendAdminAction(path: string, ca: ProjectCa, record: AdminActionRecord): void {
  const actions = [...(existsSync(path) ? readAdminActions(path, ca.certPem) : []), record];
  const signature = sign("sha256", signedBytes(ca.project, actions), createPrivateKey(ca.keyPem)).toString(
    "base64",
  );
  const body = { format: FORMAT, project: ca.project, actions, signature };
  writeFileSync(`${path}.tmp`, JSON.stringify(body, null, 2) + "\n");
  renameSync(`${path}.tmp`, path);
}

/** The actions of a CA-signed log; an unsigned, edited or malformed log is refused. */
export function readAdminActions(path: string, caPem: string): AdminActionRecord[] {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new IdentityError("KIT_INVALID", "admin action log cannot be read as JSON");
  }
  const f = parseContract(AdminActionFile, doc, "admin action log");
  const ok = verify(
    "sha256",
    signedBytes(f.project, f.actions),
    new X509Certificate(caPem).publicKey,
    Buffer.from(f.signature, "base64"),
  );
  if (!ok) throw new IdentityError("KIT_INVALID", "admin action log is not signed by the project CA");
  return f.actions;
}

/**
 * A coordinator's view of the CA's admin action log at `path` (a copy of `<ca>/admin-actions.json`
 * beside its kit): re-read at start and whenever the file changes, each time handing every action
 * to `onActions` (the audit ledger records each once). A missing file holds no actions; a log that
 * stops verifying keeps the last good one and says so through `problem`.
 */
export class AdminActionLog {
  private readonly file: WatchedFile;

  constructor(
    path: string | undefined,
    private readonly caPem: string,
    private readonly onActions: (actions: AdminActionRecord[]) => void,
  ) {
    this.file = new WatchedFile(path);
  }

  get problem(): string | null {
    return this.file.problem;
  }

  refresh(): void {
    this.file.reread((path) => this.onActions(readAdminActions(path, this.caPem)));
  }
}
