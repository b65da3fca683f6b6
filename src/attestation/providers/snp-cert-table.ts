import { EvidenceFormatError } from "../types.js";
import type { CertificateRole, EvidenceCertificate } from "../evidence.js";

/**
 * The SEV-SNP certificate table (GHCB specification, MSG_REPORT_REQ extended request), which the
 * configfs-tsm `auxblob` of a sev_guest report carries: a list of 24-byte entries
 * { GUID (16 bytes, in the textual order), offset u32 LE, length u32 LE } ended by an all-zero entry;
 * offsets are from the start of the table.
 */
export const SNP_CERT_GUIDS: Record<string, CertificateRole> = {
  "63da758d-e664-4564-adc5-f4b93be8accd": "VCEK",
  "a8074bc2-a25a-483e-aae6-39c045a0b8a1": "VLEK",
  "4ab7b379-bbac-4fe4-a02f-05aef327c782": "ASK",
  "c0b406a4-a803-4952-9743-3fb6014cd0ae": "ARK",
  "92f81bc3-5811-4d3d-97ff-d19f88dc67ea": "CRL",
};

const ENTRY = 24;
const MAX_ENTRIES = 64;

function guidText(b: Uint8Array): string {
  const h = Buffer.from(b).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function guidBytes(text: string): Buffer {
  return Buffer.from(text.replace(/-/g, ""), "hex");
}

/** Parse a certificate table. An empty blob means the host supplied no certificates. */
export function parseSnpCertTable(table: Uint8Array): EvidenceCertificate[] {
  if (table.length === 0) return [];
  const b = Buffer.from(table.buffer, table.byteOffset, table.length);
  const out: EvidenceCertificate[] = [];
  const seen = new Set<string>();
  for (let i = 0; ; i++) {
    const at = i * ENTRY;
    if (at + ENTRY > b.length)
      throw new EvidenceFormatError("snp", "certificate table: missing terminating entry");
    if (i > MAX_ENTRIES)
      throw new EvidenceFormatError("snp", `certificate table: more than ${MAX_ENTRIES} entries`);
    const guid = b.subarray(at, at + 16);
    const offset = b.readUInt32LE(at + 16);
    const length = b.readUInt32LE(at + 20);
    if (guid.every((x) => x === 0)) {
      if (offset !== 0 || length !== 0) {
        throw new EvidenceFormatError(
          "snp",
          "certificate table: terminator entry has a non-zero offset/length",
        );
      }
      break;
    }
    const id = guidText(guid);
    if (seen.has(id)) throw new EvidenceFormatError("snp", `certificate table: duplicate entry ${id}`);
    seen.add(id);
    const headerEnd = (i + 2) * ENTRY; // entries cannot overlap the header, which ends after the terminator
    if (length === 0 || offset < headerEnd || offset + length > b.length) {
      throw new EvidenceFormatError("snp", `certificate table: entry ${id} points outside the table`);
    }
    out.push({
      role: SNP_CERT_GUIDS[id] ?? "OTHER",
      guid: id,
      der: new Uint8Array(b.subarray(offset, offset + length)),
    });
  }
  return out;
}

/** Build a certificate table (used by tests and by tools that replay recorded evidence). */
export function encodeSnpCertTable(entries: { guid: string; der: Uint8Array }[]): Uint8Array {
  const header = (entries.length + 1) * ENTRY;
  const total = header + entries.reduce((n, e) => n + e.der.length, 0);
  const out = Buffer.alloc(total);
  let cursor = header;
  entries.forEach((e, i) => {
    const g = guidBytes(e.guid);
    if (g.length !== 16) throw new EvidenceFormatError("snp", "certificate table: GUID must be 16 bytes");
    g.copy(out, i * ENTRY);
    out.writeUInt32LE(cursor, i * ENTRY + 16);
    out.writeUInt32LE(e.der.length, i * ENTRY + 20);
    out.set(e.der, cursor);
    cursor += e.der.length;
  });
  return new Uint8Array(out);
}

export function guidOf(role: CertificateRole): string {
  const hit = Object.entries(SNP_CERT_GUIDS).find(([, r]) => r === role);
  if (!hit) throw new EvidenceFormatError("snp", `certificate table: no GUID for role ${role}`);
  return hit[0];
}
