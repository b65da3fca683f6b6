import { createHash, timingSafeEqual } from "node:crypto";
import { NONCE_BYTES } from "./nonce.js";
import { AttestationError, type EvidenceKind } from "./types.js";

/** Domain separation: these 64 bytes mean "attestation v1 of coreason-enclave", nothing else. */
export const BINDING_DOMAIN = "coreason-enclave/attest/v1";
export const REPORT_DATA_BYTES = 64;

/** The domain of a binding that also carries the isolated runtime's measurement. */
export const RUNTIME_BINDING_DOMAIN = "coreason-enclave/attest/v1+runtime";
export const RUNTIME_MEASUREMENT_BYTES = 32;

/**
 * The 64 bytes an agent asks its TEE to sign: SHA-512(domain || nonce || nodePublicKey), or, for an
 * agent whose tasks run in a microVM, SHA-512(runtime domain || nonce || runtime measurement ||
 * nodePublicKey), so the evidence vouches for the runtime (the SHA-256 of its manifest) as well.
 * The nonce and the measurement are fixed-length (32 bytes each), so the concatenation is
 * unambiguous; the key is whatever encoding the node publishes, taken as given.
 */
export function bindReportData(
  nonce: Uint8Array,
  nodePublicKey: Uint8Array,
  runtimeMeasurement?: Uint8Array,
): Uint8Array {
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) {
    throw new AttestationError("binding", `nonce must be ${NONCE_BYTES} bytes`, "BINDING_INVALID");
  }
  if (!(nodePublicKey instanceof Uint8Array) || nodePublicKey.length === 0 || nodePublicKey.length > 4096) {
    throw new AttestationError("binding", "node public key must be 1..4096 bytes", "BINDING_INVALID");
  }
  if (runtimeMeasurement === undefined)
    return new Uint8Array(
      createHash("sha512").update(BINDING_DOMAIN).update(nonce).update(nodePublicKey).digest(),
    );
  if (
    !(runtimeMeasurement instanceof Uint8Array) ||
    runtimeMeasurement.length !== RUNTIME_MEASUREMENT_BYTES
  ) {
    throw new AttestationError(
      "binding",
      `runtime measurement must be ${RUNTIME_MEASUREMENT_BYTES} bytes`,
      "BINDING_INVALID",
    );
  }
  const h = createHash("sha512")
    .update(RUNTIME_BINDING_DOMAIN)
    .update(nonce)
    .update(runtimeMeasurement)
    .update(nodePublicKey)
    .digest();
  return new Uint8Array(h);
}

/**
 * Where each kind carries the binding, and how many of the 64 bytes fit:
 * - snp: REPORT_DATA (64 bytes, offset 0x50 of the report);
 * - tdx: REPORTDATA of the TD report (64 bytes);
 * - sgx: REPORTDATA of the enclave report (64 bytes);
 * - nitro: the attestation document's `nonce` field (64 bytes; the NSM accepts up to 512);
 * - nvidia: the 32-byte nonce of the SPDM GET_MEASUREMENTS request = the first 32 bytes;
 * - simulated / insecure: the report_data field of the signed payload (64 bytes).
 */
export const BINDING_FIELD: Record<EvidenceKind, { field: string; bytes: number }> = {
  snp: { field: "REPORT_DATA", bytes: 64 },
  tdx: { field: "REPORTDATA", bytes: 64 },
  sgx: { field: "REPORTDATA", bytes: 64 },
  nitro: { field: "nonce", bytes: 64 },
  nvidia: { field: "SPDM requester nonce", bytes: 32 },
  simulated: { field: "report_data", bytes: 64 },
  insecure: { field: "report_data", bytes: 64 },
};

/** The part of the 64-byte binding a kind can carry (the whole of it, or NVIDIA's 32-byte prefix). */
export function expectedFieldFor(kind: EvidenceKind, reportData: Uint8Array): Uint8Array {
  if (reportData.length !== REPORT_DATA_BYTES) {
    throw new AttestationError(
      "binding",
      `expected report data must be ${REPORT_DATA_BYTES} bytes`,
      "BINDING_INVALID",
    );
  }
  return reportData.subarray(0, BINDING_FIELD[kind].bytes);
}

/** Constant-time comparison of the evidence's binding field with the expected binding. */
export function reportDataMatches(
  kind: EvidenceKind,
  actual: Uint8Array | undefined,
  expected64: Uint8Array,
): boolean {
  if (!actual) return false;
  const want = expectedFieldFor(kind, expected64);
  if (actual.length !== want.length) return false;
  return timingSafeEqual(actual, want);
}
