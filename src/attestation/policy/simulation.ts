import type { TrustPolicy } from "../../schemas/trust-policy.js";
import { parseTrustPolicy } from "./load.js";

/**
 * The trust policy of `enclave simulate` and `enclave agent --simulation`: simulated evidence is
 * accepted here, and only here, by name. The default policy rejects it.
 */
export function simulationTrustPolicy(): TrustPolicy {
  return parseTrustPolicy({ allow_simulated: true, max_evidence_age_seconds: 600 });
}
