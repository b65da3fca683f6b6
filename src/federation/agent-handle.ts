import type { Evidence } from "../attestation/evidence.js";
import type { BudgetProbe, TaskOutcome, TrainTask } from "./task.js";

/** An agent's answer to an attestation challenge: evidence and the node key bound into it. */
export interface BoundEvidence {
  evidence: Evidence;
  publicKey: Uint8Array;
  /**
   * SHA-256 of the isolated runtime's manifest (32 bytes) when the agent's tasks run in a microVM;
   * bound into the report data with the nonce and key, so a verifier can pin it.
   */
  runtimeMeasurement?: Uint8Array;
}

/**
 * The coordinator's view of one agent, whatever carries the calls: the same thread (LocalAgent),
 * a worker thread (WorkerAgent over a MessageChannel), or a network session. `runFederation` is
 * the same code over all of them.
 */
export interface AgentHandle {
  readonly id: string;
  /**
   * The key of the channel the agent is reached over, when there is one (the SPKI DER of a
   * network agent's TLS client certificate). Its evidence must bind this key: evidence bound to
   * any other key was made for another session (relayed) and is refused.
   */
  readonly channelKey?: Uint8Array;
  /** Fresh evidence for the coordinator's nonce, and the node key bound into it. */
  evidence(nonce: Uint8Array): Promise<BoundEvidence>;
  /** Epsilon now and after one more round of the task (numbers only). */
  probe(task: TrainTask): Promise<BudgetProbe>;
  /** One round of local training; only the Airlock's output comes back. */
  run(task: TrainTask): Promise<TaskOutcome>;
  close(): Promise<void>;
}
