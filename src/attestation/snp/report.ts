import { EvidenceFormatError } from "../types.js";
import type { AmdProduct } from "./amd-roots.js";

/**
 * Parser for the AMD SEV-SNP ATTESTATION_REPORT ("SEV Secure Nested Paging Firmware ABI
 * Specification", table ATTESTATION_REPORT Structure). All multi-byte integers are little-endian.
 * The parser is strict: exact size, known version, every reserved range zero, defined values
 * only; anything else is an EvidenceFormatError naming the field.
 */
export const SNP_REPORT_SIZE = 0x4a0;
/** The signature covers bytes 0x000..0x29F. */
export const SNP_SIGNED_SIZE = 0x2a0;
/** Report versions whose layout we implement exactly. */
export const SNP_SUPPORTED_VERSIONS: readonly number[] = [2, 3, 5];
export const SNP_SIGNATURE_ALGO_ECDSA_P384_SHA384 = 1;

/** A TCB_VERSION, decoded with the product's layout (Milan/Genoa, or Turin which adds FMC). */
export interface SnpTcb {
  /** The 8 bytes as a little-endian u64, hex with 0x prefix (16 digits). */
  raw: string;
  bootloader: number;
  tee: number;
  snp: number;
  microcode: number;
  /** Turin only. */
  fmc?: number;
}

export type TcbLayout = "milan-genoa" | "turin";

export interface SnpGuestPolicy {
  raw: string;
  abiMinor: number;
  abiMajor: number;
  smt: boolean;
  migrateMa: boolean;
  debug: boolean;
  singleSocket: boolean;
  cxlAllow: boolean;
  memAes256Xts: boolean;
  raplDis: boolean;
  ciphertextHiding: boolean;
  pageSwapDisable: boolean;
}

export interface SnpPlatformInfo {
  raw: string;
  smtEnabled: boolean;
  tsmeEnabled: boolean;
  eccEnabled: boolean;
  raplDisabled: boolean;
  ciphertextHidingEnabled: boolean;
  aliasCheckComplete: boolean;
}

export type SnpSigningKey = "vcek" | "vlek" | "none";

export interface SnpSignerInfo {
  raw: string;
  authorKeyEn: boolean;
  maskChipKey: boolean;
  signingKey: SnpSigningKey;
}

export interface SnpVersionTriple {
  major: number;
  minor: number;
  build: number;
}

export interface SnpReport {
  version: number;
  guestSvn: number;
  policy: SnpGuestPolicy;
  familyId: Uint8Array;
  imageId: Uint8Array;
  /** 0..3 for guest requests; 0xFFFFFFFF marks a host-requested report. */
  vmpl: number;
  signatureAlgo: number;
  currentTcb: SnpTcb;
  platformInfo: SnpPlatformInfo;
  signerInfo: SnpSignerInfo;
  reportData: Uint8Array;
  measurement: Uint8Array;
  hostData: Uint8Array;
  idKeyDigest: Uint8Array;
  authorKeyDigest: Uint8Array;
  reportId: Uint8Array;
  reportIdMa: Uint8Array;
  reportedTcb: SnpTcb;
  /** Version >= 3 only (CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP). */
  cpuid?: { family: number; model: number; stepping: number };
  chipId: Uint8Array;
  committedTcb: SnpTcb;
  currentVersion: SnpVersionTriple;
  committedVersion: SnpVersionTriple;
  launchTcb: SnpTcb;
  /** Version >= 5 only. u64 hex with 0x prefix. */
  launchMitVector?: string;
  currentMitVector?: string;
  /** ECDSA r and s, big-endian, 48 bytes each (the report stores them little-endian in 72-byte fields). */
  signature: { r: Uint8Array; s: Uint8Array };
  /** Bytes 0x000..0x29F: exactly what the signature covers. */
  signedBytes: Uint8Array;
  /** TCB layout used to decode the TCB fields, and the product it was inferred from. */
  tcbLayout: TcbLayout;
  product?: AmdProduct;
}

export interface ParseSnpReportOptions {
  /**
   * The product, when known from the certificate chain. It fixes the TCB layout; without it the
   * product is inferred from CPUID (version >= 3) or, for version 2, from the CHIP_ID shape.
   */
  product?: AmdProduct;
}

const fail = (message: string): never => {
  throw new EvidenceFormatError("snp", message);
};

/** Parses a raw 1184-byte ATTESTATION_REPORT. Throws EvidenceFormatError naming the field. */
export function parseSnpReport(bytes: Uint8Array, options: ParseSnpReportOptions = {}): SnpReport {
  if (!(bytes instanceof Uint8Array)) fail("report: expected bytes");
  if (bytes.length !== SNP_REPORT_SIZE) {
    fail(`report: must be exactly ${SNP_REPORT_SIZE} bytes, got ${bytes.length}`);
  }
  const b = new Uint8Array(bytes); // private copy: later mutation by the caller cannot change what we verified
  const view = new DataView(b.buffer);
  const u32 = (o: number) => view.getUint32(o, true);
  const u64 = (o: number) => view.getBigUint64(o, true);
  const slice = (o: number, n: number) => b.slice(o, o + n);
  const mbz = (from: number, to: number, field: string) => {
    for (let i = from; i < to; i++) {
      if (b[i] !== 0) fail(`${field} (0x${hex3(from)}..0x${hex3(to - 1)}): reserved, must be zero`);
    }
  };

  const version = u32(0x00);
  if (!SNP_SUPPORTED_VERSIONS.includes(version)) {
    fail(`VERSION: unsupported report version ${version} (supported: ${SNP_SUPPORTED_VERSIONS.join(", ")})`);
  }

  const policyRaw = u64(0x08);
  if ((policyRaw & (1n << 17n)) === 0n) fail("POLICY: reserved bit 17 must be one");
  if (policyRaw >> 26n !== 0n) fail("POLICY: reserved bits 63:26 must be zero");

  const signatureAlgo = u32(0x34);
  if (signatureAlgo !== SNP_SIGNATURE_ALGO_ECDSA_P384_SHA384) {
    fail("SIGNATURE_ALGO: only 1 (ECDSA P-384 with SHA-384) is defined");
  }

  const signerRaw = u32(0x48);
  if (signerRaw >>> 5 !== 0) fail("SIGNER_INFO: reserved bits 31:5 must be zero");
  const signingKeyCode = (signerRaw >>> 2) & 7;
  let signingKey: SnpSigningKey;
  if (signingKeyCode === 0) signingKey = "vcek";
  else if (signingKeyCode === 1) signingKey = "vlek";
  else if (signingKeyCode === 7) signingKey = "none";
  else return fail("SIGNER_INFO.SIGNING_KEY: values 2..6 are reserved");
  mbz(0x4c, 0x50, "RESERVED after SIGNER_INFO");

  let cpuid: SnpReport["cpuid"];
  if (version >= 3) {
    cpuid = { family: b[0x188], model: b[0x189], stepping: b[0x18a] };
    mbz(0x18b, 0x1a0, "RESERVED after CPUID_STEP");
  } else {
    mbz(0x188, 0x1a0, "RESERVED after REPORTED_TCB");
  }
  mbz(0x1eb, 0x1ec, "RESERVED after CURRENT_MAJOR");
  mbz(0x1ef, 0x1f0, "RESERVED after COMMITTED_MAJOR");
  let launchMitVector: string | undefined;
  let currentMitVector: string | undefined;
  if (version >= 5) {
    launchMitVector = u64hex(u64(0x1f8));
    currentMitVector = u64hex(u64(0x200));
    mbz(0x208, SNP_SIGNED_SIZE, "RESERVED after CURRENT_MIT_VECTOR");
  } else {
    mbz(0x1f8, SNP_SIGNED_SIZE, "RESERVED after LAUNCH_TCB");
  }

  // Signature (ECDSA P-384 format): R and S are 72-byte little-endian fields; a P-384 scalar
  // fits in 48 bytes, so the top 24 bytes of each and everything after S must be zero.
  const sig = SNP_SIGNED_SIZE;
  mbz(sig + 48, sig + 72, "SIGNATURE.R high bytes");
  mbz(sig + 72 + 48, sig + 144, "SIGNATURE.S high bytes");
  mbz(sig + 144, SNP_REPORT_SIZE, "SIGNATURE reserved");
  const r = b.slice(sig, sig + 48).reverse();
  const s = b.slice(sig + 72, sig + 72 + 48).reverse();

  const chipId = slice(0x1a0, 64);
  const product = options.product ?? inferProduct(version, cpuid, chipId);
  const tcbLayout: TcbLayout =
    product === "Turin" || (!product && cpuid?.family === 0x1a) ? "turin" : "milan-genoa";
  const tcb = (offset: number, field: string) => decodeTcb(b.subarray(offset, offset + 8), tcbLayout, field);

  return {
    version,
    guestSvn: u32(0x04),
    policy: decodePolicy(policyRaw),
    familyId: slice(0x10, 16),
    imageId: slice(0x20, 16),
    vmpl: u32(0x30),
    signatureAlgo,
    currentTcb: tcb(0x38, "CURRENT_TCB"),
    platformInfo: decodePlatformInfo(u64(0x40)),
    signerInfo: {
      raw: "0x" + signerRaw.toString(16),
      authorKeyEn: (signerRaw & 1) !== 0,
      maskChipKey: (signerRaw & 2) !== 0,
      signingKey,
    },
    reportData: slice(0x50, 64),
    measurement: slice(0x90, 48),
    hostData: slice(0xc0, 32),
    idKeyDigest: slice(0xe0, 48),
    authorKeyDigest: slice(0x110, 48),
    reportId: slice(0x140, 32),
    reportIdMa: slice(0x160, 32),
    reportedTcb: tcb(0x180, "REPORTED_TCB"),
    ...(cpuid ? { cpuid } : {}),
    chipId,
    committedTcb: tcb(0x1e0, "COMMITTED_TCB"),
    currentVersion: { build: b[0x1e8], minor: b[0x1e9], major: b[0x1ea] },
    committedVersion: { build: b[0x1ec], minor: b[0x1ed], major: b[0x1ee] },
    launchTcb: tcb(0x1f0, "LAUNCH_TCB"),
    ...(launchMitVector !== undefined ? { launchMitVector, currentMitVector } : {}),
    signature: { r, s },
    signedBytes: b.slice(0, SNP_SIGNED_SIZE),
    tcbLayout,
    ...(product ? { product } : {}),
  };
}

/**
 * Product from CPUID (family 19h: Milan models 00h-0Fh, Genoa 10h-1Fh and A0h-AFh; family 1Ah:
 * Turin models 00h-1Fh). Version 2 reports carry no CPUID; Turin-layout CHIP_IDs are 8 bytes
 * followed by zeros, so that shape selects the Turin TCB layout.
 */
export function inferProduct(
  version: number,
  cpuid: SnpReport["cpuid"],
  chipId: Uint8Array,
): AmdProduct | undefined {
  if (version >= 3 && cpuid) return productFromCpuid(cpuid.family, cpuid.model);
  const tailZero = chipId.subarray(8).every((x) => x === 0);
  const headZero = chipId.subarray(0, 8).every((x) => x === 0);
  return tailZero && !headZero ? "Turin" : undefined;
}

export function productFromCpuid(family: number, model: number): AmdProduct | undefined {
  if (family === 0x19) {
    if (model <= 0x0f) return "Milan";
    if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)) return "Genoa";
    return undefined;
  }
  if (family === 0x1a && model <= 0x1f) return "Turin";
  return undefined;
}

/**
 * TCB_VERSION layouts. Milan/Genoa: [BOOT_LOADER, TEE, 4 reserved, SNP, MICROCODE].
 * Turin: [FMC, BOOT_LOADER, TEE, SNP, 3 reserved, MICROCODE].
 */
export function decodeTcb(bytes: Uint8Array, layout: TcbLayout, field: string): SnpTcb {
  if (bytes.length !== 8) fail(`${field}: TCB_VERSION must be 8 bytes`);
  const raw = "0x" + Buffer.from(bytes).reverse().toString("hex");
  if (layout === "turin") {
    if (bytes[4] || bytes[5] || bytes[6]) fail(`${field}: reserved bytes 4..6 must be zero`);
    return { raw, fmc: bytes[0], bootloader: bytes[1], tee: bytes[2], snp: bytes[3], microcode: bytes[7] };
  }
  if (bytes[2] || bytes[3] || bytes[4] || bytes[5]) fail(`${field}: reserved bytes 2..5 must be zero`);
  return { raw, bootloader: bytes[0], tee: bytes[1], snp: bytes[6], microcode: bytes[7] };
}

function decodePolicy(raw: bigint): SnpGuestPolicy {
  const bit = (n: number) => (raw & (1n << BigInt(n))) !== 0n;
  return {
    raw: "0x" + raw.toString(16),
    abiMinor: Number(raw & 0xffn),
    abiMajor: Number((raw >> 8n) & 0xffn),
    smt: bit(16),
    migrateMa: bit(18),
    debug: bit(19),
    singleSocket: bit(20),
    cxlAllow: bit(21),
    memAes256Xts: bit(22),
    raplDis: bit(23),
    ciphertextHiding: bit(24),
    pageSwapDisable: bit(25),
  };
}

function decodePlatformInfo(raw: bigint): SnpPlatformInfo {
  // Host properties, reported not enforced: firmware keeps defining new bits here, and their
  // meaning is a policy question, so unknown bits are kept in `raw` rather than rejected.
  const bit = (n: number) => (raw & (1n << BigInt(n))) !== 0n;
  return {
    raw: "0x" + raw.toString(16),
    smtEnabled: bit(0),
    tsmeEnabled: bit(1),
    eccEnabled: bit(2),
    raplDisabled: bit(3),
    ciphertextHidingEnabled: bit(4),
    aliasCheckComplete: bit(5),
  };
}

function u64hex(v: bigint): string {
  return "0x" + v.toString(16);
}

function hex3(n: number): string {
  return n.toString(16).toUpperCase().padStart(3, "0");
}
