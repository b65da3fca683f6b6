import { verifySgxQuote, verifyTdxQuote, type DcapCollateral } from "./dcap/index.js";
import { verifyNitroDocument } from "./nitro/index.js";
import { verifyNvidiaGpuEvidence } from "./nvidia/index.js";
import { derToPem, parseCertificate } from "./pki/index.js";
import { verifySoftwareEvidence } from "./simulated-evidence.js";
import { verifySnpReport, verifySnpReportWithoutVek } from "./snp/index.js";
import type { EvidenceKind, VerificationResult } from "./types.js";

/** What a kind's verifier receives besides the evidence bytes. */
export interface VerifyContext {
  at: Date;
  /** DER certificates: SNP VCEK/VLEK (+ ASK/ARK), or the NVIDIA GPU chain (leaf first). */
  certificates: Uint8Array[];
  /** Intel collateral (dcap-qvl QuoteCollateralV3 JSON) for SGX/TDX. */
  collateral?: unknown;
}

/** One kind's verifier: it authenticates the bytes and returns typed claims; it reads no policy. */
export type KindVerifier = (bytes: Uint8Array, ctx: VerifyContext) => VerificationResult;

/**
 * Order SNP certificates as the verifier expects, leaf first: VCEK/VLEK, then ASK/ASVK, then ARK,
 * whatever order a certificate table or the command line gave them in (stable otherwise).
 */
function snpLeafFirst(certs: Uint8Array[]): Uint8Array[] {
  const rank = (der: Uint8Array) => {
    try {
      const cn = parseCertificate(der).subjectCommonName ?? "";
      if (cn === "SEV-VCEK" || cn === "SEV-VLEK") return 0;
      if (cn.startsWith("ARK-")) return 2;
      return 1;
    } catch {
      return 1;
    }
  };
  return certs
    .map((der, i) => ({ der, i, r: rank(der) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.der);
}

/** Every kind's verifier. */
export const VERIFIERS: Readonly<Record<EvidenceKind, KindVerifier>> = {
  snp: (bytes, ctx) =>
    ctx.certificates.length === 0
      ? verifySnpReportWithoutVek(bytes)
      : verifySnpReport(bytes, { at: ctx.at, certificates: snpLeafFirst(ctx.certificates) }),
  tdx: (bytes, ctx) => verifyTdxQuote(bytes, { at: ctx.at, collateral: ctx.collateral as DcapCollateral }),
  sgx: (bytes, ctx) => verifySgxQuote(bytes, { at: ctx.at, collateral: ctx.collateral as DcapCollateral }),
  nitro: (bytes, ctx) => verifyNitroDocument(bytes, { at: ctx.at }),
  nvidia: (bytes, ctx) =>
    verifyNvidiaGpuEvidence(bytes, ctx.certificates.map((der) => derToPem(der)).join(""), { at: ctx.at }),
  simulated: (bytes) => verifySoftwareEvidence(bytes),
  insecure: (bytes) => verifySoftwareEvidence(bytes),
};
