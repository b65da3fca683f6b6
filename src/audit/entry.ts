import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import canonicalize from "canonicalize";
import type { AuditKind } from "./kinds.js";

/** One entry of an audit chain, as stored, exported (one per line) and streamed. */
export interface AuditEntry {
  seq: number;
  /** ISO 8601 UTC, as hashed. */
  at: string;
  /** `role/name` of the certificate identity that caused the entry. */
  actor: string;
  kind: AuditKind;
  payload: Record<string, string | number | boolean>;
  /** The previous entry's hash (64 zeros before the first). */
  prev: string;
  hash: string;
}

export const GENESIS_PREV = "0".repeat(64);

/** The RFC 8785 (JCS) canonical JSON of `value`: the bytes that are hashed and signed. */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError("value has no canonical JSON form");
  return text;
}

/** An entry's hash: SHA-256 over the canonical JSON of every field but the hash itself. */
export function entryHash(e: Omit<AuditEntry, "hash">): string {
  const { seq, at, actor, kind, payload, prev } = e;
  return createHash("sha256").update(canonicalJson({ seq, at, actor, kind, payload, prev })).digest("hex");
}

/** What a head signature covers: the chain's format, the head's sequence number and its hash. */
function headMessage(seq: number, hash: string): Buffer {
  return Buffer.from(canonicalJson({ chain: "coreason-enclave-audit/1", head_seq: seq, head_sha256: hash }));
}

/** The signer of a chain's heads: the coordinator's own key (ECDSA P-256) from its kit. */
export class HeadSigner {
  private readonly key: KeyObject;
  /** SubjectPublicKeyInfo DER as hex: what `chain_opened` records. */
  readonly publicKeyHex: string;
  readonly keySha256: string;

  constructor(privateKeyPem: string) {
    this.key = createPrivateKey(privateKeyPem);
    const spki = createPublicKey(this.key).export({ type: "spki", format: "der" });
    this.publicKeyHex = spki.toString("hex");
    this.keySha256 = createHash("sha256").update(spki).digest("hex");
  }

  sign(seq: number, hash: string): string {
    return sign("sha256", headMessage(seq, hash), { key: this.key, dsaEncoding: "ieee-p1363" }).toString(
      "hex",
    );
  }
}

/** SHA-256 of a public key given as SPKI DER hex (the `signer_sha256` of a head). */
export function keySha256(publicKeyHex: string): string {
  return createHash("sha256").update(Buffer.from(publicKeyHex, "hex")).digest("hex");
}

/** SHA-256 of the SPKI of a certificate or public key in PEM (for pinning a chain's signer). */
export function pemKeySha256(pem: string): string {
  const spki = createPublicKey(pem).export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("hex");
}

/** True when `signatureHex` is a valid signature of head (seq, hash) by the SPKI key. */
export function headSignatureValid(
  publicKeyHex: string,
  seq: number,
  hash: string,
  signatureHex: string,
): boolean {
  try {
    const key = createPublicKey({ key: Buffer.from(publicKeyHex, "hex"), format: "der", type: "spki" });
    return verify(
      "sha256",
      headMessage(seq, hash),
      { key, dsaEncoding: "ieee-p1363" },
      Buffer.from(signatureHex, "hex"),
    );
  } catch {
    return false;
  }
}
