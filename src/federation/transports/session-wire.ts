import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { CertificateRole, Evidence } from "../../attestation/evidence.js";
import type { EvidenceKind } from "../../attestation/types.js";
import {
  ModelChunkSchema,
  type EvidenceReply,
  type ModelChunk as WireChunk,
  type SessionRequestSchema,
  type SessionResponseSchema,
} from "../../gen/agent/v1/session_pb.js";
import { ProtocolError } from "../errors.js";
import type { ModelChunk } from "../model-transfer.js";

/** What either end of agent.v1 Session sends. */
export type RequestInit = MessageInitShape<typeof SessionRequestSchema>;
export type ResponseInit = MessageInitShape<typeof SessionResponseSchema>;

const KINDS = new Set<EvidenceKind>(["snp", "tdx", "sgx", "nitro", "nvidia", "simulated", "insecure"]);
const ROLES = new Set<CertificateRole>(["VCEK", "VLEK", "ASK", "ARK", "CRL", "GPU_CHAIN", "OTHER"]);
const MAX_EVIDENCE_BYTES = 1 << 20;
const MAX_CERTIFICATES = 16;

/** A ModelChunk as agent.v1.ModelChunk. */
export function chunkToWire(c: ModelChunk): WireChunk {
  return create(ModelChunkSchema, {
    transferId: c.transferId,
    part: c.part,
    offset: BigInt(c.offset),
    data: c.data,
    last: c.last,
    sha256: c.sha256 ?? "",
    totalBytes: BigInt(c.totalBytes ?? 0),
  });
}

/** agent.v1.ModelChunk as a ModelChunk; offsets beyond 2^53 are refused. */
export function chunkFromWire(w: WireChunk): ModelChunk {
  if (w.offset > BigInt(Number.MAX_SAFE_INTEGER) || w.totalBytes > BigInt(Number.MAX_SAFE_INTEGER))
    throw new ProtocolError("TRANSFER_INVALID", "model transfer refused: offset or size out of range");
  return {
    transferId: w.transferId,
    part: w.part,
    offset: Number(w.offset),
    data: w.data,
    last: w.last,
    ...(w.totalBytes > 0n ? { totalBytes: Number(w.totalBytes) } : {}),
    ...(w.sha256 ? { sha256: w.sha256 } : {}),
  };
}

/** Evidence as an EvidenceReply's fields. */
export function evidenceToWire(e: Evidence): Pick<EvidenceReply, "kind" | "evidence"> & {
  certificates: { role: string; der: Uint8Array; guid: string }[];
} {
  return {
    kind: e.kind,
    evidence: e.bytes,
    certificates: (e.certificates ?? []).map((c) => ({ role: c.role, der: c.der, guid: c.guid ?? "" })),
  };
}

/**
 * An EvidenceReply as Evidence for the appraisal. Kind and sizes are checked here; the label
 * follows the kind (the verifiers re-derive kind and label from the bytes, never trusting either).
 */
export function evidenceFromWire(r: EvidenceReply): Evidence {
  if (!KINDS.has(r.kind as EvidenceKind))
    throw new ProtocolError("SESSION_INVALID", "evidence.kind: not an evidence kind");
  if (r.evidence.length === 0 || r.evidence.length > MAX_EVIDENCE_BYTES)
    throw new ProtocolError("SESSION_INVALID", `evidence.evidence: must be 1..${MAX_EVIDENCE_BYTES} bytes`);
  if (r.certificates.length > MAX_CERTIFICATES)
    throw new ProtocolError("SESSION_INVALID", `evidence.certificates: at most ${MAX_CERTIFICATES}`);
  const certificates = r.certificates.map((c, i) => {
    if (!ROLES.has(c.role as CertificateRole))
      throw new ProtocolError("SESSION_INVALID", `evidence.certificates[${i}].role: not a certificate role`);
    return { role: c.role as CertificateRole, der: c.der, ...(c.guid ? { guid: c.guid } : {}) };
  });
  const kind = r.kind as EvidenceKind;
  return {
    kind,
    bytes: r.evidence,
    ...(certificates.length ? { certificates } : {}),
    collectedAt: new Date(),
    label: kind === "simulated" ? "SIMULATED" : kind === "insecure" ? "INSECURE" : "HARDWARE",
  };
}
