import type { Evidence } from "../attestation/evidence.js";
import { EnclaveError } from "../errors.js";
import type { AttestationReport } from "../schemas/attestation.js";
import type { FederationJob } from "../schemas/federation.js";
import type { ModelSpec } from "../schemas/model.js";
import type { TensorMap } from "../tensor/tensor.js";
import { PrivacyBudgetExhaustedError } from "../privacy/guard.js";
import {
  assertMechanismWiring,
  type ClientLevelDp,
  type ClientLevelPrivacyReport,
  type ClientLevelRoundPrivacy,
} from "./client-level-dp.js";
import type { Strategy } from "../strategies/types.js";
import type { BudgetProbe, LocalTrainingPlan, TaskOutcome, TrainTask } from "../federation/task.js";

/** The coordinator's view of one agent, local (same thread), in a worker thread, or remote. */
export interface AgentHandle {
  readonly id: string;
  /** Fresh evidence for the coordinator's nonce, and the node key bound into it. */
  evidence(nonce: Uint8Array): Promise<{ evidence: Evidence; publicKey: Uint8Array }>;
  probe(task: TrainTask): Promise<BudgetProbe>;
  run(task: TrainTask): Promise<TaskOutcome>;
  close(): Promise<void>;
}

export interface RoundRecord {
  round: number;
  clients: string[];
  loss: number;
  accuracy: number;
  /**
   * Spent epsilon per participating client after this round: example-level from the agents'
   * ledgers (DP_SGD), or the job's client-level epsilon from the coordinator's ledger (DP_FEDAVG).
   */
  epsilon: Record<string, number>;
  examples: number;
  seconds: number;
  /** DP_FEDAVG: the coordinator's client-level accounting after this round. */
  privacy?: ClientLevelRoundPrivacy;
}

export type ClientState = "active" | "budget_exhausted" | "untrusted" | "failed";

export interface JobResult {
  status: "completed" | "insufficient_clients" | "privacy_budget_exhausted";
  reason?: string;
  rounds: RoundRecord[];
  global: TensorMap;
  clients: { id: string; state: ClientState; epsilon: number; examples: number; reason?: string }[];
  /** DP_FEDAVG: the job's client-level privacy (the clients' epsilon is this epsilon). */
  privacy?: ClientLevelPrivacyReport;
}

export interface CoordinatorOptions {
  job: FederationJob;
  model: ModelSpec;
  plan: LocalTrainingPlan;
  agents: AgentHandle[];
  initial: TensorMap;
  strategy: Strategy;
  /** Attestation gate: verifies a fresh, nonce-bound piece of evidence from the agent. */
  admit: (agent: AgentHandle) => Promise<AttestationReport>;
  evaluate: (weights: TensorMap) => { accuracy: number; loss: number };
  onRound?: (record: RoundRecord, global: TensorMap) => void | Promise<void>;
  /**
   * Fold updates in invitation order rather than arrival order (a small reorder buffer), so a
   * seeded run gives bit-identical models however threads interleave.
   */
  ordered?: boolean;
  /**
   * Required for a DP_FEDAVG job, with `strategy` set to its DpFedAvg: Poisson client sampling and
   * the job's client-level budget, charged in the coordinator's ledger before each release.
   */
  clientLevelDp?: ClientLevelDp;
  onClient?: (event: {
    round: number;
    clientId: string;
    phase: "invited" | "reported" | "excluded";
    detail?: string;
  }) => void;
}

/**
 * Runs a federation job: each round it admits only attested agents whose next round fits their
 * privacy budget, streams their updates into the strategy, evaluates and records the new model.
 * The job ends cleanly when fewer than `min_clients` agents can continue.
 *
 * DP_FEDAVG: each round Poisson-samples clients with q, and runs only if one more round fits the
 * client-level budget (else the job ends "privacy_budget_exhausted"). min_clients then counts the
 * clients still able to take part, not a round's sample: refusing small samples would change the
 * mechanism the accountant charges.
 */
export async function runFederation(o: CoordinatorOptions): Promise<JobResult> {
  const cld = o.clientLevelDp;
  assertMechanismWiring(o.job, o.strategy, cld);
  let global = o.initial;
  const state = new Map<string, { state: ClientState; epsilon: number; examples: number; reason?: string }>(
    o.agents.map((a) => [a.id, { state: "active", epsilon: 0, examples: 0 }]),
  );
  const rounds: RoundRecord[] = [];
  const finish = (status: JobResult["status"], reason?: string): JobResult => ({
    status,
    reason,
    rounds,
    global,
    // Client-level DP covers every client of the population, sampled or not.
    clients: o.agents.map((a) => ({
      id: a.id,
      ...state.get(a.id)!,
      ...(cld ? { epsilon: cld.spentEpsilon() } : {}),
    })),
    ...(cld ? { privacy: cld.report() } : {}),
  });

  for (let round = 1; round <= o.job.rounds; round++) {
    const t0 = Date.now();
    let sampled: Set<string> | undefined;
    if (cld) {
      const refusal = cld.refusal();
      if (refusal) return finish("privacy_budget_exhausted", `round ${round}: ${refusal}`);
      const able = o.agents.filter((a) => state.get(a.id)!.state === "active").length;
      if (able < o.job.min_clients) {
        return finish(
          "insufficient_clients",
          `round ${round}: ${able} client(s) can continue, fewer than min_clients ${o.job.min_clients}`,
        );
      }
      sampled = new Set(cld.sample(o.agents.map((a) => a.id)));
    }
    // Stream: each update is folded into the aggregate as soon as it arrives.
    const aggregation = o.strategy.begin({ round, global });
    const serverControl = aggregation.broadcast.controlVariate;
    const task: TrainTask = { job: o.job, round, model: o.model, global, serverControl, plan: o.plan };
    const invited: AgentHandle[] = [];
    for (const agent of o.agents) {
      const s = state.get(agent.id)!;
      if (s.state !== "active" || (sampled && !sampled.has(agent.id))) continue;
      try {
        // Attest first: even a budget probe carries the task, and with it the global model.
        const report = await o.admit(agent);
        if (report.status !== "TRUSTED") {
          s.state = "untrusted";
          s.reason = "attestation not trusted";
          o.onClient?.({ round, clientId: agent.id, phase: "excluded", detail: s.reason });
          continue;
        }
        const probe = await agent.probe(task);
        s.epsilon = probe.epsilon;
        s.examples = probe.examples;
        if (!(probe.nextEpsilon <= probe.limit)) {
          s.state = "budget_exhausted";
          s.reason = `next round would reach epsilon ${probe.nextEpsilon.toFixed(3)} > ${probe.limit}`;
          o.onClient?.({ round, clientId: agent.id, phase: "excluded", detail: s.reason });
          continue;
        }
        invited.push(agent);
      } catch (err) {
        s.state = "failed";
        s.reason = err instanceof EnclaveError ? `${err.code}: ${err.message}` : "agent error";
        o.onClient?.({ round, clientId: agent.id, phase: "excluded", detail: s.reason });
      }
    }
    if (!cld && invited.length < o.job.min_clients) {
      return finish(
        "insufficient_clients",
        `round ${round}: ${invited.length} client(s) can continue, fewer than min_clients ${o.job.min_clients}`,
      );
    }

    const epsilon: Record<string, number> = {};
    let examples = 0;
    let contributors = 0;
    type Update = Parameters<typeof aggregation.add>[0];
    const slots: (Update | null | undefined)[] = invited.map(() => undefined);
    let nextSlot = 0;
    const fold = (update: Update) => {
      try {
        aggregation.add(update);
        examples += update.numExamples;
        contributors++;
      } catch (err) {
        // AggregationError on a malformed update: that client is dropped, the round goes on.
        const s = state.get(update.clientId)!;
        s.state = "failed";
        s.reason = err instanceof EnclaveError ? `${err.code}: ${err.message}` : "update rejected";
        o.onClient?.({ round, clientId: update.clientId, phase: "excluded", detail: s.reason });
      }
    };
    const deliver = (index: number, update: Update | null) => {
      if (!o.ordered) {
        if (update) fold(update);
        return;
      }
      slots[index] = update;
      while (nextSlot < slots.length && slots[nextSlot] !== undefined) {
        const u = slots[nextSlot];
        slots[nextSlot++] = null; // release it as soon as it is folded in
        if (u) fold(u);
      }
    };
    await Promise.all(
      invited.map(async (agent, index) => {
        let update: Update | null = null;
        o.onClient?.({ round, clientId: agent.id, phase: "invited" });
        const s = state.get(agent.id)!;
        try {
          const out = await agent.run(task);
          s.epsilon = out.metrics.epsilon ?? s.epsilon;
          epsilon[agent.id] = s.epsilon;
          if (out.status === "budget_exhausted") {
            s.state = "budget_exhausted";
            s.reason = "privacy budget exhausted during the round";
          }
          if ((out.metrics.steps ?? 0) > 0) {
            update = {
              clientId: agent.id,
              weights: out.weights,
              numExamples: out.numExamples,
              controlDelta: out.controlDelta,
              metrics: out.metrics.loss !== undefined ? { loss: out.metrics.loss } : undefined,
            };
          }
          o.onClient?.({
            round,
            clientId: agent.id,
            phase: "reported",
            detail: `epsilon ${s.epsilon.toFixed(3)}`,
          });
        } catch (err) {
          s.state = "failed";
          s.reason = err instanceof EnclaveError ? `${err.code}: ${err.message}` : "agent error";
          o.onClient?.({ round, clientId: agent.id, phase: "excluded", detail: s.reason });
        }
        deliver(index, update);
      }),
    );
    if (!cld && contributors < o.job.min_clients) {
      return finish(
        "insufficient_clients",
        `round ${round}: ${contributors} update(s) arrived, fewer than min_clients ${o.job.min_clients}`,
      );
    }
    if (cld) {
      const able = o.agents.filter((a) => state.get(a.id)!.state === "active").length;
      if (contributors === 0 && able < o.job.min_clients) {
        // Nothing to release and no next round: end without spending budget on pure noise.
        return finish(
          "insufficient_clients",
          `round ${round}: no update arrived and ${able} client(s) can continue, fewer than min_clients ${o.job.min_clients}`,
        );
      }
      // Charged in the ledger before the noised aggregate exists (write-ahead).
      try {
        await cld.chargeRound(aggregation, global);
      } catch (err) {
        await cld.settle();
        if (err instanceof PrivacyBudgetExhaustedError)
          return finish("privacy_budget_exhausted", `round ${round}: ${err.message}`);
        throw err;
      }
      try {
        global = aggregation.finish().global;
      } finally {
        await cld.settle();
      }
      for (const id of Object.keys(epsilon)) epsilon[id] = cld.spentEpsilon();
    } else {
      global = aggregation.finish().global;
    }
    const metrics = o.evaluate(global);
    const record: RoundRecord = {
      round,
      clients: invited.map((a) => a.id).filter((id) => id in epsilon),
      loss: metrics.loss,
      accuracy: metrics.accuracy,
      epsilon,
      examples,
      seconds: (Date.now() - t0) / 1000,
      ...(cld && sampled ? { privacy: cld.roundPrivacy(sampled.size) } : {}),
    };
    rounds.push(record);
    await o.onRound?.(record, global);
  }
  return finish("completed");
}
