import type { Database } from "../storage/database.js";
import type { TaskOutcome, TrainTask } from "../federation/task.js";
import { weightsHash } from "../model/safetensors.js";
import type { GuestTaskRecord } from "../agent/isolated-round.js";
import { AuditChain } from "./chain.js";
import type { HeadSigner } from "./entry.js";

/**
 * A site's own audit chain, in the agent's database (its workspace): one `update_released` entry
 * per round for what left through the Airlock (the tensor map's SHA-256, the examples and steps,
 * the spent epsilon after the round), written before the update goes; under `--isolation`, one
 * `guest_task` entry before it for what the round's guest did. A site cross-checks the
 * coordinator's record against it (`enclave audit cross-check`). With the site's kit key the head
 * is signed after every release, so the record is the site's own word: `cross-check --site-cert`
 * refuses a site chain that another key wrote or that was edited after it was signed.
 */
export class SiteChain {
  private constructor(readonly chain: AuditChain) {}

  static async open(db: Database, siteId: string, signer?: HeadSigner): Promise<SiteChain> {
    return new SiteChain(await AuditChain.open(db, { actor: `site/${siteId}`, role: "site", signer }));
  }

  /** What an isolated round's guest did (ids, digests, numbers), before its update (if any) leaves. */
  async guestTask(task: TrainTask, record: GuestTaskRecord): Promise<void> {
    await this.chain.append("guest_task", { job_id: task.job.job_id, round: task.round, ...record });
  }

  async released(task: TrainTask, out: TaskOutcome): Promise<void> {
    await this.chain.append("update_released", {
      job_id: task.job.job_id,
      round: task.round,
      update_sha256: weightsHash(out.weights),
      examples: out.numExamples,
      steps: out.metrics.steps ?? 0,
      epsilon_after: out.metrics.epsilon ?? 0,
      delta: task.job.privacy.delta,
    });
    await this.chain.signHead("round_end");
  }
}
