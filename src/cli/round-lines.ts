import type { RoundRecord } from "../coordinator/coordinator.js";
import type { JobEvent } from "../sdk/orchestrate.js";

/** A share as a percentage; an unknown one (NaN, or null from JSON) as "unknown". */
export function pct(x: number | null): string {
  return typeof x === "number" && Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : "unknown";
}

const fixed = (x: number | null, digits: number) =>
  typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "unknown";

/** The console's view of the coordinator's events: exclusions and one line per round. */
export function eventPrinter(): (e: JobEvent) => void {
  let rounds = 0;
  let sites: readonly string[] = [];
  return (e) => {
    if (e.type === "job_started") {
      rounds = e.rounds;
      sites = e.clients;
    } else if (e.type === "client_excluded")
      process.stderr.write(`  round ${e.round}: ${e.client_id} excluded: ${e.reason}\n`);
    else if (e.type === "round_completed") printRound(e.record, rounds, sites);
  };
}

function printRound(r: RoundRecord, rounds: number, sites: readonly string[]): void {
  if (r.privacy) {
    process.stderr.write(
      `round ${String(r.round).padStart(3)}/${rounds}  sampled ${r.privacy.sampled}  clients ${r.clients.length}  loss ${fixed(r.loss, 4)}  acc ${pct(r.accuracy)}  client-level ε ${r.privacy.epsilon.toFixed(3)}\n`,
    );
    return;
  }
  // One order every round (the job's), not the order updates happened to arrive in.
  const eps = sites
    .filter((id) => r.epsilon[id] !== undefined)
    .map((id) => `${id} ${r.epsilon[id].toFixed(3)}`)
    .join("  ");
  process.stderr.write(
    `round ${String(r.round).padStart(3)}/${rounds}  clients ${r.clients.length}  loss ${fixed(r.loss, 4)}  acc ${pct(r.accuracy)}  ε: ${eps}\n`,
  );
}
