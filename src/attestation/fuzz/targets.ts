import { generateKeyPairSync, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { appraiseEvidence } from "../appraise.js";
import { parseSgxQuote, parseTdxQuote, verifyTdxQuote, type DcapCollateral } from "../dcap/index.js";
import { decodeEvidenceText } from "../evidence-kind.js";
import { parseNitroDocument, verifyNitroDocument } from "../nitro/index.js";
import { parseNvidiaEvidence, verifyNvidiaGpuEvidence } from "../nvidia/index.js";
import { pemToDerList } from "../pki/index.js";
import { parseTrustPolicyText } from "../policy/load.js";
import { encodeSnpCertTable, parseSnpCertTable } from "../providers/snp-cert-table.js";
import {
  encodeSoftwareEvidence,
  rawEd25519PublicKey,
  verifySoftwareEvidence,
} from "../simulated-evidence.js";
import { parseSnpReport, verifySnpReport } from "../snp/index.js";
import type { FuzzTarget } from "./fuzz.js";

/** Real evidence from the repository's test vectors, plus freshly signed simulated evidence. */
export function loadSeeds(vectorRoot: string) {
  const bin = (p: string) => new Uint8Array(readFileSync(join(vectorRoot, p)));
  const text = (p: string) => readFileSync(join(vectorRoot, p), "utf8");
  const { privateKey } = generateKeyPairSync("ed25519");
  const simulated = encodeSoftwareEvidence(
    {
      label: "SIMULATED",
      timestamp: new Date("2026-01-01T00:00:00Z"),
      measurement: new Uint8Array(48).fill(3),
      reportData: new Uint8Array(64).fill(4),
      nodePublicKey: rawEd25519PublicKey(privateKey),
    },
    (m) => new Uint8Array(sign(null, m, privateKey)),
  );
  const milan = pemToDerList(text("sev-snp/go-sev-guest_ask_ark_milan.pem"));
  const vcek = bin("sev-snp/trustee_test-vcek.der");
  return {
    snp: [
      bin("sev-snp/trustee_test-report.bin"),
      bin("sev-snp/go-sev-guest_attestation.bin"),
      bin("sev-snp/trustee_test-vlek-report.bin"),
    ],
    snpCerts: { vcek, chain: milan },
    snpTable: encodeSnpCertTable([
      { guid: "63da758d-e664-4564-adc5-f4b93be8accd", der: vcek },
      { guid: "4ab7b379-bbac-4fe4-a02f-05aef327c782", der: milan[0] },
      { guid: "c0b406a4-a803-4952-9743-3fb6014cd0ae", der: milan[1] },
    ]),
    tdx: [
      bin("tdx/dcap-qvl_tdx_quote.bin"),
      bin("tdx/trustee_tdx_quote_4.dat"),
      bin("tdx/trustee_tdx_quote_5.dat"),
      bin("tdx/go-tdx-guest_quote_v5_sample.dat"),
    ],
    tdxCollateral: JSON.parse(text("tdx/dcap-qvl_tdx_quote_collateral.json")) as DcapCollateral,
    sgx: [bin("sgx/dcap-qvl_sgx_quote.bin")],
    nitro: [
      bin("nitro/blocky-nitrite_nitro_attestation.cbor"),
      bin("nitro/blocky-nitrite_selfsigned_attestation.cbor"),
    ],
    nvidia: [decodeEvidenceText(bin("nvidia-gpu/trustee_hopperAttestationReport.txt"))],
    nvidiaChain: text("nvidia-gpu/trustee_hopper_cert_chain_case1.txt"),
    simulated: [simulated],
    policy: [
      new TextEncoder().encode(
        "allow_simulated: true\nmax_evidence_age_seconds: 60\nsnp:\n  min_tcb: { snp: 8 }\n  reference_values:\n" +
          `    - measurement: "${"ab".repeat(48)}"\nnvidia:\n  reference_measurements:\n    "2": ["aa"]\n`,
      ),
      new TextEncoder().encode(
        JSON.stringify({ allowed_kinds: ["tdx", "sgx"], accepted_tcb_statuses: ["UpToDate"] }),
      ),
    ],
  };
}

/**
 * One target per parser (the strict format layer, where hostile bytes land first), one per full
 * verifier (certificates, CBOR, collateral inside the evidence), and the appraisal that routes
 * arbitrary bytes by their detected kind.
 */
export function fuzzTargets(vectorRoot: string): { parsers: FuzzTarget[]; verifiers: FuzzTarget[] } {
  const s = loadSeeds(vectorRoot);
  const at = new Date("2025-07-19T10:00:34Z");
  const parsers: FuzzTarget[] = [
    { name: "snp report parser", seeds: s.snp, run: (b) => parseSnpReport(b) },
    { name: "dcap tdx quote parser", seeds: s.tdx, run: (b) => parseTdxQuote(b) },
    { name: "dcap sgx quote parser", seeds: s.sgx, run: (b) => parseSgxQuote(b) },
    { name: "nitro cbor/cose parser", seeds: s.nitro, run: (b) => parseNitroDocument(b) },
    { name: "nvidia spdm parser", seeds: s.nvidia, run: (b) => parseNvidiaEvidence(b) },
    { name: "simulated evidence", seeds: s.simulated, run: (b) => verifySoftwareEvidence(b) },
    { name: "snp certificate table", seeds: [s.snpTable], run: (b) => parseSnpCertTable(b) },
    {
      name: "trust policy text",
      seeds: s.policy,
      run: (b) => parseTrustPolicyText(Buffer.from(b).toString("utf8")),
    },
  ];
  const verifiers: FuzzTarget[] = [
    {
      name: "snp verifier",
      seeds: s.snp,
      run: (b) =>
        verifySnpReport(b, {
          at: new Date("2025-01-01"),
          certificates: [s.snpCerts.vcek, ...s.snpCerts.chain],
        }),
    },
    {
      name: "tdx verifier",
      seeds: s.tdx,
      run: (b) => verifyTdxQuote(b, { at, collateral: s.tdxCollateral }),
    },
    {
      name: "nitro verifier",
      seeds: s.nitro,
      run: (b) => verifyNitroDocument(b, { at: new Date("2024-09-07T14:37:40Z") }),
    },
    {
      name: "nvidia verifier",
      seeds: s.nvidia,
      run: (b) => verifyNvidiaGpuEvidence(b, s.nvidiaChain, { at }),
    },
    {
      name: "appraisal (kind detected from the bytes)",
      seeds: [...s.snp, ...s.tdx, ...s.sgx, ...s.nitro, ...s.nvidia, ...s.simulated],
      run: (b) => appraiseEvidence(b, { at, requireFreshness: false, certificates: [s.snpCerts.vcek] }),
    },
  ];
  return { parsers, verifiers };
}
