import { createPublicKey, verify as verifySignature, type KeyObject } from "node:crypto";
import { allPassed, type CheckResult } from "./checks.js";
import { AttestationError, EvidenceFormatError, type SoftwareVerification } from "./types.js";

/**
 * Software-signed evidence for development (`--simulation`) and for the explicit no-protection mode
 * (`--insecure`). Fixed-size binary, all integers big-endian, format version 1:
 *
 * | offset | size | field                                                        |
 * |-------:|-----:|--------------------------------------------------------------|
 * |      0 |    8 | magic, ASCII "CRSN-EVD"                                      |
 * |      8 |    2 | format version = 1                                           |
 * |     10 |    1 | label: 1 = SIMULATED, 2 = INSECURE                           |
 * |     11 |    1 | flags, reserved = 0                                          |
 * |     12 |    8 | timestamp, milliseconds since the Unix epoch                  |
 * |     20 |   48 | measurement: SHA-384 of the running build                    |
 * |     68 |   64 | report data (the nonce/public-key binding)                   |
 * |    132 |   32 | node public key, raw Ed25519                                 |
 * |    164 |   64 | Ed25519 signature by the node key over bytes 0..163          |
 *
 * The label sits inside the signed bytes, so simulated evidence cannot be relabelled as anything
 * else without the node key, and a verifier tells the kinds apart from the bytes alone. The node key
 * signs its own evidence: this proves possession of the key, never anything about hardware.
 */
export const SIMULATED_MAGIC = Buffer.from("CRSN-EVD", "ascii");
export const SIMULATED_FORMAT_VERSION = 1;
export const SIMULATED_EVIDENCE_BYTES = 228;
const SIGNED_BYTES = 164;

export type SoftwareLabel = "SIMULATED" | "INSECURE";
const LABEL_CODE: Record<SoftwareLabel, number> = { SIMULATED: 1, INSECURE: 2 };

export interface SoftwareEvidenceBody {
  label: SoftwareLabel;
  timestamp: Date;
  measurement: Uint8Array; // 48
  reportData: Uint8Array; // 64
  nodePublicKey: Uint8Array; // 32, raw Ed25519
}

export interface ParsedSoftwareEvidence extends SoftwareEvidenceBody {
  version: number;
  signature: Uint8Array;
  signed: Uint8Array;
}

function kindOf(label: SoftwareLabel): "simulated" | "insecure" {
  return label === "SIMULATED" ? "simulated" : "insecure";
}

/** The raw 32-byte public key of an Ed25519 KeyObject. */
export function rawEd25519PublicKey(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: "jwk" }) as { crv?: string; x?: string };
  if (jwk.crv !== "Ed25519" || !jwk.x)
    throw new AttestationError("simulated.key", "not an Ed25519 public key");
  return new Uint8Array(Buffer.from(jwk.x, "base64url"));
}

/**
 * Ed25519 public keys of small order (libsodium's blocklist: the identity, the points of order 2, 4
 * and 8, and non-canonical encodings of 0 and 1; compared without the sign bit). With such a key a
 * "signature" can verify for every message, so the key proves nothing: refuse it.
 */
const SMALL_ORDER_KEYS = [
  "0000000000000000000000000000000000000000000000000000000000000000",
  "0100000000000000000000000000000000000000000000000000000000000000",
  "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
  "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
  "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
].map((h) => Buffer.from(h, "hex"));

export function isSmallOrderEd25519Key(raw: Uint8Array): boolean {
  if (raw.length !== 32) return true;
  const k = Buffer.from(raw);
  k[31] &= 0x7f;
  return SMALL_ORDER_KEYS.some((bad) => bad.equals(k));
}

function ed25519FromRaw(raw: Uint8Array): KeyObject {
  return createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw).toString("base64url") },
    format: "jwk",
  });
}

/** Serialise the signed part; `sign` receives exactly the bytes a verifier checks. */
export function encodeSoftwareEvidence(
  body: SoftwareEvidenceBody,
  sign: (signed: Uint8Array) => Uint8Array,
): Uint8Array {
  const fields: [string, Uint8Array, number][] = [
    ["measurement", body.measurement, 48],
    ["reportData", body.reportData, 64],
    ["nodePublicKey", body.nodePublicKey, 32],
  ];
  for (const [name, value, size] of fields) {
    if (!(value instanceof Uint8Array) || value.length !== size) {
      throw new AttestationError("simulated.encode", `${name} must be ${size} bytes`);
    }
  }
  const ms = body.timestamp.getTime();
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw new AttestationError("simulated.encode", "timestamp must be a valid date");
  const out = Buffer.alloc(SIMULATED_EVIDENCE_BYTES);
  SIMULATED_MAGIC.copy(out, 0);
  out.writeUInt16BE(SIMULATED_FORMAT_VERSION, 8);
  out.writeUInt8(LABEL_CODE[body.label], 10);
  out.writeUInt8(0, 11);
  out.writeBigUInt64BE(BigInt(ms), 12);
  out.set(body.measurement, 20);
  out.set(body.reportData, 68);
  out.set(body.nodePublicKey, 132);
  const signature = sign(out.subarray(0, SIGNED_BYTES));
  if (!(signature instanceof Uint8Array) || signature.length !== 64) {
    throw new AttestationError("simulated.encode", "signature must be 64 bytes");
  }
  out.set(signature, SIGNED_BYTES);
  return new Uint8Array(out);
}

/** True when the bytes start with this format's magic (used by kind detection). */
export function hasSoftwareMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && Buffer.from(bytes.buffer, bytes.byteOffset, 8).equals(SIMULATED_MAGIC);
}

/** Parse (no signature check). Throws EvidenceFormatError naming the field. */
export function parseSoftwareEvidence(bytes: Uint8Array): ParsedSoftwareEvidence {
  if (!(bytes instanceof Uint8Array)) throw new EvidenceFormatError("simulated", "must be bytes");
  const guess = bytes.length > 10 && bytes[10] === 2 ? "insecure" : "simulated";
  if (bytes.length !== SIMULATED_EVIDENCE_BYTES) {
    throw new EvidenceFormatError(guess, `must be ${SIMULATED_EVIDENCE_BYTES} bytes, got ${bytes.length}`);
  }
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (!b.subarray(0, 8).equals(SIMULATED_MAGIC)) throw new EvidenceFormatError(guess, "magic: not CRSN-EVD");
  const version = b.readUInt16BE(8);
  if (version !== SIMULATED_FORMAT_VERSION) {
    throw new EvidenceFormatError(guess, `version: unsupported format version ${version}`);
  }
  const code = b.readUInt8(10);
  const label = code === 1 ? "SIMULATED" : code === 2 ? "INSECURE" : undefined;
  if (!label) throw new EvidenceFormatError(guess, `label: unknown label code ${code}`);
  if (b.readUInt8(11) !== 0) throw new EvidenceFormatError(kindOf(label), "flags: reserved bits set");
  const ms = b.readBigUInt64BE(12);
  if (ms > BigInt(8.64e15)) throw new EvidenceFormatError(kindOf(label), "timestamp: out of range");
  const copy = (o: number, n: number) => new Uint8Array(b.subarray(o, o + n));
  return {
    version,
    label,
    timestamp: new Date(Number(ms)),
    measurement: copy(20, 48),
    reportData: copy(68, 64),
    nodePublicKey: copy(132, 32),
    signature: copy(SIGNED_BYTES, 64),
    signed: copy(0, SIGNED_BYTES),
  };
}

/** Simulated or insecure evidence's claims (bytes as hex). */
export interface SoftwareClaims {
  label: SoftwareLabel;
  format_version: number;
  timestamp: string;
  measurement: string;
  report_data: string;
  node_public_key: string;
  signature: string;
}

/**
 * Verify simulated or insecure evidence: format and the node key's signature. The checks say
 * plainly that no hardware stands behind it; the trust policy decides whether that is acceptable.
 */
export function verifySoftwareEvidence(bytes: Uint8Array): SoftwareVerification {
  const ev = parseSoftwareEvidence(bytes);
  const kind = kindOf(ev.label);
  const checks: CheckResult[] = [
    {
      name: "format",
      status: "pass",
      detail: `CRSN-EVD v${ev.version}, label ${ev.label} (inside the signed bytes)`,
    },
  ];
  let sigOk = false;
  const weakKey = isSmallOrderEd25519Key(ev.nodePublicKey);
  if (!weakKey) {
    try {
      sigOk = verifySignature(null, ev.signed, ed25519FromRaw(ev.nodePublicKey), ev.signature);
    } catch {
      sigOk = false;
    }
  }
  checks.push({
    name: "signature",
    status: sigOk ? "pass" : "fail",
    detail: weakKey
      ? "the embedded node key is a small-order Ed25519 point, for which signatures prove nothing"
      : sigOk
        ? "Ed25519 signature by the embedded node key verifies"
        : "Ed25519 signature by the embedded node key does not verify (tampered or corrupt)",
  });
  checks.push({
    name: "hardware_root_of_trust",
    status: "skipped",
    detail:
      kind === "simulated"
        ? "simulated evidence: signed by a software node key, no TEE vouches for the measurement"
        : "insecure evidence: the node declares it runs without any hardware protection",
  });
  const measurement = Buffer.from(ev.measurement).toString("hex");
  const signature = Buffer.from(ev.signature).toString("hex");
  return {
    kind,
    trusted: allPassed(checks),
    checks,
    claims: {
      label: ev.label,
      format_version: ev.version,
      timestamp: ev.timestamp.toISOString(),
      measurement,
      report_data: Buffer.from(ev.reportData).toString("hex"),
      node_public_key: Buffer.from(ev.nodePublicKey).toString("hex"),
      signature,
    },
    measurement,
    reportData: ev.reportData,
    debug: false,
    signature,
  };
}
