import { entryHash, GENESIS_PREV, headSignatureValid, keySha256, type AuditEntry } from "./entry.js";
import { Actor, AUDIT_KINDS, isAuditKind } from "./kinds.js";

/** What is wrong with a chain, at the first entry where it goes wrong. */
export type ChainProblemKind =
  | "malformed"
  | "edited"
  | "removed"
  | "reordered"
  | "forged_signature"
  | "invalid_payload"
  | "truncated"
  | "unsigned_tail"
  | "signer_not_pinned"
  | "empty";

export interface ChainProblem {
  /** The first bad entry's sequence number (for a cut tail: the first missing or unsigned one). */
  seq: number;
  kind: ChainProblemKind;
  message: string;
}

export interface ChainVerdict {
  intact: boolean;
  entries: number;
  head: { seq: number; hash: string } | null;
  /** The last entry covered by a valid head signature (0: none). */
  signedThrough: number;
  /** SHA-256 of the keys that signed heads. */
  signers: string[];
  problem?: ChainProblem;
}

export interface VerifyOptions {
  /** SHA-256 of the SPKI every head must be signed with (from the keeper's certificate: coordinator or site). */
  pinnedSigner?: string;
  /** The latest signed head kept outside the chain (the workspace's anchor file). */
  anchor?: AuditEntry;
  /**
   * Entries after the last signed head are then reported, not failed (a live job's round in
   * progress: the dashboard's view). The CLI never sets it: a verified chain is signed to its end.
   */
  allowUnsignedTail?: boolean;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** An entry's shape (types only; the payload's own schema is checked separately). */
function wellFormed(e: unknown): e is AuditEntry {
  if (typeof e !== "object" || e === null || Array.isArray(e)) return false;
  const x = e as Record<string, unknown>;
  const keys = Object.keys(x).sort().join(",");
  return (
    keys === "actor,at,hash,kind,payload,prev,seq" &&
    Number.isSafeInteger(x.seq) &&
    (x.seq as number) >= 1 &&
    typeof x.at === "string" &&
    !Number.isNaN(Date.parse(x.at)) &&
    typeof x.actor === "string" &&
    Actor.safeParse(x.actor).success &&
    typeof x.kind === "string" &&
    typeof x.payload === "object" &&
    x.payload !== null &&
    !Array.isArray(x.payload) &&
    typeof x.prev === "string" &&
    HEX64.test(x.prev) &&
    typeof x.hash === "string" &&
    HEX64.test(x.hash)
  );
}

class Verifier {
  private readonly keys = new Map<string, string>();
  private readonly signers = new Set<string>();
  private prevHash = GENESIS_PREV;
  private signedThrough = 0;
  private head: AuditEntry | null = null;
  private readonly bySeq = new Map<number, string>();

  constructor(private readonly o: VerifyOptions) {}

  /** Check one entry in chain order (position = expected seq); a problem, or null. */
  step(e: AuditEntry, expected: number, seqsAhead: Set<number>): ChainProblem | null {
    if (e.seq !== expected) {
      if (e.seq < expected || seqsAhead.has(expected))
        return {
          seq: e.seq,
          kind: "reordered",
          message: `seq ${e.seq} is out of order (seq ${expected} was due)`,
        };
      return {
        seq: expected,
        kind: "removed",
        message: `seq ${expected} is missing: the chain jumps from ${expected - 1} to ${e.seq}`,
      };
    }
    const { hash, ...body } = e;
    if (entryHash(body) !== hash)
      return {
        seq: e.seq,
        kind: "edited",
        message: `seq ${e.seq} was edited: its content does not match its hash`,
      };
    if (e.prev !== this.prevHash)
      return expected === 1
        ? {
            seq: 1,
            kind: "removed",
            message: "seq 1 does not start a chain (entries before it were removed)",
          }
        : {
            seq: expected - 1,
            kind: "edited",
            message: `seq ${expected - 1} was edited and re-hashed: seq ${e.seq} links to another hash`,
          };
    if (!isAuditKind(e.kind) || !AUDIT_KINDS[e.kind].safeParse(e.payload).success)
      return {
        seq: e.seq,
        kind: "invalid_payload",
        message: `seq ${e.seq}: the payload is not one its kind allows (ids, hashes, numbers, enums)`,
      };
    const problem = this.kindRules(e);
    if (problem) return problem;
    this.prevHash = e.hash;
    this.head = e;
    this.bySeq.set(e.seq, e.hash);
    return null;
  }

  private kindRules(e: AuditEntry): ChainProblem | null {
    const p = e.payload;
    if (e.kind === "chain_opened" && e.seq !== 1)
      return { seq: e.seq, kind: "reordered", message: `seq ${e.seq}: a chain is opened only at seq 1` };
    if ((e.kind === "chain_opened" || e.kind === "signer_added") && typeof p.signer_key === "string")
      this.keys.set(keySha256(p.signer_key), p.signer_key);
    if (e.kind !== "head_signed") return null;
    const forged = (why: string): ChainProblem => ({
      seq: e.seq,
      kind: "forged_signature",
      message: `seq ${e.seq}: the head signature ${why}`,
    });
    if (p.head_seq !== e.seq - 1 || p.head_sha256 !== this.prevHash)
      return forged("names another head than the entry before it (entries before it were rewritten)");
    const key = this.keys.get(String(p.signer_sha256));
    if (!key) return forged("is by a key the chain never declared");
    if (!headSignatureValid(key, e.seq - 1, this.prevHash, String(p.signature)))
      return forged("does not verify with the chain's key");
    if (this.o.pinnedSigner && p.signer_sha256 !== this.o.pinnedSigner)
      return {
        seq: e.seq,
        kind: "signer_not_pinned",
        message: `seq ${e.seq}: signed by key sha256:${String(p.signer_sha256).slice(0, 16)}..., not the pinned key (--cert)`,
      };
    this.signers.add(String(p.signer_sha256));
    this.signedThrough = e.seq;
    return null;
  }

  finish(count: number): ChainVerdict {
    const verdict: ChainVerdict = {
      intact: true,
      entries: count,
      head: this.head ? { seq: this.head.seq, hash: this.head.hash } : null,
      signedThrough: this.signedThrough,
      signers: [...this.signers],
    };
    const fail = (problem: ChainProblem): ChainVerdict => ({ ...verdict, intact: false, problem });
    if (!this.head) return fail({ seq: 1, kind: "empty", message: "the chain has no entries" });
    const last = this.head.seq;
    const anchor = this.o.anchor;
    if (anchor && (anchor.seq > last || this.bySeq.get(anchor.seq) !== anchor.hash))
      return fail(
        anchor.seq > last
          ? {
              seq: last + 1,
              kind: "truncated",
              message: `the chain ends at seq ${last} but its signed head (the anchor) is seq ${anchor.seq}: entries from ${last + 1} were removed`,
            }
          : {
              seq: anchor.seq,
              kind: "edited",
              message: `seq ${anchor.seq} is not the signed head the anchor holds`,
            },
      );
    if (this.o.pinnedSigner && this.signedThrough === 0)
      return fail({
        seq: 1,
        kind: "signer_not_pinned",
        message: "no head is signed by the pinned key (--cert)",
      });
    if (this.keys.size > 0 && this.signedThrough < last && !this.o.allowUnsignedTail)
      return fail({
        seq: this.signedThrough + 1,
        kind: "unsigned_tail",
        message: `seq ${this.signedThrough + 1} to ${last} are not covered by a signed head (a truncated or rewritten tail, or a round still running)`,
      });
    return verdict;
  }
}

/**
 * Recompute a chain: every entry's hash, its link to the one before, its payload's schema, every
 * head signature (with the key the chain declared, or a pinned one), the anchor, and that a signed
 * chain is signed to its end. Names the first bad entry by sequence number.
 */
export function verifyChain(entries: readonly unknown[], o: VerifyOptions = {}): ChainVerdict {
  const v = new Verifier(o);
  const ahead = new Set<number>();
  for (const e of entries) if (wellFormed(e)) ahead.add(e.seq);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const expected = i + 1;
    if (!wellFormed(e))
      return {
        ...v.finish(i),
        intact: false,
        problem: {
          seq: expected,
          kind: "malformed",
          message: `entry ${expected} (line ${expected}) is not an audit entry (cut short or not the chain's format)`,
        },
      };
    ahead.delete(e.seq);
    const problem = v.step(e, expected, ahead);
    if (problem) return { ...v.finish(i), intact: false, problem };
  }
  return v.finish(entries.length);
}
