import type { EvidenceKind } from "../types.js";
import { ByteReader } from "./byte-reader.js";

/** SGX REPORT body (sgx_report_body_t), 384 bytes: the ISV enclave report and the QE report. */
export interface EnclaveReport {
  /** The exact 384 bytes, as signed. */
  raw: Uint8Array;
  cpuSvn: Uint8Array;
  /** MISCSELECT as its 4 little-endian bytes. */
  miscSelect: Uint8Array;
  isvExtProdId: Uint8Array;
  /** ATTRIBUTES: 8 bytes of flags then 8 bytes of XFRM. */
  attributes: Uint8Array;
  mrEnclave: Uint8Array;
  mrSigner: Uint8Array;
  configId: Uint8Array;
  isvProdId: number;
  isvSvn: number;
  configSvn: number;
  isvFamilyId: Uint8Array;
  reportData: Uint8Array;
}

export const ENCLAVE_REPORT_SIZE = 384;

/** SGX ATTRIBUTES.FLAGS bit 1: the enclave was launched in debug mode. */
export const SGX_FLAGS_DEBUG = 0x02;

export function parseEnclaveReport(
  raw: Uint8Array,
  kind: EvidenceKind,
  base: number,
  what: string,
): EnclaveReport {
  const r = new ByteReader(raw, kind, base);
  const report: EnclaveReport = {
    raw,
    cpuSvn: r.take(16, `${what}.cpusvn`),
    miscSelect: r.take(4, `${what}.miscselect`),
    isvExtProdId: (r.take(12, `${what}.reserved1`), r.take(16, `${what}.isv_ext_prod_id`)),
    attributes: r.take(16, `${what}.attributes`),
    mrEnclave: r.take(32, `${what}.mrenclave`),
    mrSigner: (r.take(32, `${what}.reserved2`), r.take(32, `${what}.mrsigner`)),
    configId: (r.take(32, `${what}.reserved3`), r.take(64, `${what}.config_id`)),
    isvProdId: r.u16(`${what}.isv_prod_id`),
    isvSvn: r.u16(`${what}.isv_svn`),
    configSvn: r.u16(`${what}.config_svn`),
    isvFamilyId: (r.take(42, `${what}.reserved4`), r.take(16, `${what}.isv_family_id`)),
    reportData: r.take(64, `${what}.report_data`),
  };
  r.expectEnd(what);
  return report;
}

/** TD report body: TDX 1.0 (584 bytes) or TDX 1.5 (648 bytes, adds TEE_TCB_SVN2 and MRSERVICETD). */
export interface TdReport {
  raw: Uint8Array;
  /** "1.0" for the 584-byte body, "1.5" for the 648-byte body. */
  version: "1.0" | "1.5";
  teeTcbSvn: Uint8Array;
  mrSeam: Uint8Array;
  mrSignerSeam: Uint8Array;
  seamAttributes: Uint8Array;
  tdAttributes: Uint8Array;
  xfam: Uint8Array;
  mrTd: Uint8Array;
  mrConfigId: Uint8Array;
  mrOwner: Uint8Array;
  mrOwnerConfig: Uint8Array;
  rtmrs: [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  reportData: Uint8Array;
  teeTcbSvn2?: Uint8Array;
  mrServiceTd?: Uint8Array;
}

export const TD_REPORT_10_SIZE = 584;
export const TD_REPORT_15_SIZE = 648;

/** TD_ATTRIBUTES bit 0 (TUD.DEBUG): the TD is debuggable and its state is visible to the host. */
export const TD_ATTRIBUTES_DEBUG = 0x01;

export function parseTdReport(raw: Uint8Array, version: "1.0" | "1.5", base: number): TdReport {
  const r = new ByteReader(raw, "tdx", base);
  const what = version === "1.0" ? "td_report10" : "td_report15";
  const body: TdReport = {
    raw,
    version,
    teeTcbSvn: r.take(16, `${what}.tee_tcb_svn`),
    mrSeam: r.take(48, `${what}.mrseam`),
    mrSignerSeam: r.take(48, `${what}.mrsignerseam`),
    seamAttributes: r.take(8, `${what}.seam_attributes`),
    tdAttributes: r.take(8, `${what}.td_attributes`),
    xfam: r.take(8, `${what}.xfam`),
    mrTd: r.take(48, `${what}.mrtd`),
    mrConfigId: r.take(48, `${what}.mrconfigid`),
    mrOwner: r.take(48, `${what}.mrowner`),
    mrOwnerConfig: r.take(48, `${what}.mrownerconfig`),
    rtmrs: [
      r.take(48, `${what}.rtmr0`),
      r.take(48, `${what}.rtmr1`),
      r.take(48, `${what}.rtmr2`),
      r.take(48, `${what}.rtmr3`),
    ],
    reportData: r.take(64, `${what}.report_data`),
  };
  if (version === "1.5") {
    body.teeTcbSvn2 = r.take(16, `${what}.tee_tcb_svn2`);
    body.mrServiceTd = r.take(48, `${what}.mrservicetd`);
  }
  r.expectEnd(what);
  return body;
}
