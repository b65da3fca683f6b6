import { EvidenceFormatError } from "../types.js";
import type { OpaqueField } from "./spdm.js";

/** NVIDIA's opaque-data field types in the MEASUREMENTS response (as nvtrust names them). */
export const OPAQUE_FIELD = {
  CERT_ISSUER_NAME: 1,
  CERT_AUTHORITY_KEY_IDENTIFIER: 2,
  DRIVER_VERSION: 3,
  GPU_INFO: 4,
  SKU: 5,
  VBIOS_VERSION: 6,
  MANUFACTURER_ID: 7,
  TAMPER_DETECTION: 8,
  SMC: 9,
  VPR: 10,
  NVDEC0_STATUS: 11,
  MSRSCNT: 12,
  CPRINFO: 13,
  BOARD_ID: 14,
  CHIP_SKU: 15,
  CHIP_SKU_MOD: 16,
  PROJECT: 17,
  PROJECT_SKU: 18,
  PROJECT_SKU_MOD: 19,
  FWID: 20,
  PROTECTED_PCIE_STATUS: 21,
} as const;

const NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(OPAQUE_FIELD).map(([name, id]) => [id, name.toLowerCase()]),
);

/** NVDEC0 status byte: 0xAA enabled, 0x55 disabled (measurement 36 is only meaningful when enabled). */
export const NVDEC_ENABLED = 0xaa;
export const NVDEC_DISABLED = 0x55;

export interface NvidiaOpaqueData {
  driverVersion?: string;
  /** VBIOS version formatted as nvtrust does, e.g. "96.00.9f.00.01". */
  vbiosVersion?: string;
  /** Firmware id (hex) the GPU reports; bound to the leaf certificate's FWID. */
  fwid?: string;
  chipSku?: string;
  chipSkuMod?: string;
  project?: string;
  projectSku?: string;
  projectSkuMod?: string;
  boardId?: string;
  gpuInfo?: string;
  cprInfo?: string;
  nvdec0Status?: number;
  protectedPcieStatus?: number;
  /** Per-measurement counters (MSRSCNT), u32 LE each. */
  measurementCounts?: number[];
  /** Every field by type, hex, including types this code has no name for. */
  raw: Record<string, string>;
}

function malformed(message: string): EvidenceFormatError {
  return new EvidenceFormatError("nvidia", message);
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** Printable-ASCII text padded with NULs; anything else is a format error. */
function asciiField(value: Uint8Array, name: string): string {
  let end = value.length;
  while (end > 0 && value[end - 1] === 0) end--;
  const body = value.subarray(0, end);
  if (!body.every((b) => b >= 0x20 && b < 0x7f)) throw malformed(`OpaqueData.${name}: not printable ASCII`);
  return Buffer.from(body).toString("latin1");
}

/**
 * nvtrust's VBIOS format: the 8 bytes read little-endian as hex, then the high half followed by the
 * last byte of the low half, in dotted pairs (bytes 00 9f 00 96 01 00 00 00 -> "96.00.9f.00.01").
 */
export function formatVbiosVersion(value: Uint8Array): string {
  if (value.length !== 8) throw malformed("OpaqueData.vbios_version: must be 8 bytes");
  const le = hex(Uint8Array.from(value).reverse());
  const half = le.length / 2;
  const digits = le.slice(half) + le.slice(half - 2, half);
  return digits.match(/../g)!.join(".");
}

export function decodeOpaqueData(fields: readonly OpaqueField[]): NvidiaOpaqueData {
  const out: NvidiaOpaqueData = { raw: {} };
  for (const { type, value } of fields) {
    out.raw[NAMES[type] ?? String(type)] = hex(value);
    switch (type) {
      case OPAQUE_FIELD.DRIVER_VERSION:
        out.driverVersion = asciiField(value, "driver_version");
        break;
      case OPAQUE_FIELD.VBIOS_VERSION:
        out.vbiosVersion = formatVbiosVersion(value);
        break;
      case OPAQUE_FIELD.FWID:
        if (value.length === 0) throw malformed("OpaqueData.fwid: empty");
        out.fwid = hex(value);
        break;
      case OPAQUE_FIELD.CHIP_SKU:
        out.chipSku = asciiField(value, "chip_sku");
        break;
      case OPAQUE_FIELD.CHIP_SKU_MOD:
        out.chipSkuMod = asciiField(value, "chip_sku_mod");
        break;
      case OPAQUE_FIELD.PROJECT:
        out.project = asciiField(value, "project");
        break;
      case OPAQUE_FIELD.PROJECT_SKU:
        out.projectSku = asciiField(value, "project_sku");
        break;
      case OPAQUE_FIELD.PROJECT_SKU_MOD:
        out.projectSkuMod = asciiField(value, "project_sku_mod");
        break;
      case OPAQUE_FIELD.BOARD_ID:
        out.boardId = hex(value);
        break;
      case OPAQUE_FIELD.GPU_INFO:
        out.gpuInfo = hex(value);
        break;
      case OPAQUE_FIELD.CPRINFO:
        out.cprInfo = hex(value);
        break;
      case OPAQUE_FIELD.NVDEC0_STATUS:
        if (value.length !== 1) throw malformed("OpaqueData.nvdec0_status: must be 1 byte");
        out.nvdec0Status = value[0];
        break;
      case OPAQUE_FIELD.PROTECTED_PCIE_STATUS:
        if (value.length !== 1) throw malformed("OpaqueData.protected_pcie_status: must be 1 byte");
        out.protectedPcieStatus = value[0];
        break;
      case OPAQUE_FIELD.MSRSCNT: {
        if (value.length % 4 !== 0) throw malformed("OpaqueData.msrscnt: length must be a multiple of 4");
        const view = Buffer.from(value);
        out.measurementCounts = Array.from({ length: value.length / 4 }, (_, i) => view.readUInt32LE(i * 4));
        break;
      }
      default:
        break;
    }
  }
  return out;
}
