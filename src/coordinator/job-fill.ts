import { ValidationError } from "../errors.js";
import { getNoiseMultiplier } from "../privacy/accountant/index.js";
import { parseConfigText } from "../schemas/config-text.js";
import { parseContract } from "../schemas/contract.js";
import { FederationJob, type FederationJobInput } from "../schemas/federation.js";
import { readRegularFile } from "../storage/regular-file.js";
import { poissonSchedule } from "../training/trainer.js";
import { assertClientLevelJob, calibrateClientNoise, clientSamplingRate } from "./client-level-dp.js";

/** The fields a hand-written job may leave out; `fillJob` fills them and says so. */
export type FillableField = "job_id" | "privacy.noise_multiplier";

/** Largest job file read (a job is a few hundred bytes; thousands of clients fit easily). */
const MAX_JOB_BYTES = 1024 * 1024;

/** Stand-ins for the fillable fields, so validation reports every other field. */
function withPlaceholders(raw: unknown): unknown {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return raw;
  const job = raw as Record<string, unknown>;
  const privacy = job.privacy;
  return {
    ...job,
    job_id: job.job_id ?? "00000000-0000-4000-8000-000000000000",
    ...(typeof privacy === "object" && privacy !== null && !Array.isArray(privacy)
      ? { privacy: { noise_multiplier: 1, ...privacy } }
      : {}),
  };
}

/**
 * A job file (JSON or YAML) through the strict, bounded reader every contract file goes through
 * (regular file, size bound, duplicate keys refused, no value echoed), validated naming each field;
 * `job_id` and `privacy.noise_multiplier` may be left out. Returns the raw input, for `fillJob`.
 */
export async function readJobFile(file: string, what = "job file"): Promise<FederationJobInput> {
  const bytes = await readRegularFile(file, what, MAX_JOB_BYTES, "JOB_UNREADABLE");
  const raw = parseConfigText(bytes.toString("utf8"), "job file");
  const job = parseContract(FederationJob, withPlaceholders(raw), "FederationJob");
  if (job.privacy.mechanism === "DP_FEDAVG") assertClientLevelJob(job);
  return raw as FederationJobInput;
}

/**
 * The job with what it leaves out filled: a fresh `job_id` from `newId`, and the noise multiplier
 * `calibrate` finds for the job's target (called only when omitted, with the job validated).
 */
export function fillJob(
  raw: FederationJobInput,
  o: { newId: () => string; calibrate: (job: FederationJob) => number },
): { job: FederationJob; filled: FillableField[] } {
  const filled: FillableField[] = [];
  if (raw.job_id === undefined) filled.push("job_id");
  if (raw.privacy?.noise_multiplier === undefined) filled.push("privacy.noise_multiplier");
  const placeholder = parseContract(FederationJob, withPlaceholders(raw), "FederationJob");
  const job = parseContract(
    FederationJob,
    {
      ...raw,
      job_id: raw.job_id ?? o.newId(),
      privacy: {
        ...raw.privacy,
        noise_multiplier: raw.privacy?.noise_multiplier ?? o.calibrate(placeholder),
      },
    },
    "FederationJob",
  );
  return { job, filled };
}

/** One line per filled field, for the user. */
export function describeFilled(job: FederationJob, filled: readonly FillableField[]): string[] {
  return filled.map((field) =>
    field === "job_id"
      ? `job_id not in the job file: generated ${job.job_id}`
      : `privacy.noise_multiplier not in the job file: calibrated to ${job.privacy.noise_multiplier.toFixed(4)} so the job fits target epsilon ${job.privacy.target_epsilon} at delta ${job.privacy.delta}`,
  );
}

/** What DP-SGD calibration needs of the sites: the smallest site's training rows and the local plan. */
export interface SitePlan {
  rows?: number;
  batchSize: number;
  epochs: number;
}

/**
 * The noise multiplier that fits the job's whole run into its target: DP_FEDAVG from the job
 * alone (z for its rounds at q), DP_SGD from the sites' plan (σ for rounds × epochs × steps per
 * epoch at q = 1 / ceil(rows / batch), for the smallest site's rows, which the job cannot know).
 */
export function calibrateJobNoise(job: FederationJob, sites: SitePlan): number {
  const { target_epsilon: targetEpsilon, delta } = job.privacy;
  if (job.privacy.mechanism === "DP_FEDAVG")
    return calibrateClientNoise({
      rounds: job.rounds,
      samplingRate: clientSamplingRate(job),
      delta,
      targetEpsilon,
    });
  if (sites.rows === undefined)
    throw new ValidationError("FederationJob", [
      {
        path: "privacy.noise_multiplier",
        rule: "is omitted: give --rows N (the smallest site's training rows) to calibrate it for DP_SGD, or set it in the job",
      },
    ]);
  const { sampleRate, stepsPerEpoch } = poissonSchedule(sites.rows, sites.batchSize);
  return getNoiseMultiplier({
    accountant: "rdp",
    targetEpsilon,
    delta,
    sampleRate,
    steps: job.rounds * sites.epochs * stepsPerEpoch,
  });
}
