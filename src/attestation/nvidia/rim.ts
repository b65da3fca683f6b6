import { createHash } from "node:crypto";
import {
  describeChainFailure,
  parseCertificate,
  pemToDerList,
  verifyCertificateChain,
  verifyEcdsaRaw,
} from "../pki/index.js";
import { EvidenceFormatError, type CheckResult } from "../types.js";
import type { NvidiaReferenceMeasurement, NvidiaReferenceMeasurements } from "./reference.js";
import { canonicalize, childElements, parseXml, textOf, XmlFormatError, type XmlElement } from "./xml.js";

/**
 * NVIDIA Reference Integrity Manifests (RIMs): ISO/IEC 19770-2 SWID tags listing golden
 * measurements, signed with an enveloped XML signature (C14N 1.1, ECDSA P-384 / SHA-384) by a
 * certificate chaining to the "NVIDIA CoRIM signing Root CA".
 */

export const NVIDIA_RIM_ROOT_SHA256 = "12977b5115acb0381179279fffeb5a8c4d264971ebb32298023a465fa41df5d1";

export const NVIDIA_RIM_ROOT_PEM = `-----BEGIN CERTIFICATE-----
MIICKTCCAbCgAwIBAgIQRdrjoA5QN73fh1N17LXicDAKBggqhkjOPQQDAzBFMQsw
CQYDVQQGEwJVUzEPMA0GA1UECgwGTlZJRElBMSUwIwYDVQQDDBxOVklESUEgQ29S
SU0gc2lnbmluZyBSb290IENBMCAXDTIzMDMxNjE1MzczNFoYDzIwNTMwMzA4MTUz
NzM0WjBFMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGTlZJRElBMSUwIwYDVQQDDBxO
VklESUEgQ29SSU0gc2lnbmluZyBSb290IENBMHYwEAYHKoZIzj0CAQYFK4EEACID
YgAEuECyi9vNM+Iw2lfUzyBldHAwaC1HF7TCgp12QcEyUTm3Tagxwr48d55+K2VI
lWYIDk7NlAIQdcV/Ff7euGLI+Qauj93HsSI4WX298PpW54RTgz9tC+Q684caR/BX
WEeZo2MwYTAdBgNVHQ4EFgQUpaXrOPK4ZDAk08DBskn594zeZjAwHwYDVR0jBBgw
FoAUpaXrOPK4ZDAk08DBskn594zeZjAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8B
Af8EBAMCAQYwCgYIKoZIzj0EAwMDZwAwZAIwHGDyscDP6ihHqRvZlI3eqZ4YkvjE
1duaN84tAHRVgxVMvNrp5Tnom3idHYGW/dskAjATvjIx6VzHm/4e2GiZAyZEIUBD
OKPzp5ei/A0iUZpdvngenDwV8Qa/wGdiTmJ7Bp4=
-----END CERTIFICATE-----
`;

const SWID_NS = "http://standards.iso.org/iso/19770/-2/2015/schema.xsd";
const DSIG_NS = "http://www.w3.org/2000/09/xmldsig#";
const C14N_11 = "http://www.w3.org/2006/12/xml-c14n11";
const C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const ECDSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
const SHA384_NAMES = new Set([
  "http://www.w3.org/2001/04/xmldsig-more#sha384",
  "http://www.w3.org/2001/04/xmlenc#sha384",
]);
/** A RIM is about 20 KiB; the cap bounds parsing work on hostile input. */
export const MAX_RIM_BYTES = 1024 * 1024;

export interface NvidiaRim {
  tagId: string;
  product?: string;
  /** colloquialVersion: the VBIOS ("96.00.74.00.1A") or driver ("550.90.07") version. */
  version: string;
  component: "vbios" | "driver";
  references: NvidiaReferenceMeasurements;
  /** DER certificates from the signature's KeyInfo, in document order (signer first). */
  certificates: Uint8Array[];
}

export interface NvidiaRimVerification {
  /** True when the XML signature and its certificate chain both verified. */
  trusted: boolean;
  checks: CheckResult[];
  rim: NvidiaRim;
  /** The RIM's reference values; `authenticated` is set only when `trusted`. */
  references: NvidiaReferenceMeasurements;
}

function malformed(message: string): EvidenceFormatError {
  return new EvidenceFormatError("nvidia", `RIM: ${message}`);
}

function parseRoot(xml: string | Uint8Array): XmlElement {
  const text = typeof xml === "string" ? xml : new TextDecoder("utf-8", { fatal: true }).decode(xml);
  if (text.length > MAX_RIM_BYTES) throw malformed(`exceeds ${MAX_RIM_BYTES} characters`);
  try {
    return parseXml(text);
  } catch (error) {
    if (error instanceof XmlFormatError) throw malformed(error.message);
    throw error;
  }
}

function attr(el: XmlElement, local: string, uri = ""): string | undefined {
  return el.attributes.find((a) => a.local === local && a.uri === uri)?.value;
}

function one(parent: XmlElement, uri: string, local: string): XmlElement {
  const found = childElements(parent, uri, local);
  if (found.length !== 1) throw malformed(`expected exactly one ${local} in ${parent.local}`);
  return found[0];
}

/** Parse a RIM's identity, golden measurements and signer certificates (no signature check). */
export function parseNvidiaRim(
  xml: string | Uint8Array,
  options: { component?: "vbios" | "driver" } = {},
): NvidiaRim {
  return rimFrom(parseRoot(xml), options.component);
}

function rimFrom(root: XmlElement, component?: "vbios" | "driver"): NvidiaRim {
  if (root.uri !== SWID_NS || root.local !== "SoftwareIdentity")
    throw malformed("root must be a SWID SoftwareIdentity");
  const tagId = attr(root, "tagId");
  if (!tagId) throw malformed("SoftwareIdentity.tagId missing");
  const meta = one(root, SWID_NS, "Meta");
  const version = attr(meta, "colloquialVersion");
  if (!version || !/^[0-9A-Za-z.]{1,32}$/.test(version))
    throw malformed("Meta.colloquialVersion missing or malformed");
  const kind = component ?? (/^[0-9a-f]{2}(?:\.[0-9a-f]{2}){4}$/i.test(version) ? "vbios" : "driver");

  const payload = one(root, SWID_NS, "Payload");
  const measurements: NvidiaReferenceMeasurement[] = [];
  const seen = new Set<number>();
  for (const r of childElements(payload, SWID_NS, "Resource")) {
    if (attr(r, "type") !== "Measurement") continue;
    const where = `Resource[index=${attr(r, "index") ?? "?"}]`;
    const index = Number(attr(r, "index"));
    const size = Number(attr(r, "size"));
    const count = Number(attr(r, "alternatives"));
    const active = attr(r, "active");
    if (!/^\d{1,3}$/.test(attr(r, "index") ?? "") || index > 253)
      throw malformed(`${where}: index must be 0..253`);
    if (seen.has(index)) throw malformed(`${where}: duplicate index`);
    seen.add(index);
    if (!Number.isInteger(size) || size < 1 || size > 64) throw malformed(`${where}: size must be 1..64`);
    if (active !== "True" && active !== "False") throw malformed(`${where}: active must be True or False`);
    const hashes = r.attributes
      .filter((a) => /^Hash\d+$/.test(a.local))
      .sort((a, b) => Number(a.local.slice(4)) - Number(b.local.slice(4)));
    if (!Number.isInteger(count) || count < 1 || hashes.length !== count) {
      throw malformed(`${where}: alternatives must equal the number of Hash attributes`);
    }
    hashes.forEach((h, i) => {
      if (h.local !== `Hash${i}`) throw malformed(`${where}: Hash attributes must be numbered from 0`);
      if (!new RegExp(`^[0-9a-fA-F]{${2 * size}}$`).test(h.value))
        throw malformed(`${where}: Hash${i} must be ${size} bytes of hex`);
    });
    // RIM indices are 0-based; SPDM measurement indices are 1-based.
    measurements.push({
      index: index + 1,
      size,
      active: active === "True",
      alternatives: hashes.map((h) => h.value.toLowerCase()),
    });
  }
  if (measurements.length === 0) throw malformed("Payload lists no measurements");

  const certificates: Uint8Array[] = [];
  const signatures = childElements(root, DSIG_NS, "Signature");
  if (signatures.length === 1) {
    const keyInfo = childElements(signatures[0], DSIG_NS, "KeyInfo")[0];
    for (const data of keyInfo ? childElements(keyInfo, DSIG_NS, "X509Data") : []) {
      for (const c of childElements(data, DSIG_NS, "X509Certificate")) {
        const b64 = textOf(c).replace(/\s+/g, "");
        certificates.push(
          pemToDerList(`-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`)[0],
        );
      }
    }
  }
  const product = attr(meta, "product");
  return {
    tagId,
    ...(product ? { product } : {}),
    version,
    component: kind,
    references: { component: kind, version, measurements },
    certificates,
  };
}

/**
 * Verify a RIM's enveloped XML signature (Reference URI="" with the enveloped-signature and
 * C14N 1.1 transforms, SHA-384 digest, ECDSA P-384 signature) and its KeyInfo chain to the
 * pinned NVIDIA RIM root at `at`. The golden values returned come from the same parsed tree whose
 * canonical form was digested, so what was signed is what gets compared.
 */
export function verifyNvidiaRim(
  xml: string | Uint8Array,
  options: { at?: Date; component?: "vbios" | "driver" } = {},
): NvidiaRimVerification {
  const at = options.at ?? new Date();
  const root = parseRoot(xml);
  const rim = rimFrom(root, options.component);
  const checks: CheckResult[] = [];

  let signerKey: ReturnType<typeof parseCertificate>["publicKey"] | undefined;
  let signer = "";
  let rootFingerprint = "";
  try {
    if (rim.certificates.length === 0) throw malformed("signature carries no certificates");
    const leaf = parseCertificate(rim.certificates[0]);
    signerKey = leaf.publicKey;
    signer = leaf.subjectCommonName ?? leaf.subject;
    const chain = verifyCertificateChain({
      chain: rim.certificates,
      trustedRoots: [pemToDerList(NVIDIA_RIM_ROOT_PEM)[0]],
      at,
    });
    if (!chain.ok)
      checks.push({
        name: "rim-certificate-chain",
        status: "fail",
        detail: describeChainFailure(chain.failure),
      });
    else {
      rootFingerprint = chain.rootFingerprint;
      checks.push({
        name: "rim-certificate-chain",
        status: rootFingerprint === NVIDIA_RIM_ROOT_SHA256 ? "pass" : "fail",
        detail: `chain of ${chain.path.length} to the pinned NVIDIA CoRIM signing Root CA valid at ${at.toISOString()}`,
      });
    }
  } catch (error) {
    const detail =
      error instanceof Error && "code" in error ? error.message : "RIM certificates could not be read";
    checks.push({ name: "rim-certificate-chain", status: "fail", detail });
  }

  checks.push({ name: "rim-signature", ...checkSignature(root, signerKey) });

  const trusted = checks.every((c) => c.status === "pass");
  const references: NvidiaReferenceMeasurements = trusted
    ? { ...rim.references, authenticated: { signer, rootFingerprint } }
    : rim.references;
  return { trusted, checks, rim, references };
}

function checkSignature(
  root: XmlElement,
  key: ReturnType<typeof parseCertificate>["publicKey"] | undefined,
): Omit<CheckResult, "name"> {
  const fail = (detail: string) => ({ status: "fail" as const, detail });
  const signatures = childElements(root, DSIG_NS, "Signature");
  if (signatures.length !== 1 || countDescendants(root, DSIG_NS, "Signature") !== 1) {
    return fail("RIM must carry exactly one enveloped ds:Signature");
  }
  const signature = signatures[0];
  let signedInfo: XmlElement;
  try {
    signedInfo = one(signature, DSIG_NS, "SignedInfo");
    const elements = signedInfo.children.filter((c) => c.type === "element") as XmlElement[];
    if (elements.length !== 3 || elements.some((e) => e.uri !== DSIG_NS)) {
      return fail("SignedInfo must hold CanonicalizationMethod, SignatureMethod and one Reference");
    }
    const [c14n, method, reference] = elements;
    if (
      c14n.local !== "CanonicalizationMethod" ||
      method.local !== "SignatureMethod" ||
      reference.local !== "Reference"
    ) {
      return fail("SignedInfo must hold CanonicalizationMethod, SignatureMethod and one Reference");
    }
    const c14nAlg = attr(c14n, "Algorithm");
    if (c14nAlg !== C14N_11 && c14nAlg !== C14N_10) return fail("unsupported canonicalization method");
    if (attr(method, "Algorithm") !== ECDSA_SHA384) return fail("signature method must be ecdsa-sha384");
    if (attr(reference, "URI") !== "") return fail('Reference URI must be "" (the whole document)');
    const transforms = childElements(one(reference, DSIG_NS, "Transforms"), DSIG_NS, "Transform").map((t) =>
      attr(t, "Algorithm"),
    );
    if (
      transforms.length !== 2 ||
      transforms[0] !== ENVELOPED ||
      (transforms[1] !== C14N_11 && transforms[1] !== C14N_10)
    ) {
      return fail("Reference transforms must be enveloped-signature then C14N");
    }
    if (!SHA384_NAMES.has(attr(one(reference, DSIG_NS, "DigestMethod"), "Algorithm") ?? "")) {
      return fail("digest method must be SHA-384");
    }
    const expectedDigest = base64Strict(textOf(one(reference, DSIG_NS, "DigestValue")));
    const digest = createHash("sha384").update(canonicalize(root, signature), "utf8").digest();
    if (!expectedDigest || !digest.equals(expectedDigest))
      return fail("digest of the canonical document does not match");
    const sig = base64Strict(textOf(one(signature, DSIG_NS, "SignatureValue")));
    if (!sig || sig.length !== 96) return fail("SignatureValue must be a 96-byte ECDSA P-384 r||s");
    if (!key) return fail("no signer certificate");
    const ok = verifyEcdsaRaw({
      publicKey: key,
      curve: "P-384",
      hash: "sha384",
      data: Buffer.from(canonicalize(signedInfo), "utf8"),
      signature: sig,
    });
    return ok
      ? { status: "pass", detail: "enveloped XML signature (C14N 1.1, ECDSA P-384/SHA-384) verifies" }
      : fail("XML signature does not verify with the signer certificate");
  } catch (error) {
    if (error instanceof EvidenceFormatError) return fail(error.message);
    throw error;
  }
}

function countDescendants(el: XmlElement, uri: string, local: string): number {
  let n = 0;
  for (const c of el.children) {
    if (c.type !== "element") continue;
    if (c.uri === uri && c.local === local) n++;
    n += countDescendants(c, uri, local);
  }
  return n;
}

function base64Strict(text: string): Buffer | undefined {
  const b64 = text.replace(/\s+/g, "");
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64) || b64.length === 0)
    return undefined;
  return Buffer.from(b64, "base64");
}
