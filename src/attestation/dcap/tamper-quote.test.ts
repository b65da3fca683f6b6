import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { EnclaveError } from "../../errors.js";
import type { VerificationResult } from "../types.js";
import type { DcapCollateral } from "./collateral.js";
import { parseSgxQuote, parseTdxQuote, type DcapQuote } from "./quote.js";
import { verifySgxQuote, verifyTdxQuote, type DcapVerifyOptions } from "./verify.js";

/*
 * Single-bit flips over every region of real quotes must be rejected: either the parser throws
 * a typed error, or a check that passed on the untouched quote fails. The bit flipped cycles
 * through all 8 positions along the region. Large PEM text is sampled with a stride; every
 * binary region (header, body, QE report, signatures, keys, sizes) is covered byte by byte.
 */

const VECTORS = fileURLToPath(new URL("../../../test/vectors/", import.meta.url));
const read = (path: string) => new Uint8Array(readFileSync(VECTORS + path));
const json = (path: string) => JSON.parse(readFileSync(VECTORS + path, "utf8")) as DcapCollateral;

type Verify = (bytes: Uint8Array, options: DcapVerifyOptions) => VerificationResult;

interface Region {
  name: string;
  start: number;
  end: number;
  stride: number;
}

/** Regions of a parsed quote, as offsets into `bytes`. */
function regionsOf(bytes: Uint8Array, quote: DcapQuote<unknown>, pemStride: number): Region[] {
  const offsetOf = (view: Uint8Array) => view.byteOffset - bytes.byteOffset;
  const signed = quote.signedRegion.length;
  const qe = offsetOf(quote.qeReport.raw);
  const pemStart = Buffer.from(bytes).indexOf("-----BEGIN CERTIFICATE-----", qe);
  const end = bytes.length - quote.paddingLength;
  return [
    { name: "header+body (signed)", start: 0, end: signed, stride: 1 },
    { name: "signature data before QE report", start: signed, end: qe, stride: 1 },
    { name: "QE report", start: qe, end: qe + 384, stride: 1 },
    { name: "QE signature, auth data, cert data header", start: qe + 384, end: pemStart, stride: 1 },
    { name: "PCK chain PEM", start: pemStart, end, stride: pemStride },
  ];
}

function flipSweep(bytes: Uint8Array, regions: Region[], verify: Verify, options: DcapVerifyOptions) {
  const baseline = verify(bytes, options);
  const passing = baseline.checks.filter((c) => c.status === "pass").map((c) => c.name);
  const outcome: Record<string, { flips: number; rejected: number; accepted: number[] }> = {};
  for (const region of regions) {
    const o = (outcome[region.name] = { flips: 0, rejected: 0, accepted: [] as number[] });
    const offsets = new Set<number>();
    for (let i = region.start; i < region.end; i += region.stride) offsets.add(i);
    offsets.add(region.end - 1);
    for (const i of offsets) {
      const copy = new Uint8Array(bytes);
      copy[i] ^= 1 << (i % 8);
      o.flips++;
      try {
        const r = verify(copy, options);
        const broke = r.checks.some((c) => c.status === "fail" && passing.includes(c.name));
        if (broke && !r.trusted) o.rejected++;
        else o.accepted.push(i);
      } catch (error) {
        if (error instanceof EnclaveError) o.rejected++;
        else throw error;
      }
    }
  }
  return { baseline, outcome };
}

describe("bit flips in quotes are rejected", () => {
  it("TDX v4 (dcap-qvl, trusted baseline)", () => {
    const bytes = read("tdx/dcap-qvl_tdx_quote.bin");
    const options = {
      at: new Date(1752919234000),
      collateral: json("tdx/dcap-qvl_tdx_quote_collateral.json"),
    };
    const { baseline, outcome } = flipSweep(
      bytes,
      regionsOf(bytes, parseTdxQuote(bytes), 11),
      verifyTdxQuote,
      options,
    );
    expect(baseline.trusted).toBe(true);
    for (const [name, o] of Object.entries(outcome)) {
      expect(o.accepted, name).toEqual([]);
      expect(o.rejected, name).toBe(o.flips);
    }
    expect(outcome["header+body (signed)"].flips).toBe(632);
  });

  it("SGX v3 (dcap-qvl, trusted baseline)", () => {
    const bytes = read("sgx/dcap-qvl_sgx_quote.bin");
    const options = {
      at: new Date(1752919277000),
      collateral: json("sgx/dcap-qvl_sgx_quote_collateral.json"),
    };
    const { baseline, outcome } = flipSweep(
      bytes,
      regionsOf(bytes, parseSgxQuote(bytes), 11),
      verifySgxQuote,
      options,
    );
    expect(baseline.trusted).toBe(true);
    for (const [name, o] of Object.entries(outcome)) {
      expect(o.accepted, name).toEqual([]);
      expect(o.rejected, name).toBe(o.flips);
    }
    expect(outcome["header+body (signed)"].flips).toBe(432);
  });

  it("TDX v5 / TD 1.5 body (trustee; quote checks pass at baseline, collateral is another platform's)", () => {
    const bytes = read("tdx/trustee_tdx_quote_5.dat");
    const options = {
      at: new Date(1752919234000),
      collateral: json("tdx/dcap-qvl_tdx_quote_collateral.json"),
    };
    const { baseline, outcome } = flipSweep(
      bytes,
      regionsOf(bytes, parseTdxQuote(bytes), 13),
      verifyTdxQuote,
      options,
    );
    for (const name of ["quote-signature", "pck-chain", "qe-report-signature", "qe-report-data"]) {
      expect(baseline.checks.find((c) => c.name === name)?.status).toBe("pass");
    }
    for (const [name, o] of Object.entries(outcome)) {
      expect(o.accepted, name).toEqual([]);
      expect(o.rejected, name).toBe(o.flips);
    }
    expect(outcome["header+body (signed)"].flips).toBe(702);
  });
});
