// Shared X.509 helpers for attestation verifiers (SNP, DCAP, Nitro, NVIDIA).
export { CertificateFormatError, PinnedRootError } from "./errors.js";
export {
  readDerElement,
  readDerExact,
  derChildren,
  expectTag,
  decodeOid,
  decodeInteger,
  decodeSmallUnsigned,
  decodeBoolean,
  decodeBitString,
  decodeString,
  decodeTime,
  DerTag,
  type DerElement,
} from "./der.js";
export { pemToDerList, derToPem } from "./pem.js";
export { pinnedRoot } from "./pinned-root.js";
export {
  parseCertificate,
  findExtension,
  sha256Fingerprint,
  normalizeFingerprint,
  certificateBytes,
  bytesEqual,
  EXTENSION_OID,
  type CertificateInput,
  type CertificateExtension,
  type BasicConstraints,
  type KeyUsage,
  type ParsedCertificate,
} from "./certificate.js";
export {
  parseSignatureAlgorithm,
  verifySignature,
  verifyEcdsaRaw,
  toEcPublicKey,
  publicKeyProblem,
  OID,
  type HashName,
  type SignatureAlgorithm,
} from "./signature.js";
export {
  verifyCertificateChain,
  assertCertificateChain,
  describeChainFailure,
  type TrustedRoot,
  type ChainCheck,
  type ChainFailure,
  type ChainVerification,
  type ChainVerificationOptions,
  type RevocationCheck,
  type RevocationResult,
} from "./chain.js";
