import { createHash } from "node:crypto";
import { EnclaveError } from "../../errors.js";
import {
  describeChainFailure,
  pemToDerList,
  verifyCertificateChain,
  verifyEcdsaRaw,
  type ParsedCertificate,
} from "../pki/index.js";
import { checkCrlIssuedBy, parseCrl, type ParsedCrl } from "../pki/crl.js";
import type { DcapCollateral } from "./collateral.js";
import { INTEL_SGX_ROOT_CA_SHA256, intelSgxRootCa } from "./intel-root.js";
import { parseQeIdentity, parseTcbInfo, type QeIdentity, type TcbInfo } from "./pcs-documents.js";

/** A result, or the typed error message explaining why there is none (never data values). */
export type Attempt<T> = { ok: true; value: T } | { ok: false; detail: string };

/**
 * Everything that depends only on the collateral and the validation time: issuer chains, the
 * signatures over TCB info and QE identity, CRL parsing and the root CA CRL's own validity.
 * Quote-dependent checks (which CA issued this PCK certificate, is it revoked, TCB matching)
 * build on these.
 */
export interface CollateralVerdicts {
  /** The TCB signing certificate whose key signed the TCB info text. */
  tcbInfoSigner: Attempt<ParsedCertificate>;
  qeIdentitySigner: Attempt<ParsedCertificate>;
  tcbInfo: Attempt<TcbInfo>;
  qeIdentity: Attempt<QeIdentity>;
  /** The PCK CA certificate at the head of the PCK CRL issuer chain, verified to the root. */
  pckCrlIssuer: Attempt<ParsedCertificate>;
  pckCrl: Attempt<ParsedCrl>;
  /** The root CA CRL, checked against the pinned root at the validation time. */
  rootCaCrl: Attempt<ParsedCrl>;
}

/**
 * Chains are pinned by the root's fingerprint: Intel's PCK chains (certification data type 5)
 * and PCS issuer chains always carry the root, which must then be byte-identical to the pin.
 */
export const PINNED_INTEL_ROOT = [INTEL_SGX_ROOT_CA_SHA256];
const TCB_SIGNING_CN = "Intel SGX TCB Signing";

function attempt<T>(fn: () => Attempt<T>): Attempt<T> {
  try {
    return fn();
  } catch (error) {
    return { ok: false, detail: error instanceof EnclaveError ? error.message : "could not be evaluated" };
  }
}

/*
 * A coordinator admits many agents of the same platform family with the same collateral, and
 * these verdicts are a pure function of (collateral bytes, validation time). They are memoised
 * under a SHA-256 of exactly those inputs, so a changed byte or instant is always re-verified.
 */
const MEMO_SIZE = 16;
const memo = new Map<string, CollateralVerdicts>();

export function collateralVerdicts(collateral: DcapCollateral, at: Date): CollateralVerdicts {
  const hash = createHash("sha256").update(String(at.getTime()));
  for (const key of Object.keys(collateral).sort()) {
    const value = collateral[key as keyof DcapCollateral] ?? "";
    hash.update(`\0${key}\0${value.length}\0`).update(value);
  }
  const key = hash.digest("hex");
  const hit = memo.get(key);
  if (hit) {
    memo.delete(key);
    memo.set(key, hit); // most recently used last
    return hit;
  }
  const verdicts = computeVerdicts(collateral, at);
  memo.set(key, verdicts);
  if (memo.size > MEMO_SIZE) memo.delete(memo.keys().next().value!);
  return verdicts;
}

function computeVerdicts(collateral: DcapCollateral, at: Date): CollateralVerdicts {
  const root = intelSgxRootCa();
  return {
    tcbInfoSigner: attempt(() =>
      signerOf(collateral.tcb_info, collateral.tcb_info_signature, collateral.tcb_info_issuer_chain, at),
    ),
    qeIdentitySigner: attempt(() =>
      signerOf(
        collateral.qe_identity,
        collateral.qe_identity_signature,
        collateral.qe_identity_issuer_chain,
        at,
      ),
    ),
    tcbInfo: attempt(() => ({ ok: true, value: parseTcbInfo(collateral.tcb_info) })),
    qeIdentity: attempt(() => ({ ok: true, value: parseQeIdentity(collateral.qe_identity) })),
    pckCrlIssuer: attempt(() => {
      const chain = verifyCertificateChain({
        chain: pemToDerList(collateral.pck_crl_issuer_chain),
        trustedRoots: PINNED_INTEL_ROOT,
        at,
      });
      if (!chain.ok)
        return { ok: false, detail: `PCK CRL issuer chain: ${describeChainFailure(chain.failure)}` };
      if (chain.path.length !== 2)
        return { ok: false, detail: "PCK CRL issuer chain must be a PCK CA and the root" };
      return { ok: true, value: chain.leaf };
    }),
    pckCrl: attempt(() => ({ ok: true, value: parseCrl(Buffer.from(collateral.pck_crl, "hex")) })),
    rootCaCrl: attempt(() => {
      const crl = parseCrl(Buffer.from(collateral.root_ca_crl, "hex"));
      const valid = checkCrlIssuedBy(crl, root, at);
      return valid.ok ? { ok: true, value: crl } : { ok: false, detail: `root CA CRL: ${valid.detail}` };
    }),
  };
}

/**
 * A collateral document signed by Intel: the issuer chain must lead from an "Intel SGX TCB
 * Signing" certificate directly to the pinned root at `at`, and its key must sign the exact
 * document text. Requiring that signer matters: any Intel-issued leaf (e.g. a platform's own PCK
 * certificate) also chains to the root, but only the TCB signing key may vouch for collateral.
 */
function signerOf(
  text: string,
  signatureHex: string,
  issuerChainPem: string,
  at: Date,
): Attempt<ParsedCertificate> {
  const chain = verifyCertificateChain({
    chain: pemToDerList(issuerChainPem),
    trustedRoots: PINNED_INTEL_ROOT,
    at,
  });
  if (!chain.ok) return { ok: false, detail: `issuer chain: ${describeChainFailure(chain.failure)}` };
  if (chain.path.length !== 2 || chain.leaf.subjectCommonName !== TCB_SIGNING_CN) {
    return { ok: false, detail: "signer is not an Intel SGX TCB Signing certificate issued by the root" };
  }
  const ok = verifyEcdsaRaw({
    publicKey: chain.leaf.publicKey,
    hash: "sha256",
    data: Buffer.from(text, "utf8"),
    signature: Buffer.from(signatureHex, "hex"),
  });
  if (!ok)
    return { ok: false, detail: "signature over the document text does not verify with the TCB signing key" };
  return { ok: true, value: chain.leaf };
}
