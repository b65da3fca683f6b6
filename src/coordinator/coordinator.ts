import { EnclaveError } from "../errors.js";
import type { AgentHandle } from "../federation/agent-handle.js";
import { DROPOUT_CODES } from "../federation/errors.js";
import type { LocalTrainingPlan, TaskOutcome, TrainTask } from "../federation/task.js";
import { weightsHash } from "../model/safetensors.js";
import type { FederationJob } from "../schemas/federation.js";
import type { ModelSpec } from "../schemas/model.js";
import type { RoundAggregator, Strategy } from "../strategies/types.js";
import type { TensorMap } from "../tensor/tensor.js";
import type { Admission } from "./attestation-gate.js";
import {
  assertMechanismWiring,
  type ClientLevelPrivacyReport,
  type ClientLevelRoundPrivacy,
} from "./client-level-dp.js";
import type { CoordinatorEvent, CoordinatorEventListener } from "./events.js";
import { isJobEnd, roundPolicyOf, type Invitation, type JobEnd, type RoundPolicy } from "./round-policy.js";
import { UpdateCollector } from "./update-collector.js";

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

/**
 * A client's standing in the job. "dropped": it left a round (disconnected, missed the deadline)
 * and is invited again at the next round; the other exclusions are for the rest of the job.
 */
export type ClientState = "active" | "dropped" | "budget_exhausted" | "untrusted" | "failed";

export interface JobResult {
  status: "completed" | "insufficient_clients" | "privacy_budget_exhausted" | "aborted";
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
  /**
   * The aggregation. A DP_FEDAVG job needs its ClientLevelDp here: the wrapper that samples
   * clients, charges the client-level budget and releases the noised aggregate.
   */
  strategy: Strategy;
  /** Attestation: an AttestationGate (fresh single-use nonces, node keys pinned). */
  gate: Admission;
  evaluate: (weights: TensorMap) => { accuracy: number; loss: number };
  /** Every step of the job, in order; awaited before the coordinator goes on. */
  onEvent?: CoordinatorEventListener;
  /**
   * Fold updates in invitation order rather than arrival order (a small reorder buffer), so a
   * seeded run gives bit-identical models however threads interleave.
   */
  ordered?: boolean;
  /** Abort: the job ends "aborted" at the next phase boundary (updates in flight are dropped). */
  signal?: AbortSignal;
  /**
   * Resume after a restart: the rounds already released, the global model checkpointed after the
   * last of them and the clients' standing; the job goes on at the next round, and no round runs
   * twice. `resumeFederation` fills this from a JobStore checkpoint (and the strategy's state).
   */
  resume?: {
    rounds: RoundRecord[];
    global: TensorMap;
    clients?: readonly ({ id: string } & ClientRecord)[];
  };
}

/** A client's standing in a job (kept across a restart by the JobStore). */
export interface ClientRecord {
  state: ClientState;
  epsilon: number;
  examples: number;
  reason?: string;
}

/** Why an agent's error excludes it: its code and message (never data), or a generic phrase. */
function reasonOf(err: unknown, fallback: string): string {
  return err instanceof EnclaveError ? `${err.code}: ${err.message}` : fallback;
}

/** A dropout (the agent may come back next round) or a failure (out for the job). */
function stateOf(err: unknown): "dropped" | "failed" {
  return err instanceof EnclaveError && DROPOUT_CODES.has(err.code) ? "dropped" : "failed";
}

const ABORTED: JobEnd = { end: "aborted", reason: "aborted by an admin" };

/**
 * Runs a federation job. Each round has four phases: select (who may be invited), admit and
 * probe (attested agents whose next round fits their budget), collect (updates streamed into the
 * strategy as they arrive) and release (the new global model, evaluated and recorded). The job
 * ends cleanly when fewer than `min_clients` agents can continue, and the strategy's round policy
 * (ClientLevelDp for DP_FEDAVG) decides what that count means and how a round is released.
 */
export async function runFederation(o: CoordinatorOptions): Promise<JobResult> {
  assertMechanismWiring(o.job, o.strategy);
  return new FederationRun(o).run();
}

/** Active clients, and dropped ones (invited again: a restarted agent rejoins at the next round). */
function able(state: ClientState): boolean {
  return state === "active" || state === "dropped";
}

class FederationRun {
  private global: TensorMap;
  private readonly policy: RoundPolicy;
  private readonly clients: Map<string, ClientRecord>;
  private readonly rounds: RoundRecord[] = [];
  private readonly jobId: string;

  constructor(private readonly o: CoordinatorOptions) {
    this.global = o.resume?.global ?? o.initial;
    this.rounds.push(...(o.resume?.rounds ?? []));
    this.policy = roundPolicyOf(o.strategy);
    this.clients = new Map(o.agents.map((a) => [a.id, { state: "active", epsilon: 0, examples: 0 }]));
    for (const { id, ...kept } of o.resume?.clients ?? [])
      if (this.clients.has(id)) this.clients.set(id, kept);
    this.jobId = o.job.job_id;
  }

  async run(): Promise<JobResult> {
    const { job } = this.o;
    await this.emit({
      type: "job_started",
      job_id: this.jobId,
      clients: this.o.agents.map((a) => a.id),
      rounds: job.rounds,
      min_clients: job.min_clients,
      strategy: job.strategy,
      mechanism: job.privacy.mechanism,
      model_sha256: weightsHash(this.global),
      target_epsilon: job.privacy.target_epsilon,
      delta: job.privacy.delta,
    });
    for (let round = this.rounds.length + 1; round <= job.rounds; round++) {
      const end = this.o.signal?.aborted ? ABORTED : await this.round(round);
      if (end) return this.finish(end.end, end.reason);
    }
    return this.finish("completed");
  }

  private async round(round: number): Promise<JobEnd | null> {
    const t0 = Date.now();
    const minClients = this.o.job.min_clients;
    // Phase 1: select.
    const invitation = this.policy.select(
      round,
      this.o.agents.map((a) => a.id),
      this.able(),
      minClients,
    );
    if (isJobEnd(invitation)) return invitation;
    await this.emit({
      type: "round_started",
      job_id: this.jobId,
      round,
      ...(invitation.sampled ? { sampled: [...invitation.sampled] } : {}),
    });
    const aggregation = this.o.strategy.begin({ round, global: this.global });
    const task: TrainTask = {
      job: this.o.job,
      round,
      model: this.o.model,
      global: this.global,
      serverControl: aggregation.broadcast.controlVariate,
      plan: this.o.plan,
    };
    // Phase 2: admit and probe.
    const invited = await this.admit(round, task, invitation);
    if (this.o.signal?.aborted) return ABORTED;
    const thin = this.policy.afterAdmission(round, invited.length, minClients);
    if (thin) return thin;
    // Phase 3: collect.
    const collected = await this.collect(round, task, invited, aggregation);
    if (this.o.signal?.aborted) return ABORTED;
    const few = this.policy.afterCollection(round, collected.contributors, this.able(), minClients);
    if (few) return few;
    // Phase 4: release.
    const released = await this.policy.release(round, aggregation, this.global);
    if (isJobEnd(released)) return released;
    this.global = released;
    await this.record(round, t0, invited, invitation, collected);
    return null;
  }

  /** Attest first: even a budget probe carries the task, and with it the global model. */
  private async admit(round: number, task: TrainTask, invitation: Invitation): Promise<AgentHandle[]> {
    const invited: AgentHandle[] = [];
    for (const agent of this.o.agents) {
      const s = this.clients.get(agent.id)!;
      if (!able(s.state) || (invitation.sampled && !invitation.sampled.has(agent.id))) continue;
      try {
        const report = await this.o.gate.admit(agent);
        await this.emit({
          type: "client_attested",
          job_id: this.jobId,
          round,
          client_id: agent.id,
          status: report.status,
          hardware_type: report.hardware_type,
          measurement_hash: report.measurement_hash,
          ...report.facts,
        });
        if (report.status !== "TRUSTED") {
          await this.exclude(round, agent.id, "untrusted", "attestation not trusted");
          continue;
        }
        const probe = await agent.probe(task);
        s.epsilon = probe.epsilon;
        s.examples = probe.examples;
        if (!(probe.nextEpsilon <= probe.limit)) {
          await this.exclude(
            round,
            agent.id,
            "budget_exhausted",
            `next round would reach epsilon ${probe.nextEpsilon.toFixed(3)} > ${probe.limit}`,
          );
          continue;
        }
        s.state = "active";
        invited.push(agent);
      } catch (err) {
        await this.exclude(round, agent.id, stateOf(err), reasonOf(err, "agent error"));
      }
    }
    return invited;
  }

  private async collect(
    round: number,
    task: TrainTask,
    invited: AgentHandle[],
    aggregation: RoundAggregator,
  ): Promise<UpdateCollector> {
    const collector = new UpdateCollector(aggregation, invited.length, this.o.ordered ?? false, (id, err) =>
      this.exclude(round, id, "failed", reasonOf(err, "update rejected")),
    );
    await Promise.all(
      invited.map(async (agent, index) => {
        await this.emit({ type: "client_invited", job_id: this.jobId, round, client_id: agent.id });
        let outcome: TaskOutcome | null = null;
        try {
          outcome = await agent.run(task);
        } catch (err) {
          await this.exclude(round, agent.id, stateOf(err), reasonOf(err, "agent error"));
        }
        if (outcome) await this.reported(round, agent.id, outcome, collector);
        await collector.deliver(
          index,
          agent.id,
          outcome && (outcome.metrics.steps ?? 0) > 0 ? outcome : null,
        );
      }),
    );
    return collector;
  }

  private async reported(
    round: number,
    id: string,
    out: TaskOutcome,
    collector: UpdateCollector,
  ): Promise<void> {
    const s = this.clients.get(id)!;
    const before = s.epsilon;
    s.epsilon = out.metrics.epsilon ?? s.epsilon;
    collector.epsilon[id] = s.epsilon;
    if (out.status === "budget_exhausted") {
      s.state = "budget_exhausted";
      s.reason = "privacy budget exhausted during the round";
    }
    await this.emit({
      type: "client_reported",
      job_id: this.jobId,
      round,
      client_id: id,
      epsilon_before: before,
      epsilon: s.epsilon,
      examples: out.numExamples,
      steps: out.metrics.steps ?? 0,
      update_sha256: weightsHash(out.weights),
    });
  }

  private async record(
    round: number,
    t0: number,
    invited: AgentHandle[],
    invitation: Invitation,
    collected: UpdateCollector,
  ): Promise<void> {
    const metrics = this.o.evaluate(this.global);
    const epsilon: Record<string, number> = {};
    for (const [id, e] of Object.entries(collected.epsilon)) epsilon[id] = this.policy.clientEpsilon(e);
    const privacy = this.policy.roundPrivacy(invitation);
    const record: RoundRecord = {
      round,
      clients: invited.map((a) => a.id).filter((id) => id in epsilon),
      loss: metrics.loss,
      accuracy: metrics.accuracy,
      epsilon,
      examples: collected.examples,
      seconds: (Date.now() - t0) / 1000,
      ...(privacy ? { privacy } : {}),
    };
    this.rounds.push(record);
    await this.emit({
      type: "round_completed",
      job_id: this.jobId,
      round,
      record,
      model_sha256: weightsHash(this.global),
      global: this.global,
      strategy: this.o.strategy.exportState(),
    });
  }

  private able(): number {
    let n = 0;
    for (const s of this.clients.values()) if (able(s.state)) n++;
    return n;
  }

  private async exclude(round: number, id: string, state: Exclude<ClientState, "active">, reason: string) {
    const s = this.clients.get(id)!;
    s.state = state;
    s.reason = reason;
    await this.emit({ type: "client_excluded", job_id: this.jobId, round, client_id: id, state, reason });
  }

  private async finish(status: JobResult["status"], reason?: string): Promise<JobResult> {
    const privacy = this.policy.jobPrivacy();
    const result: JobResult = {
      status,
      reason,
      rounds: this.rounds,
      global: this.global,
      // Client-level DP covers every client of the population, sampled or not.
      clients: this.o.agents.map((a) => {
        const s = this.clients.get(a.id)!;
        return { id: a.id, ...s, epsilon: this.policy.clientEpsilon(s.epsilon) };
      }),
      ...(privacy ? { privacy } : {}),
    };
    await this.emit({
      type: "job_finished",
      job_id: this.jobId,
      status,
      ...(reason !== undefined ? { reason } : {}),
      rounds_completed: this.rounds.length,
      model_sha256: weightsHash(this.global),
    });
    return result;
  }

  private async emit(event: CoordinatorEvent): Promise<void> {
    await this.o.onEvent?.(event);
  }
}
