import { CertificateFormatError } from "./errors.js";

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;

/**
 * Decodes every PEM block with the given label (default CERTIFICATE) in order. Text outside
 * blocks (comments, `subject=` lines) is ignored; inside a block only base64 is allowed, so a
 * corrupted bundle fails instead of decoding to different bytes.
 */
export function pemToDerList(pem: string | Uint8Array, label = "CERTIFICATE"): Uint8Array[] {
  const text = typeof pem === "string" ? pem : new TextDecoder("utf-8", { fatal: true }).decode(pem);
  const out: Uint8Array[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const [, begin, body, end] = m;
    if (begin !== end) throw new CertificateFormatError("PEM: BEGIN and END labels differ");
    if (begin !== label) continue;
    const b64 = body.replace(/[\r\n\t ]/g, "");
    if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64) || b64.length === 0) {
      throw new CertificateFormatError(`PEM: block ${out.length} is not valid base64`);
    }
    out.push(new Uint8Array(Buffer.from(b64, "base64")));
  }
  const begins = text.match(/-----BEGIN /g)?.length ?? 0;
  const ends = text.match(/-----END /g)?.length ?? 0;
  if (begins !== ends) throw new CertificateFormatError("PEM: unterminated block");
  return out;
}

/** Encodes DER as a PEM block. */
export function derToPem(der: Uint8Array, label = "CERTIFICATE"): string {
  const b64 = Buffer.from(der).toString("base64");
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
