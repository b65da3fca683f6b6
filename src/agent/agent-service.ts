import type { AgentStatusSource, BudgetStatus } from "../api/sidecar.js";
import type { PrivacyGuard } from "../privacy/guard.js";
import type { AttestationReport } from "../schemas/attestation.js";
import { EPSILON_HARD_CEILING } from "../schemas/privacy.js";

interface Counters {
  tasks_completed: number;
  tasks_refused: number;
  train_steps: number;
  train_examples: number;
  airlock_drops: number;
  attestations: number;
}

/**
 * The agent's single state object. The executor writes to it (attestation, the guard it enforces,
 * counters) and the management sidecar reads from it, so the budget shown is the budget enforced.
 */
export class AgentService implements AgentStatusSource {
  private report: AttestationReport | null = null;
  private guard: PrivacyGuard | null = null;
  private guardInfo: { datasetId: string; target: number } | null = null;
  private fault: string | null = null;
  private readonly counters: Counters = {
    tasks_completed: 0,
    tasks_refused: 0,
    train_steps: 0,
    train_examples: 0,
    airlock_drops: 0,
    attestations: 0,
  };

  constructor(readonly nodeId: string) {}

  setAttestation(report: AttestationReport): void {
    this.report = report;
    this.counters.attestations++;
  }

  setGuard(guard: PrivacyGuard, datasetId: string, targetEpsilon: number): void {
    this.guard = guard;
    this.guardInfo = { datasetId, target: targetEpsilon };
  }

  setFault(reason: string | null): void {
    this.fault = reason;
  }

  count(name: keyof Counters, by = 1): void {
    this.counters[name] += by;
  }

  health(): { healthy: true } | { healthy: false; reason: string } {
    return this.fault ? { healthy: false, reason: this.fault } : { healthy: true };
  }

  attestation(): AttestationReport | null {
    return this.report;
  }

  budget(): BudgetStatus {
    const spent = this.guard ? this.guard.spentEpsilon() : 0;
    const target = this.guardInfo?.target ?? EPSILON_HARD_CEILING;
    const limit = Math.min(target, EPSILON_HARD_CEILING);
    return {
      epsilon: spent,
      target_epsilon: target,
      ceiling: EPSILON_HARD_CEILING,
      // The delta the epsilon is at: min(the job's, the dataset's accounting delta).
      delta: this.guard?.delta ?? 0,
      remaining: Math.max(0, limit - spent),
      steps: this.guard?.steps ?? 0,
      dataset_id: this.guardInfo?.datasetId ?? null,
    };
  }

  metrics(): string {
    const b = this.budget();
    const trusted = this.report?.status === "TRUSTED" ? 1 : 0;
    const lines: string[] = [];
    const metric = (name: string, type: "gauge" | "counter", help: string, value: number) => {
      lines.push(
        `# HELP ${name} ${help}`,
        `# TYPE ${name} ${type}`,
        `${name} ${Number.isFinite(value) ? value : "NaN"}`,
      );
    };
    metric("enclave_attested", "gauge", "1 when the node's current attestation is TRUSTED.", trusted);
    metric("enclave_healthy", "gauge", "1 when the agent is healthy.", this.fault ? 0 : 1);
    metric("enclave_privacy_epsilon_spent", "gauge", "Epsilon spent on the current dataset.", b.epsilon);
    metric("enclave_privacy_epsilon_target", "gauge", "Epsilon target of the current job.", b.target_epsilon);
    metric("enclave_privacy_epsilon_remaining", "gauge", "Epsilon left before the limit.", b.remaining);
    for (const [k, v] of Object.entries(this.counters)) {
      metric(`enclave_${k}_total`, "counter", `Total ${k.replace(/_/g, " ")}.`, v);
    }
    return lines.join("\n") + "\n";
  }
}
