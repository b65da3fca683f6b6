import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decode, Encoder } from "cbor-x";
import { describe, expect, it } from "vitest";
import { judge } from "../../../test/support/attestation.js";
import { verifyNitroDocument } from "../nitro/verify.js";
import {
  decodeNsmAttestationResponse,
  DevNsmDevice,
  nsmIoctlUnavailableReason,
  encodeNsmAttestationRequest,
  NitroNsmProvider,
  type NsmDevice,
} from "./nitro-nsm.js";

// Shortest-form CBOR maps and byte strings, as the NSM (serde_cbor) writes them: cbor-x encodes a
// Map so (a plain object gets a 16-bit length head), with no records or typed-array tags.
const cbor = new Encoder({ useRecords: false, tagUint8Array: false, mapsAsObjects: false });
const asMaps = (v: unknown): unknown =>
  v && typeof v === "object" && !(v instanceof Uint8Array)
    ? new Map(Object.entries(v).map(([k, x]) => [k, asMaps(x)]))
    : v instanceof Uint8Array
      ? Buffer.from(v)
      : v;
const encode = (value: unknown) => cbor.encode(asMaps(value));
const plain = (v: unknown): unknown =>
  v instanceof Map ? Object.fromEntries([...v].map(([k, x]) => [k, plain(x)])) : v;
const DIR = join(import.meta.dirname, "../../../test/vectors/nitro");
const RECORDED = new Uint8Array(readFileSync(join(DIR, "blocky-nitrite_nitro_attestation.cbor")));

/** A device that answers like the NSM, its CBOR read and written by cbor-x (an independent codec). */
function fakeNsm(answer: (request: Record<string, unknown>) => unknown): NsmDevice & { seen: unknown[] } {
  const seen: unknown[] = [];
  return {
    seen,
    async request(cbor) {
      const request = plain(decode(Buffer.from(cbor))) as Record<string, unknown>;
      seen.push(request);
      return new Uint8Array(encode(answer(request)));
    },
  };
}

describe("NSM request and response encoding", () => {
  it("encodes the Attestation request as the NSM API does (checked with cbor-x)", () => {
    const nonce = new Uint8Array(64).fill(9);
    const decoded = decode(
      Buffer.from(encodeNsmAttestationRequest({ nonce, userData: Uint8Array.of(1, 2) })),
    );
    expect(decoded).toEqual({
      Attestation: { user_data: Buffer.from([1, 2]), nonce: Buffer.from(nonce), public_key: null },
    });
  });

  it("reads the document of an Attestation response, and names the NSM's error otherwise", () => {
    const doc = decodeNsmAttestationResponse(new Uint8Array(encode({ Attestation: { document: RECORDED } })));
    expect(Buffer.from(doc).equals(Buffer.from(RECORDED))).toBe(true);
    expect(() => decodeNsmAttestationResponse(new Uint8Array(encode({ Error: "InvalidArgument" })))).toThrow(
      /refused the attestation request \(InvalidArgument\)/,
    );
    expect(() => decodeNsmAttestationResponse(new Uint8Array(encode({ Attestation: {} })))).toThrow(
      expect.objectContaining({ code: "PROVIDER_FAILED" }),
    );
    expect(() => decodeNsmAttestationResponse(Uint8Array.of(0xff))).toThrow(/well-formed CBOR/);
    expect(() => decodeNsmAttestationResponse(new Uint8Array(0x3001))).toThrow(/size/);
  });
});

describe("NitroNsmProvider", () => {
  it("asks for the report data as the nonce; the recorded document it returns verifies with our Nitro verifier", async () => {
    const device = fakeNsm(() => ({ Attestation: { document: RECORDED } }));
    const reportData = new Uint8Array(64).fill(3);
    // The recorded document carries another nonce, so the provider refuses to pass it off as ours.
    await expect(new NitroNsmProvider(device).collect(reportData)).rejects.toMatchObject({
      code: "REPORT_DATA_MISMATCH",
    });
    expect(device.seen[0]).toEqual({
      Attestation: { user_data: null, nonce: Buffer.from(reportData), public_key: null },
    });
    // What the NSM returned is a genuine document: our verifier trusts it at its own timestamp.
    const verified = verifyNitroDocument(RECORDED, { at: "document" });
    expect(verified.trusted).toBe(true);
    expect(judge(verified, {}, { at: new Date(verified.claims.timestampMs) }).trusted).toBe(true);
  });

  it("refuses report data of the wrong size before touching the device, and a document that does not parse", async () => {
    const device = fakeNsm(() => ({ Attestation: { document: Uint8Array.of(1, 2, 3) } }));
    const provider = new NitroNsmProvider(device);
    await expect(provider.collect(new Uint8Array(32))).rejects.toMatchObject({ code: "PROVIDER_FAILED" });
    expect(device.seen).toHaveLength(0);
    await expect(provider.collect(new Uint8Array(64))).rejects.toThrow(/does not parse/);
  });
});

describe("DevNsmDevice (the native NSM_IOCTL_RAW)", () => {
  const reason = nsmIoctlUnavailableReason();
  it.skipIf(reason !== null)(
    `reports the OS error of a device that is not the NSM (${reason ?? "addon built"})`,
    async () => {
      const request = encodeNsmAttestationRequest({ nonce: new Uint8Array(64) });
      // No such device, and a character device that is not the NSM (the ioctl is refused).
      await expect(new DevNsmDevice("/nonexistent/nsm").request(request)).rejects.toThrow(/ENOENT/);
      await expect(new DevNsmDevice("/dev/null").request(request)).rejects.toThrow(/\((ENOTTY|EINVAL)\)/);
    },
  );
});
