import { appraisalFacts, type AppraisalFacts } from "../attestation/appraisal-facts.js";
import { appraiseEvidence } from "../attestation/appraise.js";
import { NonceIssuer, type NonceIssuerOptions } from "../attestation/nonce.js";
import type { AgentHandle } from "../federation/agent-handle.js";
import type { AttestationReport } from "../schemas/attestation.js";
import type { TrustPolicy } from "../schemas/trust-policy.js";
import { CoordinatorError } from "./errors.js";

/**
 * A verdict with what the ledger and the dashboard show of it (TCB values, the failed check's
 * name): identifiers and numbers, never the checks' sentences.
 */
export type AdmissionReport = AttestationReport & { facts?: AppraisalFacts };

/** What the coordinator needs from admission: a verdict on one agent, before it sees anything. */
export interface Admission {
  admit(agent: AgentHandle): Promise<AdmissionReport>;
}

/**
 * The coordinator's attestation gate. Every admission challenges the agent with a fresh
 * single-use nonce; the evidence must bind that nonce and the node key, and pass the trust
 * policy. Over a network session the node key is the agent's TLS client key as the handshake
 * showed it (`channelKey`), never the agent's own claim: evidence that names another key is
 * refused (EVIDENCE_KEY_MISMATCH), and evidence made for another session fails the binding. The first trusted admission pins the node's key: a later admission with
 * another key is refused (NODE_KEY_CHANGED) before its evidence is even appraised.
 */
export class AttestationGate implements Admission {
  private readonly nonces: NonceIssuer;
  private readonly pinned = new Map<string, string>();

  constructor(
    private readonly policy: TrustPolicy,
    nonces: NonceIssuerOptions = {},
  ) {
    this.nonces = new NonceIssuer(nonces);
  }

  async admit(agent: AgentHandle): Promise<AdmissionReport> {
    const { nonce } = this.nonces.issue();
    const { evidence, publicKey: claimed, runtimeMeasurement } = await agent.evidence(nonce);
    const publicKey = agent.channelKey ?? claimed;
    if (agent.channelKey && !Buffer.from(claimed).equals(Buffer.from(agent.channelKey)))
      throw new CoordinatorError(
        "EVIDENCE_KEY_MISMATCH",
        `node ${agent.id}: the evidence names a key other than its session's TLS client key (relayed evidence?)`,
      );
    const key = Buffer.from(publicKey).toString("hex");
    const pinned = this.pinned.get(agent.id);
    if (pinned !== undefined && pinned !== key)
      throw new CoordinatorError("NODE_KEY_CHANGED", `node ${agent.id} presented a different key`);
    const { report, result } = await appraiseEvidence(evidence, {
      policy: this.policy,
      binding: { nonce, publicKey, runtimeMeasurement },
      nonceIssuer: this.nonces,
      nodeId: agent.id,
    });
    // Pinned only once trusted: an impostor's failed first attempt must not lock the real node out.
    if (report.status === "TRUSTED") this.pinned.set(agent.id, key);
    return { ...report, facts: appraisalFacts(result) };
  }

  /** The node key pinned for `nodeId` (hex), if it was admitted. */
  pinnedKey(nodeId: string): string | undefined {
    return this.pinned.get(nodeId);
  }
}
