// AWS Nitro Enclaves attestation documents: strict COSE_Sign1/CBOR parsing and verification.
export { parseNitroDocument, MAX_DOCUMENT_BYTES, type NitroDocument } from "./document.js";
export { verifyNitroDocument, type NitroVerifyOptions, type NitroClaims } from "./verify.js";
export {
  parseCoseSign1,
  sigStructure,
  verifyCoseSign1Es384,
  COSE_ALG_ES384,
  type CoseSign1,
} from "./cose-sign1.js";
export { AWS_NITRO_ROOT_G1_PEM, AWS_NITRO_ROOT_G1_SHA256 } from "./aws-root.js";
