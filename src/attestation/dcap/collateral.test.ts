import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../errors.js";
import { dcapCollateralFromPcs, parseDcapCollateral } from "./collateral.js";
import { rawJsonMember } from "./raw-json.js";

const VECTORS = fileURLToPath(new URL("../../../test/vectors/", import.meta.url));
const text = (path: string) => readFileSync(VECTORS + path, "utf8");

describe("rawJsonMember", () => {
  it("returns the exact served text of the signed object", () => {
    const body = text("tdx/go-tdx-guest_sample_tcbInfo_response");
    // Independent slice: the response is {"tcbInfo":<object>,"signature":"<hex>"}
    const expected = body.slice('{"tcbInfo":'.length, body.lastIndexOf(',"signature":'));
    expect(rawJsonMember(body, "tcbInfo", "TCB info response")).toBe(expected);
  });

  it("copes with whitespace, key order and brackets or quotes inside strings", () => {
    const doc = ` { "a" : "x}\\"{[" ,\n "tcbInfo" :  {"k":["}",{"z":1.50}],"s":"\\\\"} , "signature":"00" } `;
    expect(rawJsonMember(doc, "tcbInfo", "doc")).toBe(`{"k":["}",{"z":1.50}],"s":"\\\\"}`);
    expect(rawJsonMember(doc, "signature", "doc")).toBe(`"00"`);
    expect(rawJsonMember(`{"n": -1.5e3 ,"tcbInfo":true}`, "n", "doc")).toBe("-1.5e3");
  });

  it("refuses invalid JSON, non-objects, duplicate keys and a missing member", () => {
    expect(() => rawJsonMember(`{"tcbInfo":{}`, "tcbInfo", "doc")).toThrow(/not valid JSON/);
    expect(() => rawJsonMember(`[1]`, "tcbInfo", "doc")).toThrow(/not a JSON object/);
    expect(() => rawJsonMember(`{"tcbInfo":{},"tcbInfo":{}}`, "tcbInfo", "doc")).toThrow(/duplicate/);
    expect(() => rawJsonMember(`{"other":{}}`, "tcbInfo", "doc")).toThrow(ValidationError);
  });
});

describe("DCAP collateral", () => {
  it("builds the dcap-qvl JSON form from PCS responses", () => {
    const tcbResponse = JSON.parse(text("tdx/go-tdx-guest_sample_tcbInfo_response"));
    const qeResponse = JSON.parse(text("tdx/go-tdx-guest_sample_qeIdentity_response"));
    const c = dcapCollateralFromPcs({
      tcbInfoResponse: text("tdx/go-tdx-guest_sample_tcbInfo_response"),
      tcbInfoIssuerChain: text("tdx/go-tdx-guest_tcbinfo_issuer_chain.pem"),
      qeIdentityResponse: text("tdx/go-tdx-guest_sample_qeIdentity_response"),
      qeIdentityIssuerChain: text("tdx/go-tdx-guest_tcbinfo_issuer_chain.pem"),
      pckCrl: new Uint8Array([0x30, 0x00]),
      pckCrlIssuerChain: text("tdx/go-tdx-guest_pckcrl_issuer_chain.pem"),
      rootCaCrl: new Uint8Array([0x30, 0x00]),
    });
    expect(c.tcb_info_signature).toBe(tcbResponse.signature);
    expect(c.qe_identity_signature).toBe(qeResponse.signature);
    expect(JSON.parse(c.tcb_info)).toEqual(tcbResponse.tcbInfo);
    expect(JSON.parse(c.qe_identity)).toEqual(qeResponse.enclaveIdentity);
    expect(c.pck_crl).toBe("3000");
  });

  it("accepts the vectors' collateral and names each malformed field", () => {
    const good = JSON.parse(text("sgx/dcap-qvl_sgx_quote_collateral.json"));
    expect(parseDcapCollateral(good).tcb_info).toBe(good.tcb_info);
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...good, tcb_info_signature: good.tcb_info_signature.slice(2) }, /tcb_info_signature/],
      [{ ...good, pck_crl: "30z0" }, /pck_crl/],
      [{ ...good, root_ca_crl: "300" }, /root_ca_crl/],
      [{ ...good, qe_identity_issuer_chain: "not pem" }, /qe_identity_issuer_chain/],
      [{ ...good, extra: 1 }, /unknown field/],
    ];
    for (const [input, message] of cases) expect(() => parseDcapCollateral(input)).toThrow(message);
  });
});
