import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseCertificate } from "../pki/index.js";
import { EvidenceFormatError } from "../types.js";
import { parsePckExtensions } from "./pck-extensions.js";
import {
  MAX_QUOTE_BYTES,
  MAX_TRAILING_BYTES,
  parseSgxQuote,
  parseTdxQuote,
  type DcapQuote,
} from "./quote.js";
import type { EnclaveReport, TdReport } from "./report-body.js";

const VECTORS = fileURLToPath(new URL("../../../test/vectors/", import.meta.url));
const read = (path: string) => new Uint8Array(readFileSync(VECTORS + path));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

interface ExpectedReport {
  cpusvn: string;
  miscselect: string;
  attributes: string;
  mrenclave: string;
  mrsigner: string;
  isvprodid: number;
  isvsvn: number;
  reportdata: string;
}
interface ExpectedVector {
  id?: string;
  file: string;
  size: number;
  sha256: string;
  parsed: {
    header: Record<string, string | number>;
    body_descriptor?: { type: number; size: number };
    td_body?: Record<string, string>;
    isv_report?: ExpectedReport;
    signed_data_size: number;
    attestation_key: string;
    qe_auth_data: string;
    qe_report: ExpectedReport;
    pck_chain: Array<{ subject: string }>;
    pck_fmspc: string;
    pck_pceid: string;
    pck_sgx_type: string;
    pck_tcb_comp_svns_1_16: number[];
    pck_pcesvn: number;
    pck_cpusvn: string;
    trailing_bytes_after_signed_data?: number;
  };
}

const tdxExpected = JSON.parse(readFileSync(VECTORS + "tdx/EXPECTED.json", "utf8")) as {
  vectors: ExpectedVector[];
  other_files: Array<{ file: string; parsed_quote?: ExpectedVector["parsed"] }>;
};
const sgxExpected = JSON.parse(readFileSync(VECTORS + "sgx/EXPECTED.json", "utf8")) as {
  vectors: ExpectedVector[];
};
const cos = tdxExpected.other_files.find((f) => f.parsed_quote)!;
const tdxVectors: ExpectedVector[] = [
  ...tdxExpected.vectors,
  { file: cos.file.split(" ")[0], size: 8000, sha256: "", parsed: cos.parsed_quote! },
];

/** The SPR vector carries 39 non-zero bytes appended by its source's tests (PROVENANCE note 1). */
const SPR = "go-tdx-guest_tdx_prod_quote_SPR_E4.dat";
function tdxBytes(file: string): Uint8Array {
  const bytes = read(`tdx/${file}`);
  return file === SPR ? bytes.subarray(0, bytes.length - 39) : bytes;
}

function expectHeader(quote: DcapQuote<unknown>, h: Record<string, string | number>) {
  expect(quote.header.version).toBe(h.version);
  expect(quote.header.attestationKeyType).toBe(h.att_key_type);
  expect(quote.header.teeType).toBe(Number(h.tee_type));
  expect(quote.header.qeSvn).toBe(h.bytes8_9);
  expect(quote.header.pceSvn).toBe(h.bytes10_11);
  expect(hex(quote.header.qeVendorId)).toBe(h.qe_vendor_id);
  expect(hex(quote.header.userData)).toBe(h.user_data);
}

function expectReport(r: EnclaveReport, e: ExpectedReport) {
  expect(hex(r.cpuSvn)).toBe(e.cpusvn);
  expect(Buffer.from(r.miscSelect).readUInt32LE(0)).toBe(Number(e.miscselect));
  expect(hex(r.attributes)).toBe(e.attributes);
  expect(hex(r.mrEnclave)).toBe(e.mrenclave);
  expect(hex(r.mrSigner)).toBe(e.mrsigner);
  expect(r.isvProdId).toBe(e.isvprodid);
  expect(r.isvSvn).toBe(e.isvsvn);
  expect(hex(r.reportData)).toBe(e.reportdata);
}

function expectSignatureParts(quote: DcapQuote<unknown>, p: ExpectedVector["parsed"]) {
  expect(hex(quote.attestationKey)).toBe(p.attestation_key);
  expect(hex(quote.qeAuthData)).toBe(p.qe_auth_data);
  expectReport(quote.qeReport, p.qe_report);
  expect(quote.pckChain).toHaveLength(p.pck_chain.length);
  const leaf = parseCertificate(quote.pckChain[0]);
  const ext = parsePckExtensions(leaf);
  expect(hex(ext.fmspc)).toBe(p.pck_fmspc);
  expect(hex(ext.pceId)).toBe(p.pck_pceid);
  expect(ext.sgxType).toBe(Number.parseInt(p.pck_sgx_type, 16));
  expect(ext.tcbComponents).toEqual(p.pck_tcb_comp_svns_1_16);
  expect(ext.pceSvn).toBe(p.pck_pcesvn);
  expect(hex(ext.cpuSvn)).toBe(p.pck_cpusvn);
  p.pck_chain.forEach((c, i) => {
    const cn = /CN=([^,]+)/.exec(c.subject)![1];
    expect(parseCertificate(quote.pckChain[i]).subjectCommonName).toBe(cn);
  });
}

function expectTdBody(body: TdReport, e: Record<string, string>) {
  const fields: Array<[keyof TdReport, string]> = [
    ["teeTcbSvn", "tee_tcb_svn"],
    ["mrSeam", "mrseam"],
    ["mrSignerSeam", "mrsignerseam"],
    ["seamAttributes", "seamattributes"],
    ["tdAttributes", "tdattributes"],
    ["xfam", "xfam"],
    ["mrTd", "mrtd"],
    ["mrConfigId", "mrconfigid"],
    ["mrOwner", "mrowner"],
    ["mrOwnerConfig", "mrownerconfig"],
    ["reportData", "reportdata"],
  ];
  for (const [ours, theirs] of fields) expect(hex(body[ours] as Uint8Array), theirs).toBe(e[theirs]);
  body.rtmrs.forEach((r, i) => expect(hex(r)).toBe(e[`rtmr${i}`]));
  if (e.tee_tcb_svn2 !== undefined) {
    expect(body.version).toBe("1.5");
    expect(hex(body.teeTcbSvn2!)).toBe(e.tee_tcb_svn2);
    expect(hex(body.mrServiceTd!)).toBe(e.mrservicetd);
  } else {
    expect(body.version).toBe("1.0");
    expect(body.teeTcbSvn2).toBeUndefined();
  }
}

describe("parseTdxQuote against EXPECTED.json", () => {
  it.each(tdxVectors.map((v) => [v.file, v] as const))("%s", (file, v) => {
    const raw = read(`tdx/${file}`);
    expect(raw.length).toBe(v.size);
    if (v.sha256) expect(createHash("sha256").update(raw).digest("hex")).toBe(v.sha256);
    const quote = parseTdxQuote(tdxBytes(file));
    expectHeader(quote, v.parsed.header);
    if (v.parsed.body_descriptor) {
      expect(quote.bodyType).toBe(v.parsed.body_descriptor.type);
      expect(quote.body.raw.length).toBe(v.parsed.body_descriptor.size);
    }
    expectTdBody(quote.body, v.parsed.td_body!);
    expectSignatureParts(quote, v.parsed);
    // signed region + u32 size + signature data + padding = the whole input
    expect(quote.signedRegion.length + 4 + v.parsed.signed_data_size + quote.paddingLength).toBe(
      tdxBytes(file).length,
    );
    if (file !== SPR) expect(quote.paddingLength).toBe(v.parsed.trailing_bytes_after_signed_data ?? 0);
  });

  it("accepts the SPR vector's 39 appended unsigned bytes, as go-tdx-guest does, and flags them", () => {
    const quote = parseTdxQuote(read(`tdx/${SPR}`));
    expect(quote.paddingLength).toBe(39);
    expect(quote.trailingNonZero).toBe(true);
    expect(quote.signedRegion.length).toBe(632);
  });

  it("rejects an SGX quote and wrong versions, naming the header field", () => {
    expect(() => parseTdxQuote(read("sgx/dcap-qvl_sgx_quote.bin"))).toThrow(/header\.version/);
    const q = new Uint8Array(tdxBytes(SPR));
    q[0] = 3; // EXPECTED negative mutation: offset 0 -> 0x03, "quote format not supported"
    expect(() => parseTdxQuote(q)).toThrow(/header\.version: 3 is not supported/);
  });

  it("rejects an unknown TEE type, attestation key type and v5 body type", () => {
    const teeType = new Uint8Array(tdxBytes("trustee_tdx_quote_5.dat"));
    teeType[4] = 0x80;
    expect(() => parseTdxQuote(teeType)).toThrow(/header\.tee_type/);
    const keyType = new Uint8Array(tdxBytes("trustee_tdx_quote_5.dat"));
    keyType[2] = 3; // ECDSA P-384 is not defined for DCAP quotes
    expect(() => parseTdxQuote(keyType)).toThrow(/header\.att_key_type/);
    const bodyType = new Uint8Array(tdxBytes("trustee_tdx_quote_5.dat"));
    bodyType[48] = 1; // SGX enclave report body inside a TDX quote
    expect(() => parseTdxQuote(bodyType)).toThrow(/body\.type/);
    const bodySize = new Uint8Array(tdxBytes("trustee_tdx_quote_5.dat"));
    bodySize[50] = 0x48; // 584 with a TD 1.5 type
    expect(() => parseTdxQuote(bodySize)).toThrow(/body\.size/);
  });

  it("rejects an inconsistent signature data size (EXPECTED mutation at 0x278)", () => {
    const q = new Uint8Array(tdxBytes(SPR));
    q[0x278] = 0x10;
    expect(() => parseTdxQuote(q)).toThrow(EvidenceFormatError);
  });
});

describe("parseSgxQuote against EXPECTED.json", () => {
  const v = sgxExpected.vectors[0];
  it(v.file, () => {
    const raw = read(`sgx/${v.file}`);
    expect(createHash("sha256").update(raw).digest("hex")).toBe(v.sha256);
    const quote = parseSgxQuote(raw);
    expectHeader(quote, v.parsed.header);
    expectReport(quote.body, v.parsed.isv_report!);
    expect(Buffer.from(quote.body.reportData.subarray(0, 13)).toString("latin1")).toBe("Hello, world!");
    expectSignatureParts(quote, v.parsed);
    expect(quote.signedRegion.length).toBe(432);
    expect(quote.paddingLength).toBe(0);
  });

  it("rejects a TDX quote", () => {
    expect(() => parseSgxQuote(read("tdx/trustee_tdx_quote_4.dat"))).toThrow(/header\.version/);
  });
});

describe("length handling", () => {
  const inputs: Array<[string, Uint8Array, (b: Uint8Array) => unknown]> = [
    ["tdx v4", tdxBytes("trustee_tdx_quote_4.dat"), parseTdxQuote],
    ["tdx v5", tdxBytes("trustee_tdx_quote_5.dat"), parseTdxQuote],
    ["sgx v3", read("sgx/dcap-qvl_sgx_quote.bin"), parseSgxQuote],
  ];

  it.each(inputs)("%s: every truncation is rejected with EvidenceFormatError", (_, bytes, parse) => {
    let rejected = 0;
    for (let n = 0; n < bytes.length; n++) {
      try {
        parse(bytes.subarray(0, n));
      } catch (e) {
        if (e instanceof EvidenceFormatError) rejected++;
        else throw e;
      }
    }
    expect(rejected).toBe(bytes.length);
  });

  it.each(inputs)(
    "%s: a few appended non-zero bytes are flagged, more and oversized input are rejected",
    (_, bytes, parse) => {
      const few = new Uint8Array(bytes.length + MAX_TRAILING_BYTES);
      few.set(bytes);
      few[bytes.length] = 1;
      expect((parse(few) as DcapQuote<unknown>).trailingNonZero).toBe(true);
      const extra = new Uint8Array(bytes.length + MAX_TRAILING_BYTES + 1);
      extra.set(bytes);
      extra[bytes.length] = 1;
      expect(() => parse(extra)).toThrow(/trailing bytes/);
      const huge = new Uint8Array(MAX_QUOTE_BYTES + 1);
      huge.set(bytes);
      expect(() => parse(huge)).toThrow(/exceeds/);
    },
  );

  it.each(inputs)("%s: zero padding is tolerated and reported", (_, bytes, parse) => {
    const padded = new Uint8Array(bytes.length + 100);
    padded.set(bytes);
    expect((parse(padded) as DcapQuote<unknown>).paddingLength).toBe(100);
  });

  it("names the truncated field", () => {
    const bytes = tdxBytes("trustee_tdx_quote_4.dat");
    expect(() => parseTdxQuote(bytes.subarray(0, 40))).toThrow(/header: needs 48 bytes/);
    expect(() => parseTdxQuote(bytes.subarray(0, 634))).toThrow(/signature_data_size/);
    expect(() => parseTdxQuote(bytes.subarray(0, 700))).toThrow(/signature_data: needs 4300 bytes/);
  });

  it("rejects a QE auth data size that disagrees with the certification data size", () => {
    const q = new Uint8Array(tdxBytes("trustee_tdx_quote_4.dat"));
    // v4: 632 body, 4 size, 64 sig, 64 key, 2 type, 4 size, 384 QE report, 64 QE sig -> auth size at 1218
    expect(q[1218] | (q[1219] << 8)).toBe(32);
    q[1218] = 33;
    expect(() => parseTdxQuote(q)).toThrow(EvidenceFormatError);
  });
});

describe("certification data PEM", () => {
  // Offset of the PEM text in trustee_tdx_quote_4.dat: ... auth data (32) + type (2) + size (4).
  const PEM_START = 1218 + 2 + 32 + 6;

  it("is decoded strictly: a stray character or non-canonical base64 is refused", () => {
    const q = tdxBytes("trustee_tdx_quote_4.dat");
    expect(Buffer.from(q.subarray(PEM_START, PEM_START + 27)).toString("latin1")).toBe(
      "-----BEGIN CERTIFICATE-----",
    );
    const stray = new Uint8Array(q);
    stray[PEM_START + 27] = 0x0b; // newline -> vertical tab
    expect(() => parseTdxQuote(stray)).toThrow(/not PEM text/);
    // Last base64 line of the root ends "...RXaqI=": 'I' -> 'J' changes only padding bits.
    const text = Buffer.from(q).toString("latin1");
    const at = text.indexOf("RXaqI=\n-----END", PEM_START) + 4;
    const padBits = new Uint8Array(q);
    padBits[at] = 0x4a;
    expect(Buffer.from(padBits.subarray(at - 4, at + 2)).toString("latin1")).toBe("RXaqJ=");
    expect(() => parseTdxQuote(padBits)).toThrow(/not canonical/);
  });

  it("rejects certification data types other than 6 (v4) and 5 (PCK chain)", () => {
    const outer = new Uint8Array(tdxBytes("trustee_tdx_quote_4.dat"));
    outer[632 + 4 + 128] = 5;
    expect(() => parseTdxQuote(outer)).toThrow(/certification_data\.type: 5 is not supported/);
    const inner = new Uint8Array(tdxBytes("trustee_tdx_quote_4.dat"));
    inner[1218 + 2 + 32] = 3; // type 3 = PCK leaf + encrypted PPID, needs a PCCS
    expect(() => parseTdxQuote(inner)).toThrow(/certification_data\.type: 3 is not supported/);
  });
});
