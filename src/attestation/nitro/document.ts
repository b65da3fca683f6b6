import { EvidenceFormatError } from "../types.js";
import { CborError, decodeCbor, type CborItem } from "./cbor.js";
import { MAX_PAYLOAD_BYTES, parseCoseSign1, type CoseSign1 } from "./cose-sign1.js";

/**
 * An AWS Nitro Enclaves attestation document (aws-nitro-enclaves-nsm-api
 * docs/attestation_process.md, section 2.2 and the checks of 3.2.2).
 */
export interface NitroDocument {
  /** The COSE_Sign1 envelope; `cose.payload` is the signed CBOR document. */
  cose: CoseSign1;
  moduleId: string;
  /** Digest function of the PCR bank as written in the document ("SHA384" on current NSMs). */
  digest: string;
  /** Milliseconds since the UNIX epoch (AWS defines the field in ms). */
  timestamp: number;
  /** Locked PCRs by index (0..31). */
  pcrs: ReadonlyMap<number, Uint8Array>;
  /** DER leaf ("infrastructure") certificate that signed the document. */
  certificate: Uint8Array;
  /** DER CA bundle as sent: root first, then intermediates down to the leaf's issuer. */
  cabundle: readonly Uint8Array[];
  publicKey?: Uint8Array;
  userData?: Uint8Array;
  nonce?: Uint8Array;
}

/** Whole-message cap: the AWS payload cap plus the small COSE envelope around it. */
export const MAX_DOCUMENT_BYTES = MAX_PAYLOAD_BYTES + 512;
export const MAX_CERT_BYTES = 1024;
/** user_data / nonce / public_key: AWS's CDDL says 0..1024; real NSM output uses up to 1024. */
export const MAX_USER_FIELD_BYTES = 1024;
export const MAX_CABUNDLE_ENTRIES = 16;
const MAX_MODULE_ID_BYTES = 256;
const PCR_LENGTHS = new Set([32, 48, 64]);

const MANDATORY = ["module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle"] as const;
const OPTIONAL = ["public_key", "user_data", "nonce"] as const;
const ALLOWED = new Set<string>([...MANDATORY, ...OPTIONAL]);

function malformed(message: string): EvidenceFormatError {
  return new EvidenceFormatError("nitro", message);
}

/**
 * Parse and syntactically validate a Nitro attestation document. Throws EvidenceFormatError
 * naming the field and rule. No signature or chain checks happen here: see verifyNitroDocument.
 */
export function parseNitroDocument(input: Uint8Array | string): NitroDocument {
  const bytes = documentBytes(input);
  if (bytes.length === 0) throw malformed("document is empty");
  if (bytes.length > MAX_DOCUMENT_BYTES) throw malformed(`document exceeds ${MAX_DOCUMENT_BYTES} bytes`);
  const cose = parseCoseSign1(bytes);

  let body: CborItem;
  try {
    body = decodeCbor(cose.payload);
  } catch (error) {
    if (error instanceof CborError) throw malformed(`payload: ${error.message}`);
    throw error;
  }
  if (body.type !== "map") throw malformed("payload: must be a map");

  const fields = new Map<string, CborItem>();
  for (const [key, value] of body.entries) {
    if (key.type !== "text") throw malformed("payload: keys must be text strings");
    if (!ALLOWED.has(key.value))
      throw malformed(`payload: field ${JSON.stringify(key.value)} is not allowed`);
    fields.set(key.value, value);
  }
  for (const name of MANDATORY) {
    const value = fields.get(name);
    if (value === undefined) throw malformed(`${name}: mandatory field missing`);
    if (value.type === "simple" && value.value === null) throw malformed(`${name}: must not be null`);
  }

  const moduleId = textField(fields.get("module_id")!, "module_id", 1, MAX_MODULE_ID_BYTES);
  const digest = textField(fields.get("digest")!, "digest", 1, 16);
  const timestamp = timestampField(fields.get("timestamp")!);
  const pcrs = pcrsField(fields.get("pcrs")!);
  const certificate = bytesField(fields.get("certificate")!, "certificate", 1, MAX_CERT_BYTES);
  const cabundle = cabundleField(fields.get("cabundle")!);

  const doc: NitroDocument = { cose, moduleId, digest, timestamp, pcrs, certificate, cabundle };
  // The NSM serialises absent optional fields as CBOR null (serde Option::None), so null means
  // "absent" here; AWS's "no null" rule is enforced for the mandatory fields above.
  const publicKey = optionalBytes(fields.get("public_key"), "public_key", 1);
  const userData = optionalBytes(fields.get("user_data"), "user_data", 0);
  const nonce = optionalBytes(fields.get("nonce"), "nonce", 0);
  if (publicKey !== undefined) doc.publicKey = publicKey;
  if (userData !== undefined) doc.userData = userData;
  if (nonce !== undefined) doc.nonce = nonce;
  return doc;
}

const BASE64_TEXT = /^[A-Za-z0-9+/=\s]+$/;

/**
 * The document's bytes: binary CBOR as the NSM returns it, or its base64 text (a string, or the
 * text's bytes). Binary documents start with 0x84 (array of 4) or 0xD2 (tag 18), never text.
 */
function documentBytes(input: Uint8Array | string): Uint8Array {
  let text: string;
  if (input instanceof Uint8Array) {
    if (input.length === 0 || input[0] === 0x84 || input[0] === 0xd2) return input;
    if (input.length > 2 * MAX_DOCUMENT_BYTES)
      throw malformed(`document exceeds ${MAX_DOCUMENT_BYTES} bytes`);
    text = Buffer.from(input).toString("latin1");
    if (!BASE64_TEXT.test(text)) return input;
  } else if (typeof input === "string") {
    if (input.length > 2 * MAX_DOCUMENT_BYTES)
      throw malformed(`document exceeds ${MAX_DOCUMENT_BYTES} bytes`);
    text = input;
  } else {
    throw malformed("document must be bytes or base64 text");
  }
  const b64 = text.replace(/\s+/g, "");
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) {
    throw malformed("document text must be base64");
  }
  return new Uint8Array(Buffer.from(b64, "base64"));
}

function textField(item: CborItem, name: string, min: number, max: number): string {
  if (item.type !== "text") throw malformed(`${name}: must be a text string`);
  const size = Buffer.byteLength(item.value, "utf8");
  if (size < min || size > max) throw malformed(`${name}: length must be in [${min}, ${max}] bytes`);
  return item.value;
}

function bytesField(item: CborItem, name: string, min: number, max: number): Uint8Array {
  if (item.type !== "bytes") throw malformed(`${name}: must be a byte string`);
  if (item.value.length < min || item.value.length > max) {
    throw malformed(`${name}: length must be in [${min}, ${max}] bytes`);
  }
  return item.value;
}

function optionalBytes(item: CborItem | undefined, name: string, min: number): Uint8Array | undefined {
  if (item === undefined || (item.type === "simple" && item.value === null)) return undefined;
  return bytesField(item, name, min, MAX_USER_FIELD_BYTES);
}

function timestampField(item: CborItem): number {
  if (item.type !== "uint") throw malformed("timestamp: must be an unsigned integer");
  if (item.value === 0n) throw malformed("timestamp: must be greater than 0");
  if (item.value > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed("timestamp: out of range");
  return Number(item.value);
}

function pcrsField(item: CborItem): Map<number, Uint8Array> {
  if (item.type !== "map") throw malformed("pcrs: must be a map");
  if (item.entries.length < 1 || item.entries.length > 32) throw malformed("pcrs: must hold 1 to 32 entries");
  const pcrs = new Map<number, Uint8Array>();
  for (const [key, value] of item.entries) {
    if (key.type !== "uint" || key.value > 31n) throw malformed("pcrs: index must be an integer in [0, 32)");
    const index = Number(key.value);
    if (value.type !== "bytes") throw malformed(`pcrs[${index}]: must be a byte string`);
    if (!PCR_LENGTHS.has(value.value.length)) throw malformed(`pcrs[${index}]: length must be 32, 48 or 64`);
    pcrs.set(index, value.value);
  }
  return pcrs;
}

function cabundleField(item: CborItem): Uint8Array[] {
  if (item.type !== "array") throw malformed("cabundle: must be an array");
  if (item.items.length < 1 || item.items.length > MAX_CABUNDLE_ENTRIES) {
    throw malformed(`cabundle: must hold 1 to ${MAX_CABUNDLE_ENTRIES} certificates`);
  }
  return item.items.map((entry, i) => bytesField(entry, `cabundle[${i}]`, 1, MAX_CERT_BYTES));
}
