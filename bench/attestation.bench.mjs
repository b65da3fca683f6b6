// Attestation: end-to-end appraisal latency per evidence kind (vendor verifier + trust policy;
// median and p99 over many calls) and parse throughput (documents/s, MB/s), next to baselines
// measured in the same run: one bare ECDSA P-384 verify, one P-256 verify and one Ed25519 verify
// with node:crypto (the machine is shared and noisy, so compare ratios within one run).
//   --filter attestation-verify | attestation-parse  runs one half.
import { createSign, generateKeyPairSync, sign, verify } from "node:crypto";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { appraiseEvidence } from "../dist/attestation/appraise.js";
import { parseSgxQuote, parseTdxQuote } from "../dist/attestation/dcap/index.js";
import { decodeEvidenceText } from "../dist/attestation/evidence-kind.js";
import { parseNitroDocument } from "../dist/attestation/nitro/index.js";
import { parseNvidiaEvidence } from "../dist/attestation/nvidia/index.js";
import { pemToDerList } from "../dist/attestation/pki/index.js";
import { parseTrustPolicy } from "../dist/attestation/policy/load.js";
import { SimulatedProvider } from "../dist/attestation/providers/software.js";
import { parseSoftwareEvidence } from "../dist/attestation/simulated-evidence.js";
import { parseSnpReport } from "../dist/attestation/snp/index.js";

const VECTORS = fileURLToPath(new URL("../test/vectors/", import.meta.url));
const bin = (p) => new Uint8Array(readFileSync(VECTORS + p));
const text = (p) => readFileSync(VECTORS + p, "utf8");

const SAMPLE_MS = 1200;
const MAX_SAMPLES = 400;

/** Per-call latencies (ms) of fn, for up to SAMPLE_MS or MAX_SAMPLES calls after a warm-up. */
async function latencies(fn) {
  for (let i = 0; i < 5; i++) await fn();
  globalThis.gc?.();
  const out = [];
  const end = performance.now() + SAMPLE_MS;
  while (out.length < MAX_SAMPLES && performance.now() < end) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  out.sort((a, b) => a - b);
  const q = (p) => out[Math.min(out.length - 1, Math.floor(p * out.length))];
  return { samples: out.length, median_ms: round(q(0.5)), p99_ms: round(q(0.99)) };
}

/** Calls per second of a synchronous fn (median of 5 runs of >= 100 ms). */
function rate(fn) {
  for (let i = 0; i < 20; i++) fn();
  const rates = [];
  for (let r = 0; r < 5; r++) {
    let calls = 0;
    const t0 = performance.now();
    let t;
    do {
      fn();
      calls++;
      t = performance.now();
    } while (t - t0 < 100);
    rates.push((calls * 1000) / (t - t0));
  }
  rates.sort((a, b) => a - b);
  return rates[2];
}

const round = (x, d = 3) => Number(x.toFixed(d));

async function cases() {
  const sim = new SimulatedProvider({ measurement: new Uint8Array(48) });
  const simEvidence = await sim.collect(new Uint8Array(64));
  const nvidiaBytes = decodeEvidenceText(bin("nvidia-gpu/trustee_hopperAttestationReport.txt"));
  return [
    {
      kind: "snp",
      bytes: bin("sev-snp/trustee_test-report.bin"),
      parse: parseSnpReport,
      opts: {
        at: new Date("2025-01-01T00:00:00Z"),
        certificates: [
          bin("sev-snp/trustee_test-vcek.der"),
          ...pemToDerList(text("sev-snp/go-sev-guest_ask_ark_milan.pem")),
        ],
      },
    },
    {
      kind: "tdx",
      bytes: bin("tdx/dcap-qvl_tdx_quote.bin"),
      parse: parseTdxQuote,
      opts: {
        at: new Date("2025-07-19T10:00:34Z"),
        collateral: JSON.parse(text("tdx/dcap-qvl_tdx_quote_collateral.json")),
      },
    },
    {
      kind: "sgx",
      bytes: bin("sgx/dcap-qvl_sgx_quote.bin"),
      parse: parseSgxQuote,
      opts: {
        at: new Date("2025-07-19T10:01:17Z"),
        collateral: JSON.parse(text("sgx/dcap-qvl_sgx_quote_collateral.json")),
        policy: parseTrustPolicy({
          accepted_tcb_statuses: ["UpToDate", "ConfigurationAndSWHardeningNeeded"],
        }),
      },
    },
    {
      kind: "nitro",
      bytes: bin("nitro/blocky-nitrite_nitro_attestation.cbor"),
      parse: parseNitroDocument,
      opts: { at: new Date("2024-09-07T14:37:40Z") },
    },
    {
      kind: "nvidia",
      bytes: nvidiaBytes,
      parse: parseNvidiaEvidence,
      opts: {
        at: new Date("2025-01-01T00:00:00Z"),
        certificates: pemToDerList(text("nvidia-gpu/trustee_hopper_cert_chain_case1.txt")),
      },
    },
    {
      kind: "simulated",
      bytes: simEvidence.bytes,
      parse: parseSoftwareEvidence,
      opts: { at: new Date(), policy: parseTrustPolicy({ allow_simulated: true }) },
    },
  ];
}

function baselines() {
  const msg = new Uint8Array(1184).fill(7);
  const p384 = generateKeyPairSync("ec", { namedCurve: "P-384" });
  const s384 = createSign("sha384").update(msg).sign(p384.privateKey);
  const p256 = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const s256 = createSign("sha256").update(msg).sign(p256.privateKey);
  const ed = generateKeyPairSync("ed25519");
  const sed = sign(null, msg, ed.privateKey);
  return [
    { op: "ecdsa-p384-sha384-verify", fn: () => verify("sha384", msg, p384.publicKey, s384) },
    { op: "ecdsa-p256-sha256-verify", fn: () => verify("sha256", msg, p256.publicKey, s256) },
    { op: "ed25519-verify", fn: () => verify(null, msg, ed.publicKey, sed) },
  ];
}

export async function run({ json, filter } = {}) {
  const doVerify = !filter || !filter.startsWith("attestation-") || filter === "attestation-verify";
  const doParse = !filter || !filter.startsWith("attestation-") || filter === "attestation-parse";
  const records = [];
  const say = (s) => {
    if (!json) console.log(s);
  };
  const all = await cases();

  const base = {};
  for (const b of baselines()) {
    const l = await latencies(b.fn);
    base[b.op] = l.median_ms;
    records.push({ group: "baseline", op: b.op, ...l });
  }
  say(
    `baseline (same run): ${Object.entries(base)
      .map(([k, v]) => `${k} ${v} ms`)
      .join(", ")}`,
  );

  if (doVerify) {
    say("\nappraisal latency (vendor verification + trust policy), per kind:");
    say("kind        median ms   p99 ms   samples   x P-384 verify   trusted");
    for (const c of all) {
      const probe = await appraiseEvidence(c.bytes, { requireFreshness: false, ...c.opts });
      const l = await latencies(() => appraiseEvidence(c.bytes, { requireFreshness: false, ...c.opts }));
      const ratio = round(l.median_ms / base["ecdsa-p384-sha384-verify"], 1);
      records.push({ group: "verify", kind: c.kind, ...l, x_p384_verify: ratio, trusted: probe.trusted });
      say(
        `${c.kind.padEnd(10)} ${String(l.median_ms).padStart(9)} ${String(l.p99_ms).padStart(8)} ${String(l.samples).padStart(9)} ${String(ratio).padStart(16)}   ${probe.trusted}`,
      );
    }
  }

  if (doParse) {
    say("\nparse throughput (format layer only):");
    say("kind        bytes   docs/s      MB/s");
    for (const c of all) {
      const r = rate(() => c.parse(c.bytes));
      const mbs = round((r * c.bytes.length) / 1e6, 1);
      records.push({
        group: "parse",
        kind: c.kind,
        bytes: c.bytes.length,
        docs_per_s: Math.round(r),
        mb_per_s: mbs,
      });
      say(
        `${c.kind.padEnd(10)} ${String(c.bytes.length).padStart(6)} ${String(Math.round(r)).padStart(8)} ${String(mbs).padStart(9)}`,
      );
    }
  }
  return records;
}
