import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { EnclaveError } from "../../errors.js";
import type { VerificationResult } from "../types.js";
import type { DcapCollateral } from "./collateral.js";
import { verifySgxQuote, verifyTdxQuote, type DcapVerifyOptions } from "./verify.js";

/*
 * Changes to Intel-signed collateral must be rejected: every byte of the TCB info and QE
 * identity signatures, and (sampled with a stride) the signed TCB info / QE identity text and the
 * CRLs. A flip either makes the collateral envelope invalid (ValidationError) or fails a check
 * that passed before.
 */

const VECTORS = fileURLToPath(new URL("../../../test/vectors/", import.meta.url));
const read = (path: string) => new Uint8Array(readFileSync(VECTORS + path));
const json = (path: string) => JSON.parse(readFileSync(VECTORS + path, "utf8")) as DcapCollateral;

type Verify = (bytes: Uint8Array, options: DcapVerifyOptions) => VerificationResult;
type Field =
  "tcb_info" | "qe_identity" | "tcb_info_signature" | "qe_identity_signature" | "pck_crl" | "root_ca_crl";
const HEX_FIELDS = new Set<Field>(["tcb_info_signature", "qe_identity_signature", "pck_crl", "root_ca_crl"]);

/** Flips one bit of byte `i` of a collateral field (decoded bytes for hex fields, UTF-8 text otherwise). */
function flipField(collateral: DcapCollateral, field: Field, i: number): DcapCollateral {
  const hexField = HEX_FIELDS.has(field);
  const bytes = Buffer.from(collateral[field], hexField ? "hex" : "utf8");
  bytes[i] ^= 1 << (i % 8);
  return { ...collateral, [field]: bytes.toString(hexField ? "hex" : "utf8") };
}

function sweep(
  quote: Uint8Array,
  options: DcapVerifyOptions,
  verify: Verify,
  fields: Array<[Field, number]>,
) {
  const collateral = options.collateral!;
  const baseline = verify(quote, options);
  expect(baseline.trusted).toBe(true);
  const passing = new Set(baseline.checks.filter((c) => c.status === "pass").map((c) => c.name));
  const result: Record<string, { flips: number; accepted: number[] }> = {};
  for (const [field, stride] of fields) {
    const hexField = HEX_FIELDS.has(field);
    const length = Buffer.from(collateral[field], hexField ? "hex" : "utf8").length;
    const r = (result[field] = { flips: 0, accepted: [] as number[] });
    for (let i = 0; i < length; i += stride) {
      r.flips++;
      try {
        const out = verify(quote, { ...options, collateral: flipField(collateral, field, i) });
        if (out.trusted || !out.checks.some((c) => c.status === "fail" && passing.has(c.name)))
          r.accepted.push(i);
      } catch (error) {
        if (!(error instanceof EnclaveError)) throw error;
      }
    }
  }
  return result;
}

describe("tampered collateral is rejected", () => {
  it("TDX (dcap-qvl collateral)", () => {
    const result = sweep(
      read("tdx/dcap-qvl_tdx_quote.bin"),
      { at: new Date(1752919234000), collateral: json("tdx/dcap-qvl_tdx_quote_collateral.json") },
      verifyTdxQuote,
      [
        ["tcb_info_signature", 1],
        ["qe_identity_signature", 1],
        ["tcb_info", 29],
        ["qe_identity", 7],
        ["pck_crl", 37],
        ["root_ca_crl", 7],
      ],
    );
    for (const [field, r] of Object.entries(result)) expect(r.accepted, field).toEqual([]);
    expect(result.tcb_info_signature.flips).toBe(64);
    expect(result.qe_identity_signature.flips).toBe(64);
  });

  it("SGX (dcap-qvl collateral)", () => {
    const result = sweep(
      read("sgx/dcap-qvl_sgx_quote.bin"),
      {
        at: new Date(1752919277000),
        collateral: json("sgx/dcap-qvl_sgx_quote_collateral.json"),
      },
      verifySgxQuote,
      [
        ["tcb_info_signature", 1],
        ["qe_identity_signature", 1],
        ["tcb_info", 61],
      ],
    );
    for (const [field, r] of Object.entries(result)) expect(r.accepted, field).toEqual([]);
  });

  it("a re-serialised or edited TCB info fails the signature check", () => {
    const quote = read("sgx/dcap-qvl_sgx_quote.bin");
    const collateral = json("sgx/dcap-qvl_sgx_quote_collateral.json");
    const options = { at: new Date(1752919277000) };
    const reserialised = JSON.stringify(JSON.parse(collateral.tcb_info), null, 1);
    // Same content, different bytes: Intel signed the served text, so this must not verify.
    const a = verifySgxQuote(quote, { ...options, collateral: { ...collateral, tcb_info: reserialised } });
    expect(a.checks.find((c) => c.name === "tcb-info-signature")?.status).toBe("fail");
    // An attacker "upgrading" the platform's level to UpToDate.
    const upgraded = collateral.tcb_info.replace(/"ConfigurationAndSWHardeningNeeded"/g, '"UpToDate"');
    expect(upgraded).not.toBe(collateral.tcb_info);
    const b = verifySgxQuote(quote, { ...options, collateral: { ...collateral, tcb_info: upgraded } });
    expect(b.checks.find((c) => c.name === "tcb-info-signature")?.status).toBe("fail");
    // The forged level is neither trusted nor reported as the platform's status.
    expect(b.checks.find((c) => c.name === "tcb-status")?.status).toBe("fail");
    expect(b.claims.tcbStatus).toBeUndefined();
    expect(b.trusted).toBe(false);
  });

  it("a TCB info signed by a non-TCB-signing Intel certificate is refused", () => {
    // The PCK CRL issuer chain (PCK Platform CA -> root) also chains to the pinned root.
    const collateral = json("tdx/dcap-qvl_tdx_quote_collateral.json");
    const r = verifyTdxQuote(read("tdx/dcap-qvl_tdx_quote.bin"), {
      at: new Date(1752919234000),
      collateral: { ...collateral, tcb_info_issuer_chain: collateral.pck_crl_issuer_chain },
    });
    expect(r.checks.find((c) => c.name === "tcb-info-signature")?.detail).toMatch(
      /not an Intel SGX TCB Signing/,
    );
    expect(r.trusted).toBe(false);
  });
});
