import { bytesEqual } from "../pki/index.js";
import type { PckExtensions } from "./pck-extensions.js";
import type { IsvTcbLevel, QeIdentity, TcbInfo, TcbLevel, TdxModuleIdentity } from "./pcs-documents.js";
import type { EnclaveReport, TdReport } from "./report-body.js";

/*
 * TCB level matching and status convergence, following Intel's "Quote Verification Library"
 * rules (TcbLevelCheck, TdxModuleCheck, TDRelaunchCheck, EnclaveReportVerifier) and the PCS TCB
 * Info v3 / Enclave Identity v2 definitions. Levels are taken in the order Intel publishes them
 * (highest first); the first level the platform meets or exceeds decides.
 */

export const TCB_STATUSES = [
  "UpToDate",
  "SWHardeningNeeded",
  "ConfigurationNeeded",
  "ConfigurationAndSWHardeningNeeded",
  "OutOfDate",
  "OutOfDateConfigurationNeeded",
  "TDRelaunchAdvised",
  "TDRelaunchAdvisedConfigurationNeeded",
  "Revoked",
] as const;
export type TcbStatus = (typeof TCB_STATUSES)[number];

export type TcbEvaluation =
  | { ok: true; status: TcbStatus; tcbDate: string; advisoryIds: string[]; notes: string[] }
  | { ok: false; reason: string };

const KNOWN = new Set<string>(TCB_STATUSES);
const asStatus = (s: string): TcbStatus | undefined => (KNOWN.has(s) ? (s as TcbStatus) : undefined);

/** QE identity levels only say UpToDate, OutOfDate or Revoked (QVL treats anything else as OutOfDate). */
export type QeTcbStatus = "UpToDate" | "OutOfDate" | "Revoked";

export type QeIdentityEvaluation =
  { ok: true; status: QeTcbStatus; tcbDate: string; advisoryIds: string[] } | { ok: false; reason: string };

/** Checks the QE report against Intel's QE identity: MISCSELECT, ATTRIBUTES (masked), MRSIGNER, ISVPRODID, ISVSVN level. */
export function evaluateQeIdentity(identity: QeIdentity, qe: EnclaveReport): QeIdentityEvaluation {
  if (!bytesEqual(and(qe.miscSelect, identity.miscSelectMask), identity.miscSelect)) {
    return { ok: false, reason: "QE MISCSELECT (masked) does not match the QE identity" };
  }
  if (!bytesEqual(and(qe.attributes, identity.attributesMask), identity.attributes)) {
    return { ok: false, reason: "QE ATTRIBUTES (masked) do not match the QE identity" };
  }
  if (!bytesEqual(qe.mrSigner, identity.mrSigner)) {
    return { ok: false, reason: "QE MRSIGNER does not match the QE identity" };
  }
  if (qe.isvProdId !== identity.isvProdId) {
    return { ok: false, reason: "QE ISVPRODID does not match the QE identity" };
  }
  const level = firstIsvLevel(identity.tcbLevels, qe.isvSvn);
  if (!level) return { ok: false, reason: "QE ISVSVN is below every QE identity TCB level" };
  const status: QeTcbStatus =
    level.tcbStatus === "UpToDate" ? "UpToDate" : level.tcbStatus === "Revoked" ? "Revoked" : "OutOfDate";
  return { ok: true, status, tcbDate: level.tcbDate, advisoryIds: level.advisoryIds };
}

/** TDX-specific inputs to TCB evaluation, from the TD report body. */
export interface TdxTcbInputs {
  teeTcbSvn: Uint8Array;
  /** TD 1.5 bodies only: TEE_TCB_SVN2, used for the TD-relaunch advice. */
  teeTcbSvn2?: Uint8Array;
}

/**
 * Platform TCB status from TCB info, the PCK certificate's SGX TCB and (TDX) TEE_TCB_SVN,
 * converged with the TDX module identity status and the QE identity status.
 */
export function evaluatePlatformTcb(
  info: TcbInfo,
  pck: PckExtensions,
  qe: QeTcbStatus,
  tdx?: TdxTcbInputs,
): TcbEvaluation {
  let sgxLevel: TcbLevel | undefined;
  let tdxLevel: TcbLevel | undefined;
  for (const level of info.tcbLevels) {
    const sgxOk =
      level.sgxComponents.every((svn, i) => pck.tcbComponents[i] >= svn) && pck.pceSvn >= level.pceSvn;
    if (!sgxOk) continue;
    sgxLevel ??= level;
    if (!tdx) break;
    if (tdxComponentsMet(tdx.teeTcbSvn, level)) {
      tdxLevel = level;
      break;
    }
  }
  if (!sgxLevel)
    return { ok: false, reason: "no TCB level matches the PCK certificate's SGX TCB (TCB not supported)" };
  const sgxStatus = asStatus(sgxLevel.tcbStatus);
  if (!sgxStatus) return { ok: false, reason: "matched TCB level has an unrecognised status" };
  if (!tdx) {
    const converged = convergeWithQe(sgxStatus, qe);
    return {
      ok: true,
      status: converged,
      tcbDate: sgxLevel.tcbDate,
      advisoryIds: sgxLevel.advisoryIds,
      notes: [],
    };
  }

  if (!tdxLevel) return { ok: false, reason: "no TCB level matches TEE_TCB_SVN (TDX TCB not supported)" };
  const tdxLevelStatus = asStatus(tdxLevel.tcbStatus);
  if (!tdxLevelStatus) return { ok: false, reason: "matched TDX TCB level has an unrecognised status" };
  const module = evaluateTdxModule(info, tdx.teeTcbSvn);
  if (!module.ok) return module;
  let status = convergeWithModule(tdxLevelStatus, module.status);
  const advisoryIds = unique([...tdxLevel.advisoryIds, ...module.advisoryIds]);
  const notes = module.identity ? [`TDX module identity ${module.identity.id}: ${module.status}`] : [];
  if (status === "Revoked") return { ok: true, status, tcbDate: tdxLevel.tcbDate, advisoryIds, notes };
  if (tdx.teeTcbSvn2) {
    const relaunch = relaunchAdvice(info, tdx.teeTcbSvn2, sgxStatus, status, module.status, qe);
    if (!relaunch.ok) return relaunch;
    status = relaunch.status;
  }
  return { ok: true, status: convergeWithQe(status, qe), tcbDate: tdxLevel.tcbDate, advisoryIds, notes };
}

/** The TDX module identity for TEE_TCB_SVN's major version byte: "TDX_" + two uppercase hex digits. */
export function findTdxModuleIdentity(info: TcbInfo, version: number): TdxModuleIdentity | undefined {
  const id = `TDX_${version.toString(16).padStart(2, "0").toUpperCase()}`;
  return info.tdxModuleIdentities.find((m) => m.id.toUpperCase() === id);
}

/**
 * The TDX module signer and attributes the quote must show (MRSIGNERSEAM, SEAMATTRIBUTES):
 * from the module identity for a versioned module, else the generic `tdxModule` entry.
 */
export function checkTdxModuleIdentity(
  info: TcbInfo,
  body: TdReport,
): { ok: true; detail: string } | { ok: false; reason: string } {
  const version = body.teeTcbSvn[1];
  let expected: Omit<TdxModuleIdentity, "id" | "tcbLevels"> | undefined = info.tdxModule;
  let source = "tdxModule";
  if (version > 0) {
    const identity = findTdxModuleIdentity(info, version);
    if (!identity)
      return { ok: false, reason: "TCB info has no TDX module identity for the module's major version" };
    expected = identity;
    source = `tdxModuleIdentities ${identity.id}`;
  }
  if (!expected) return { ok: false, reason: "TCB info has no tdxModule entry" };
  if (!bytesEqual(body.mrSignerSeam, expected.mrSigner)) {
    return { ok: false, reason: `MRSIGNERSEAM does not match ${source}` };
  }
  // Intel's QVL requires SEAMATTRIBUTES to be zero as well as to match.
  if (!body.seamAttributes.every((b) => b === 0)) return { ok: false, reason: "SEAMATTRIBUTES is not zero" };
  if (!bytesEqual(and(body.seamAttributes, expected.attributesMask), expected.attributes)) {
    return { ok: false, reason: `SEAMATTRIBUTES (masked) do not match ${source}` };
  }
  return { ok: true, detail: `MRSIGNERSEAM and SEAMATTRIBUTES match ${source}` };
}

function tdxComponentsMet(teeTcbSvn: Uint8Array, level: TcbLevel): boolean {
  const components = level.tdxComponents;
  if (!components) return false;
  // With a versioned TDX module (byte 1 > 0), bytes 0..1 are judged by the module identity instead.
  const start = teeTcbSvn[1] > 0 ? 2 : 0;
  for (let i = start; i < 16; i++) if (teeTcbSvn[i] < components[i]) return false;
  return true;
}

type ModuleEvaluation =
  | { ok: true; status: TcbStatus; advisoryIds: string[]; identity?: TdxModuleIdentity }
  | { ok: false; reason: string };

function evaluateTdxModule(info: TcbInfo, teeTcbSvn: Uint8Array): ModuleEvaluation {
  const version = teeTcbSvn[1];
  if (version === 0) return { ok: true, status: "UpToDate", advisoryIds: [] };
  const identity = findTdxModuleIdentity(info, version);
  if (!identity)
    return { ok: false, reason: "TCB info has no TDX module identity for the module's major version" };
  const level = firstIsvLevel(identity.tcbLevels, teeTcbSvn[0]);
  if (!level) return { ok: false, reason: "TDX module SVN is below every module identity TCB level" };
  const status = asStatus(level.tcbStatus);
  if (!status) return { ok: false, reason: "TDX module TCB level has an unrecognised status" };
  return { ok: true, status, advisoryIds: level.advisoryIds, identity };
}

function convergeWithModule(level: TcbStatus, module: TcbStatus): TcbStatus {
  if (module === "OutOfDate") {
    if (level === "UpToDate" || level === "SWHardeningNeeded") return "OutOfDate";
    if (level === "ConfigurationNeeded" || level === "ConfigurationAndSWHardeningNeeded") {
      return "OutOfDateConfigurationNeeded";
    }
  }
  if (module === "Revoked") return "Revoked";
  return level;
}

function convergeWithQe(level: TcbStatus, qe: QeTcbStatus): TcbStatus {
  if (qe === "OutOfDate") {
    if (level === "UpToDate" || level === "SWHardeningNeeded") return "OutOfDate";
    if (level === "ConfigurationNeeded" || level === "ConfigurationAndSWHardeningNeeded") {
      return "OutOfDateConfigurationNeeded";
    }
  }
  if (qe === "Revoked") return "Revoked";
  return level;
}

const CONFIGURATION_NEEDED = new Set<TcbStatus>([
  "ConfigurationNeeded",
  "OutOfDateConfigurationNeeded",
  "ConfigurationAndSWHardeningNeeded",
  "TDRelaunchAdvisedConfigurationNeeded",
]);

/**
 * TD 1.5 preserving updates: when the TD was launched on an out-of-date module but the current
 * module (TEE_TCB_SVN2) is at the latest level, the status is "TD relaunch advised" instead.
 */
function relaunchAdvice(
  info: TcbInfo,
  teeTcbSvn2: Uint8Array,
  sgxStatus: TcbStatus,
  tdxStatus: TcbStatus,
  moduleStatus: TcbStatus,
  qe: QeTcbStatus,
): { ok: true; status: TcbStatus } | { ok: false; reason: string } {
  const unchanged = { ok: true as const, status: tdxStatus };
  if (qe !== "UpToDate") return unchanged;
  if (
    !["UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"].includes(
      sgxStatus,
    )
  ) {
    return unchanged;
  }
  if (tdxStatus !== "OutOfDate" && tdxStatus !== "OutOfDateConfigurationNeeded") return unchanged;
  if (moduleStatus !== "OutOfDate") return unchanged;
  const latest = info.tcbLevels[0];
  const latestTdx = latest.tdxComponents;
  if (!latestTdx) return unchanged;
  let moduleSvnNeeded = latestTdx[0];
  if (teeTcbSvn2[1] !== 0) {
    const identity2 = findTdxModuleIdentity(info, teeTcbSvn2[1]);
    if (!identity2)
      return { ok: false, reason: "TCB info has no TDX module identity for TEE_TCB_SVN2's major version" };
    moduleSvnNeeded = identity2.tcbLevels[0].isvSvn;
  }
  if (teeTcbSvn2[0] >= moduleSvnNeeded && teeTcbSvn2[2] >= latestTdx[2]) {
    const config = CONFIGURATION_NEEDED.has(sgxStatus) || CONFIGURATION_NEEDED.has(tdxStatus);
    return { ok: true, status: config ? "TDRelaunchAdvisedConfigurationNeeded" : "TDRelaunchAdvised" };
  }
  return unchanged;
}

function firstIsvLevel(levels: IsvTcbLevel[], isvSvn: number): IsvTcbLevel | undefined {
  return levels.find((l) => isvSvn >= l.isvSvn);
}

function and(value: Uint8Array, mask: Uint8Array): Uint8Array {
  const out = new Uint8Array(value.length);
  for (let i = 0; i < value.length; i++) out[i] = value[i] & (mask[i] ?? 0);
  return out;
}

function unique(ids: string[]): string[] {
  return [...new Set(ids)];
}
