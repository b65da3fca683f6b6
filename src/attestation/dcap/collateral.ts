import { z } from "zod";
import { ValidationError } from "../../errors.js";
import { parseContract } from "../../schemas/contract.js";
import { rawJsonMember } from "./raw-json.js";

const MAX_DOCUMENT = 1 << 20;
const hexSignature = z
  .string()
  .regex(/^[0-9a-fA-F]{128}$/, "must be a 64-byte ECDSA P-256 r||s signature in hex");
const hexDer = z
  .string()
  .min(2)
  .max(2 * MAX_DOCUMENT)
  .regex(/^(?:[0-9a-fA-F]{2})+$/, "must be DER bytes in hex");
const pem = z.string().min(1).max(MAX_DOCUMENT).includes("-----BEGIN CERTIFICATE-----", {
  message: "must be a PEM certificate chain",
});
const jsonText = z.string().min(2).max(MAX_DOCUMENT);

/**
 * Verification collateral for one DCAP quote, in the JSON form used by Phala's dcap-qvl
 * (`QuoteCollateralV3`) and fetched from Intel PCS or a PCCS:
 * - `tcb_info` / `qe_identity`: the exact text of the signed `tcbInfo` / `enclaveIdentity`
 *   object as served (the signature is over these bytes, never a re-serialisation);
 * - `*_signature`: Intel's ECDSA P-256 signature over that text, hex r||s;
 * - `*_issuer_chain`: PEM chain of the signer up to the Intel SGX Root CA;
 * - `pck_crl` (issued by the PCK Platform/Processor CA) and `root_ca_crl`: DER in hex.
 */
export const DcapCollateralSchema = z
  .object({
    tcb_info: jsonText,
    tcb_info_signature: hexSignature,
    tcb_info_issuer_chain: pem,
    qe_identity: jsonText,
    qe_identity_signature: hexSignature,
    qe_identity_issuer_chain: pem,
    pck_crl: hexDer,
    pck_crl_issuer_chain: pem,
    root_ca_crl: hexDer,
    /** Newer dcap-qvl versions carry the PCK chain here too; the quote's own chain is what we verify. */
    pck_certificate_chain: z.string().max(MAX_DOCUMENT).optional(),
  })
  .strict();
export type DcapCollateral = z.output<typeof DcapCollateralSchema>;

export function parseDcapCollateral(input: unknown): DcapCollateral {
  return parseContract(DcapCollateralSchema, input, "DCAP collateral");
}

/**
 * Builds DcapCollateral from Intel PCS responses as they arrive over HTTP: the TCB info and
 * QE identity response bodies (`{"tcbInfo":{...},"signature":"..."}`), the issuer chains from
 * the `TCB-Info-Issuer-Chain` / `SGX-Enclave-Identity-Issuer-Chain` / `SGX-PCK-CRL-Issuer-Chain`
 * headers (URL-decoded PEM), and the CRLs as DER.
 */
export function dcapCollateralFromPcs(pcs: {
  tcbInfoResponse: string;
  tcbInfoIssuerChain: string;
  qeIdentityResponse: string;
  qeIdentityIssuerChain: string;
  pckCrl: Uint8Array;
  pckCrlIssuerChain: string;
  rootCaCrl: Uint8Array;
}): DcapCollateral {
  const signatureOf = (body: string, what: string): string => {
    const sig = (JSON.parse(body) as { signature?: unknown }).signature;
    if (typeof sig !== "string")
      throw new ValidationError(what, [{ path: "signature", rule: "must be a string" }]);
    return sig;
  };
  return parseDcapCollateral({
    tcb_info: rawJsonMember(pcs.tcbInfoResponse, "tcbInfo", "TCB info response"),
    tcb_info_signature: signatureOf(pcs.tcbInfoResponse, "TCB info response"),
    tcb_info_issuer_chain: pcs.tcbInfoIssuerChain,
    qe_identity: rawJsonMember(pcs.qeIdentityResponse, "enclaveIdentity", "QE identity response"),
    qe_identity_signature: signatureOf(pcs.qeIdentityResponse, "QE identity response"),
    qe_identity_issuer_chain: pcs.qeIdentityIssuerChain,
    pck_crl: Buffer.from(pcs.pckCrl).toString("hex"),
    pck_crl_issuer_chain: pcs.pckCrlIssuerChain,
    root_ca_crl: Buffer.from(pcs.rootCaCrl).toString("hex"),
  });
}
