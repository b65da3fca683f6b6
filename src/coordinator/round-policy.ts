import type { RoundAggregator, Strategy } from "../strategies/types.js";
import type { TensorMap } from "../tensor/tensor.js";
import type { ClientLevelPrivacyReport, ClientLevelRoundPrivacy } from "./client-level-dp.js";
import type { JobResult } from "./coordinator.js";

/** The job ends here, with this status and reason. */
export interface JobEnd {
  end: Exclude<JobResult["status"], "completed">;
  reason: string;
}

/** Phase select's answer: whom the round may invite (null: every client able to continue). */
export interface Invitation {
  sampled: ReadonlySet<string> | null;
}

/**
 * What a strategy wrapper may decide around a round's aggregation: who is invited, when too few
 * clients end the job, how the aggregate is released and what epsilon the records show. A plain
 * strategy runs under `plainRounds`; ClientLevelDp (DP_FEDAVG) wraps its DpFedAvg and brings its own.
 */
export interface RoundPolicy {
  /** Phase select, before anyone is contacted. `able`: clients still able to continue. */
  select(round: number, population: readonly string[], able: number, minClients: number): Invitation | JobEnd;
  /** After admit/probe: `admitted` clients will train. */
  afterAdmission(round: number, admitted: number, minClients: number): JobEnd | null;
  /** After collect: `contributors` updates were folded in; `able` clients can still continue. */
  afterCollection(round: number, contributors: number, able: number, minClients: number): JobEnd | null;
  /** Phase release: the new global model, or why nothing may be released. */
  release(round: number, aggregation: RoundAggregator, global: TensorMap): Promise<TensorMap | JobEnd>;
  /** The epsilon records show for a client whose agent reported `agentEpsilon`. */
  clientEpsilon(agentEpsilon: number): number;
  roundPrivacy(invitation: Invitation): ClientLevelRoundPrivacy | undefined;
  jobPrivacy(): ClientLevelPrivacyReport | undefined;
}

export function isJobEnd(x: unknown): x is JobEnd {
  return typeof x === "object" && x !== null && "end" in x;
}

/** Example-level DP (DP_SGD at the agents): min_clients counts admitted clients and arrived updates. */
export const plainRounds: RoundPolicy = {
  select: () => ({ sampled: null }),
  afterAdmission: (round, admitted, minClients) =>
    admitted < minClients
      ? {
          end: "insufficient_clients",
          reason: `round ${round}: ${admitted} client(s) can continue, fewer than min_clients ${minClients}`,
        }
      : null,
  afterCollection: (round, contributors, _able, minClients) =>
    contributors < minClients
      ? {
          end: "insufficient_clients",
          reason: `round ${round}: ${contributors} update(s) arrived, fewer than min_clients ${minClients}`,
        }
      : null,
  release: async (_round, aggregation) => aggregation.finish().global,
  clientEpsilon: (agentEpsilon) => agentEpsilon,
  roundPrivacy: () => undefined,
  jobPrivacy: () => undefined,
};

/** A strategy that brings its own round policy (a wrapper such as ClientLevelDp). */
export type PolicyStrategy = Strategy & { readonly roundPolicy: RoundPolicy };

export function roundPolicyOf(strategy: Strategy): RoundPolicy {
  return (strategy as Partial<PolicyStrategy>).roundPolicy ?? plainRounds;
}
