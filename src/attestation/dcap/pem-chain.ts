import { EvidenceFormatError, type EvidenceKind } from "../types.js";

const BEGIN = "-----BEGIN CERTIFICATE-----";
const END = "-----END CERTIFICATE-----";
const BASE64_LINE = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Strictly decode the PEM certificate chain carried in a quote (certification data type 5).
 *
 * Strict on purpose: every byte of the text must be accounted for (BEGIN/END lines, canonical
 * base64, LF or CRLF line ends, optional NUL terminators at the very end), so no byte of the
 * evidence can change without changing the decoded certificates or failing here. A lenient
 * decoder would silently ignore stray characters and non-canonical base64 padding bits.
 */
export function decodePemCertificateChain(text: Uint8Array, kind: EvidenceKind, field: string): Uint8Array[] {
  let end = text.length;
  while (end > 0 && text[end - 1] === 0) end--; // the QE NUL-terminates the string
  for (let i = 0; i < end; i++) {
    const c = text[i];
    if (c > 0x7e || (c < 0x20 && c !== 0x0a && c !== 0x0d)) {
      throw new EvidenceFormatError(kind, `${field}: byte at position ${i} is not PEM text`);
    }
  }
  const lines = Buffer.from(text.subarray(0, end)).toString("latin1").split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const certs: Uint8Array[] = [];
  let body: string[] | undefined;
  for (let n = 0; n < lines.length; n++) {
    let line = lines[n];
    if (line.endsWith("\r")) line = line.slice(0, -1);
    if (line.includes("\r"))
      throw new EvidenceFormatError(kind, `${field}: line ${n + 1} has a stray carriage return`);
    if (body === undefined) {
      if (line !== BEGIN)
        throw new EvidenceFormatError(kind, `${field}: line ${n + 1} is not a BEGIN CERTIFICATE line`);
      body = [];
    } else if (line === END) {
      certs.push(decodeCanonicalBase64(body.join(""), kind, `${field}[${certs.length}]`));
      body = undefined;
    } else {
      if (!BASE64_LINE.test(line) || line.length === 0) {
        throw new EvidenceFormatError(kind, `${field}: line ${n + 1} is not base64`);
      }
      body.push(line);
    }
  }
  if (body !== undefined)
    throw new EvidenceFormatError(kind, `${field}: certificate ${certs.length} has no END line`);
  if (certs.length === 0) throw new EvidenceFormatError(kind, `${field}: no certificate found`);
  return certs;
}

function decodeCanonicalBase64(b64: string, kind: EvidenceKind, field: string): Uint8Array {
  const bytes = Buffer.from(b64, "base64");
  // Re-encoding must give back the same text: rejects misplaced '=' and non-zero padding bits.
  if (b64.length % 4 !== 0 || bytes.length === 0 || bytes.toString("base64") !== b64) {
    throw new EvidenceFormatError(kind, `${field}: base64 is not canonical`);
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}
