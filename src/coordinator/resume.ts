import { runFederation, type CoordinatorOptions, type JobResult } from "./coordinator.js";
import { CoordinatorError } from "./errors.js";
import type { JobCheckpoint } from "./job-store.js";

/**
 * runFederation from a job's last checkpoint (a JobStore's `claim` after a restart), or from the
 * start without one. The strategy gets its state back (optimizer moments, control variates), the
 * global model is the checkpointed one, the rounds released before go into the result as they
 * were and the job goes on at the next round: every round number appears once. Clients keep their
 * standing and spent epsilon (a site excluded before stays excluded; one not reached again still
 * reports what it spent). Budget is never re-granted: the agents' ledgers (example-level DP) and
 * the coordinator's ledger (client-level DP, re-read when the job's ClientLevelDp opens) hold
 * every step taken, those of the interrupted round included.
 */
export async function resumeFederation(
  o: CoordinatorOptions,
  checkpoint?: JobCheckpoint,
): Promise<JobResult> {
  if (!checkpoint) return runFederation(o);
  checkpoint.rounds.forEach((r, i) => {
    if (r.round !== i + 1)
      throw new CoordinatorError(
        "CHECKPOINT_INVALID",
        `job ${o.job.job_id}: the checkpoint's rounds are not 1..${checkpoint.rounds.length} (round ${i + 1} missing)`,
      );
  });
  if (checkpoint.strategy) o.strategy.restoreState(checkpoint.strategy);
  return runFederation({
    ...o,
    resume: { rounds: checkpoint.rounds, global: checkpoint.global, clients: checkpoint.clients },
  });
}
