import type { TrustPolicy } from "../schemas/trust-policy.js";
import {
  parseSgxQuote,
  parseTdxQuote,
  verifySgxQuote,
  verifyTdxQuote,
  type DcapCollateral,
} from "./dcap/index.js";
import { parseCoseSign1, verifyNitroDocument } from "./nitro/index.js";
import { parseNvidiaEvidence, verifyNvidiaGpuEvidence } from "./nvidia/index.js";
import { derToPem, parseCertificate } from "./pki/index.js";
import { claimAt, hexClaim, numberClaim, type PolicyFacts } from "./policy/facts.js";
import { verifySoftwareEvidence } from "./simulated-evidence.js";
import { verifySnpReport, verifySnpReportWithoutVek } from "./snp/index.js";
import type { EvidenceKind, VerificationResult } from "./types.js";

/** What a kind's verifier receives besides the evidence bytes. */
export interface VerifyContext {
  at: Date;
  policy: TrustPolicy;
  /** DER certificates: SNP VCEK/VLEK (+ ASK/ARK), or the NVIDIA GPU chain (leaf first). */
  certificates: Uint8Array[];
  /** Intel collateral (dcap-qvl QuoteCollateralV3 JSON) for SGX/TDX. */
  collateral?: unknown;
}

/** One kind's entry: its vendor verifier and how the trust policy reads its claims. */
export interface KindVerifier {
  kind: EvidenceKind;
  verify(bytes: Uint8Array, ctx: VerifyContext): VerificationResult;
  facts(result: VerificationResult, bytes: Uint8Array): PolicyFacts;
  /**
   * Vendor checks the appraisal replaces with its own policy checks (measurement allow-lists,
   * report-data binding, age); they are dropped from the result only when they were skipped.
   */
  superseded: readonly string[];
  /** Policy checks the vendor verifier already enforces from the policy we passed it. */
  native: readonly string[];
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

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

const snp: KindVerifier = {
  kind: "snp",
  verify(bytes, ctx) {
    const min = ctx.policy.snp.min_tcb;
    const policy = { allowDebug: ctx.policy.allow_debug, ...(min ? { minTcb: { ...min } } : {}) };
    if (ctx.certificates.length === 0) return verifySnpReportWithoutVek(bytes, { policy });
    return verifySnpReport(bytes, {
      at: ctx.at,
      certificates: snpLeafFirst(ctx.certificates),
      policy,
    });
  },
  facts(result) {
    const c = result.claims;
    const t = claimAt(c, "reportedTcb") as Record<string, unknown> | undefined;
    const sig = claimAt(c, "signature") as { r?: string; s?: string } | undefined;
    return {
      fields: compact({
        measurement: hexClaim(c.measurement),
        host_data: hexClaim(c.hostData),
        family_id: hexClaim(c.familyId),
        image_id: hexClaim(c.imageId),
      }),
      snpTcb: t
        ? {
            bootloader: numberClaim(t.bootloader) ?? 0,
            tee: numberClaim(t.tee) ?? 0,
            snp: numberClaim(t.snp) ?? 0,
            microcode: numberClaim(t.microcode) ?? 0,
            ...(numberClaim(t.fmc) !== undefined ? { fmc: numberClaim(t.fmc) } : {}),
          }
        : undefined,
      snpGuestSvn: numberClaim(c.guestSvn),
      snpVmpl: numberClaim(c.vmpl),
      signature: sig?.r && sig?.s ? sig.r + sig.s : undefined,
    };
  },
  superseded: ["measurement", "host-data", "report-data"],
  native: ["policy.debug", "policy.min_tcb"],
};

function dcapPolicy(policy: TrustPolicy) {
  return {
    acceptedTcbStatuses: policy.accepted_tcb_statuses.filter((s) => s !== "Revoked"),
    allowDebug: policy.allow_debug,
    tdx: policy.tdx.min_tee_tcb_svn ? { minTeeTcbSvn: policy.tdx.min_tee_tcb_svn } : {},
    sgx: policy.sgx.min_isv_svn !== undefined ? { minIsvSvn: policy.sgx.min_isv_svn } : {},
  };
}

const tdx: KindVerifier = {
  kind: "tdx",
  verify(bytes, ctx) {
    return verifyTdxQuote(bytes, {
      at: ctx.at,
      collateral: ctx.collateral as DcapCollateral | undefined,
      policy: dcapPolicy(ctx.policy),
    });
  },
  facts(result, bytes) {
    const c = result.claims;
    const rtmr = Array.isArray(c.rtmr) ? (c.rtmr as unknown[]) : [];
    return {
      fields: compact({
        mrtd: hexClaim(c.mrTd),
        rtmr0: hexClaim(rtmr[0]),
        rtmr1: hexClaim(rtmr[1]),
        rtmr2: hexClaim(rtmr[2]),
        rtmr3: hexClaim(rtmr[3]),
        mrconfigid: hexClaim(c.mrConfigId),
        mrowner: hexClaim(c.mrOwner),
        mrownerconfig: hexClaim(c.mrOwnerConfig),
      }),
      teeTcbSvn: hexClaim(c.teeTcbSvn),
      tcbStatus: typeof c.tcbStatus === "string" ? c.tcbStatus : undefined,
      signature: hex(parseTdxQuote(bytes).signature),
    };
  },
  superseded: ["mrtd", "rtmr", "mrconfigid", "mrowner", "report-data"],
  native: ["policy.debug", "policy.min_tcb", "policy.tcb_status"],
};

const sgx: KindVerifier = {
  kind: "sgx",
  verify(bytes, ctx) {
    return verifySgxQuote(bytes, {
      at: ctx.at,
      collateral: ctx.collateral as DcapCollateral | undefined,
      policy: dcapPolicy(ctx.policy),
    });
  },
  facts(result, bytes) {
    const c = result.claims;
    return {
      fields: compact({ mrenclave: hexClaim(c.mrEnclave), mrsigner: hexClaim(c.mrSigner) }),
      isvSvn: numberClaim(c.isvSvn),
      isvProdId: numberClaim(c.isvProdId),
      tcbStatus: typeof c.tcbStatus === "string" ? c.tcbStatus : undefined,
      signature: hex(parseSgxQuote(bytes).signature),
    };
  },
  superseded: ["mrenclave", "mrsigner", "isv-prod-id", "report-data"],
  native: ["policy.debug", "policy.tcb_status", "policy.min_isv_svn"],
};

const nitro: KindVerifier = {
  kind: "nitro",
  verify(bytes, ctx) {
    return verifyNitroDocument(bytes, { at: ctx.at, policy: { allowDebug: ctx.policy.allow_debug } });
  },
  facts(result, bytes) {
    const c = result.claims;
    const pcrs = (claimAt(c, "pcrs") ?? {}) as Record<string, unknown>;
    const fields: Record<string, string | undefined> = {};
    for (const i of [0, 1, 2, 3, 4, 8]) fields[`pcr${i}`] = hexClaim(pcrs[String(i)]);
    const ms = numberClaim(c.timestampMs);
    return {
      fields: compact(fields),
      signedTime: ms !== undefined ? new Date(ms) : undefined,
      signature: hex(parseCoseSign1(bytes).signature),
    };
  },
  superseded: ["pcr-policy", "nonce", "user-data", "public-key", "freshness"],
  native: ["policy.debug"],
};

const nvidia: KindVerifier = {
  kind: "nvidia",
  verify(bytes, ctx) {
    const pem = ctx.certificates.map((der) => derToPem(der)).join("");
    return verifyNvidiaGpuEvidence(bytes, pem, { at: ctx.at });
  },
  facts(result, bytes) {
    const m = claimAt(result.claims, "measurements");
    const measurements: Record<string, string> = {};
    if (m && typeof m === "object") {
      for (const [k, v] of Object.entries(m as Record<string, unknown>)) {
        const h = hexClaim(v);
        if (h !== undefined) measurements[k] = h;
      }
    }
    return {
      fields: {},
      nvidiaMeasurements: measurements,
      signature: hex(parseNvidiaEvidence(bytes).response.signature),
    };
  },
  superseded: ["nonce", "measurements", "reference-versions", "reference-authenticity", "firmware-versions"],
  native: [],
};

function software(kind: "simulated" | "insecure"): KindVerifier {
  return {
    kind,
    verify: (bytes) => verifySoftwareEvidence(bytes),
    facts(result) {
      const c = result.claims;
      return {
        fields: compact({ measurement: hexClaim(c.measurement) }),
        signedTime: typeof c.timestamp === "string" ? new Date(c.timestamp) : undefined,
        signature: hexClaim(c.signature),
      };
    },
    superseded: [],
    native: [],
  };
}

/** Every kind's verifier. */
export const VERIFIERS: Readonly<Record<EvidenceKind, KindVerifier>> = {
  snp,
  tdx,
  sgx,
  nitro,
  nvidia,
  simulated: software("simulated"),
  insecure: software("insecure"),
};

function compact(o: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}
