export { AuditChain, readChain, migrateAudit, type AuditChainOptions } from "./chain.js";
export { HeadSigner, canonicalJson, entryHash, pemKeySha256, type AuditEntry } from "./entry.js";
export { AuditError, type AuditErrorCode } from "./errors.js";
export { AUDIT_KINDS, checkPayload, type AuditKind, type AuditPayload } from "./kinds.js";
export { AUDIT_MIGRATIONS } from "./migrations.js";
export { entryLine, parseJsonl } from "./jsonl.js";
export { verifyChain, type ChainVerdict, type ChainProblem, type VerifyOptions } from "./verify.js";
