import { timingSafeEqual } from "node:crypto";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { Evidence } from "../evidence.js";
import {
  concatBytes,
  decodeCbor,
  encodeBytes,
  encodeHead,
  encodeText,
  type CborItem,
} from "../nitro/cbor.js";
import { parseNitroDocument } from "../nitro/document.js";
import { checkReportData, ProviderError, type EvidenceProvider } from "./provider.js";

/**
 * The NSM driver's one request: CBOR in, CBOR out, through the `NSM_IOCTL_RAW` ioctl on /dev/nsm
 * (aws-nitro-enclaves-nsm-api). Behind an interface so the encoding is tested without a Nitro
 * enclave; the device side is what only a real enclave has.
 */
export interface NsmDevice {
  /** Send one CBOR request, return the CBOR response (at most NSM_RESPONSE_MAX_BYTES). */
  request(cbor: Uint8Array): Promise<Uint8Array>;
}

/** The device inside a Nitro enclave. */
export const DEFAULT_NSM_DEVICE = "/dev/nsm";

/** The native addon that also carries vsock (native/src/vsock.cc): `nsmRequest` issues the ioctl. */
const ADDON_PATH = fileURLToPath(
  new URL("../../../native/build/Release/enclave_vsock.node", import.meta.url),
);
type NsmAddon = { nsmRequest?: (path: string, request: Buffer) => Buffer };
let addon: { value?: NsmAddon; reason: string | null } | undefined;

/** null when the NSM ioctl can be issued from this build, else why not. */
export function nsmIoctlUnavailableReason(): string | null {
  if (!addon) {
    try {
      const value = createRequire(import.meta.url)(ADDON_PATH) as NsmAddon;
      addon =
        typeof value.nsmRequest === "function"
          ? { value, reason: null }
          : { reason: "the native addon predates nsmRequest; rebuild it" };
    } catch {
      addon = { reason: "the native addon (native/build/Release/enclave_vsock.node) is not built" };
    }
  }
  return addon.reason;
}

/** /dev/nsm through the native addon's NSM_IOCTL_RAW. */
export class DevNsmDevice implements NsmDevice {
  constructor(readonly path = DEFAULT_NSM_DEVICE) {}

  async request(cbor: Uint8Array): Promise<Uint8Array> {
    const reason = nsmIoctlUnavailableReason();
    if (reason) throw new ProviderError("PROVIDER_UNSUPPORTED", DESCRIPTION, reason);
    try {
      return new Uint8Array(addon!.value!.nsmRequest!(this.path, Buffer.from(cbor)));
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw fail(`the NSM ioctl on ${this.path} failed (${typeof code === "string" ? code : "error"})`);
    }
  }
}

/** The NSM driver's response buffer size (NSM_RESPONSE_MAX_SIZE). */
export const NSM_RESPONSE_MAX_BYTES = 0x3000;
const DESCRIPTION = "Nitro Secure Module (/dev/nsm)";
const CBOR_NULL = Uint8Array.of(0xf6);

/** The fields of an NSM Attestation request; the NSM accepts up to 512 bytes for each (1024 for public_key). */
export interface NsmAttestationFields {
  userData?: Uint8Array;
  nonce?: Uint8Array;
  publicKey?: Uint8Array;
}

/** `{"Attestation": {"user_data": b|null, "nonce": b|null, "public_key": b|null}}`, as the NSM API serialises it. */
export function encodeNsmAttestationRequest(fields: NsmAttestationFields): Uint8Array {
  const field = (name: string, value: Uint8Array | undefined) =>
    concatBytes([encodeText(name), value === undefined ? CBOR_NULL : encodeBytes(value)]);
  return concatBytes([
    encodeHead(5, 1),
    encodeText("Attestation"),
    encodeHead(5, 3),
    field("user_data", fields.userData),
    field("nonce", fields.nonce),
    field("public_key", fields.publicKey),
  ]);
}

const fail = (message: string) => new ProviderError("PROVIDER_FAILED", DESCRIPTION, message);

function mapEntry(item: CborItem, key: string): CborItem | undefined {
  if (item.type !== "map") return undefined;
  return item.entries.find(([k]) => k.type === "text" && k.value === key)?.[1];
}

/**
 * The attestation document of an NSM response `{"Attestation": {"document": bytes}}`. An
 * `{"Error": "<ErrorCode>"}` response or anything else becomes PROVIDER_FAILED naming the NSM's
 * error code (one of the API's fixed names) or the rule, never response bytes.
 */
export function decodeNsmAttestationResponse(bytes: Uint8Array): Uint8Array {
  if (bytes.length === 0 || bytes.length > NSM_RESPONSE_MAX_BYTES) throw fail("response size out of range");
  let item: CborItem;
  try {
    item = decodeCbor(bytes);
  } catch {
    throw fail("response is not well-formed CBOR");
  }
  const error = mapEntry(item, "Error");
  if (error) {
    const code = error.type === "text" && /^[A-Za-z]{1,40}$/.test(error.value) ? error.value : "unnamed";
    throw fail(`the NSM refused the attestation request (${code})`);
  }
  const document = mapEntry(mapEntry(item, "Attestation") ?? { type: "simple", value: null }, "document");
  if (!document || document.type !== "bytes") throw fail("response has no Attestation.document byte string");
  return document.value;
}

/**
 * Evidence from inside a Nitro enclave: an attestation document whose `nonce` is the 64 report-data
 * bytes (the binding field of binding.ts), signed by the NSM. The document is parsed before it is
 * returned, and its nonce must be what was asked for (REPORT_DATA_MISMATCH otherwise).
 */
export class NitroNsmProvider implements EvidenceProvider {
  readonly kind = "nitro" as const;
  readonly label = "HARDWARE" as const;
  readonly description = DESCRIPTION;
  readonly #device: NsmDevice;

  constructor(device: NsmDevice) {
    this.#device = device;
  }

  async collect(reportData: Uint8Array): Promise<Evidence> {
    checkReportData(this.description, reportData);
    const response = await this.#device.request(encodeNsmAttestationRequest({ nonce: reportData }));
    const bytes = decodeNsmAttestationResponse(response);
    let nonce: Uint8Array | undefined;
    try {
      nonce = parseNitroDocument(bytes).nonce;
    } catch {
      throw fail("the NSM returned a document that does not parse");
    }
    if (!nonce || nonce.length !== reportData.length || !timingSafeEqual(nonce, reportData)) {
      throw new ProviderError(
        "REPORT_DATA_MISMATCH",
        this.description,
        "the attestation document's nonce is not the report data asked for",
      );
    }
    return { kind: "nitro", bytes, collectedAt: new Date(), label: "HARDWARE" };
  }
}
