import type { AuditEntry } from "./entry.js";

export interface CrossCheckProblem {
  job_id: string;
  round: number;
  /** The entry of the site's chain (or the coordinator's, when the site has none) it concerns. */
  seq: number;
  chain: "site" | "coordinator";
  message: string;
}

export interface CrossCheckResult {
  consistent: boolean;
  site: string;
  /** Rounds the site released an update in. */
  released: number;
  /** Updates of this site the coordinator recorded. */
  received: number;
  problems: CrossCheckProblem[];
}

const key = (job: unknown, round: unknown) => `${String(job)}#${String(round)}`;
const EPS_TOLERANCE = 1e-9;

/**
 * Compare a site's own chain with the coordinator's export, round by round: every update the site
 * released must be the one the coordinator recorded receiving (same SHA-256) or rejected, with the
 * same spent epsilon; and the coordinator must record no update of this site that the site never
 * released. Both chains are verified before this (`verifyChain`).
 */
export function crossCheck(
  site: readonly AuditEntry[],
  coordinator: readonly AuditEntry[],
): CrossCheckResult {
  const opened = site.find((e) => e.kind === "chain_opened");
  const siteId = opened ? opened.actor.slice(opened.actor.indexOf("/") + 1) : "";
  const of = (kind: AuditEntry["kind"]) =>
    new Map(
      coordinator
        .filter((e) => e.kind === kind && e.payload.site === siteId)
        .map((e) => [key(e.payload.job_id, e.payload.round), e]),
    );
  const received = of("update_received");
  const rejected = of("update_rejected");
  const spent = of("budget_spent");
  const problems: CrossCheckProblem[] = [];
  const released = site.filter((e) => e.kind === "update_released");
  const seen = new Set<string>();
  for (const r of released) {
    const k = key(r.payload.job_id, r.payload.round);
    seen.add(k);
    const at = {
      job_id: String(r.payload.job_id),
      round: Number(r.payload.round),
      seq: r.seq,
      chain: "site" as const,
    };
    const got = received.get(k);
    if (!got) {
      if (!rejected.has(k))
        problems.push({
          ...at,
          message: `round ${at.round}: the site released an update the coordinator has no record of`,
        });
      continue;
    }
    if (got.payload.update_sha256 !== r.payload.update_sha256)
      problems.push({
        ...at,
        message: `round ${at.round}: the coordinator recorded update ${String(got.payload.update_sha256).slice(0, 16)}..., the site released ${String(r.payload.update_sha256).slice(0, 16)}...`,
      });
    if (got.payload.examples !== r.payload.examples)
      problems.push({ ...at, message: `round ${at.round}: the example counts differ` });
    const s = spent.get(k);
    if (!s)
      problems.push({
        ...at,
        message: `round ${at.round}: the coordinator recorded no budget spent for this update`,
      });
    else if (Math.abs(Number(s.payload.epsilon_after) - Number(r.payload.epsilon_after)) > EPS_TOLERANCE)
      problems.push({
        ...at,
        message: `round ${at.round}: the coordinator recorded epsilon ${String(s.payload.epsilon_after)} spent, the site ${String(r.payload.epsilon_after)}`,
      });
  }
  for (const [k, e] of received)
    if (!seen.has(k))
      problems.push({
        job_id: String(e.payload.job_id),
        round: Number(e.payload.round),
        seq: e.seq,
        chain: "coordinator",
        message: `round ${String(e.payload.round)}: the coordinator recorded an update from this site that the site never released`,
      });
  return {
    consistent: problems.length === 0 && siteId !== "",
    site: siteId,
    released: released.length,
    received: received.size,
    problems,
  };
}
