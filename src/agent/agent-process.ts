import { generateKeyPairSync } from "node:crypto";
import { mkdir, stat } from "node:fs/promises";
import { resolve } from "node:path";
import type { Appraisal } from "../attestation/appraise.js";
import type { DetectOptions } from "../attestation/capabilities.js";
import { HARDWARE_TYPE } from "../attestation/evidence.js";
import { defaultTrustPolicy, loadTrustPolicy } from "../attestation/policy/load.js";
import { simulationTrustPolicy } from "../attestation/policy/simulation.js";
import type { EvidenceProvider } from "../attestation/providers/provider.js";
import { selectProvider } from "../attestation/select-provider.js";
import { rawEd25519PublicKey } from "../attestation/simulated-evidence.js";
import { startSidecar, SIDECAR_HOST, type Sidecar } from "../api/sidecar.js";
import { checkDatasetId } from "../data/sentry.js";
import { EnclaveError, ValidationError } from "../errors.js";
import type { Logger } from "../logging/logger.js";
import type { AgentConfig } from "../schemas/agent-config.js";
import { DEFAULT_DELTA } from "../schemas/privacy.js";
import type { TrustPolicy } from "../schemas/trust-policy.js";
import type { AgentService } from "./agent-service.js";
import type { IsolationMode, ProviderChoice } from "../runtime/doctor.js";
import { TaskRuntime } from "../runtime/task-runtime.js";
import { LocalAgent } from "./local-agent.js";
import { AgentError } from "./errors.js";
import { AgentSession } from "./agent-session.js";
import { IdentityError } from "../identity/errors.js";
import type { Kit } from "../identity/kit.js";
import { HeadSigner } from "../audit/entry.js";

/**
 * How this agent attests. HARDWARE: a detected TEE. SIMULATED (`--simulation`): software evidence
 * appraised with the simulation policy, no protection. INSECURE (`--insecure`): evidence declaring
 * no protection, appraised with the real policy, which rejects it unless it says allow_insecure.
 */
export type AgentMode = "HARDWARE" | "SIMULATED" | "INSECURE";

export function agentMode(flags: { simulation?: boolean; insecure?: boolean }): AgentMode {
  if (flags.simulation && flags.insecure) {
    throw new AgentError(
      "MODE_CONFLICT",
      "--simulation and --insecure cannot be combined: --simulation is for development with simulated evidence, --insecure runs without hardware protection under the real trust policy",
    );
  }
  return flags.simulation ? "SIMULATED" : flags.insecure ? "INSECURE" : "HARDWARE";
}

export interface AgentProcessOptions {
  config: AgentConfig;
  /** Relative paths in the config (data_root, trust_policy) resolve against this directory. */
  configDir: string;
  /** Holds the embedded ledger database (`<workspace>/db`) unless DATABASE_URL is set. */
  workspace: string;
  mode: AgentMode;
  /** Sidecar port; default config.sidecar_port. 0 picks a free port. */
  port?: number;
  logger: Logger;
  /** TEE detection (tests point `root` at an empty directory for a machine without a TEE). */
  detect?: DetectOptions;
  databaseUrl?: string;
  /** `--isolation`: the runtime is checked at start, and a microVM's measurement bound into the evidence. */
  isolation?: {
    mode: IsolationMode;
    cacheDir: string;
    provider: ProviderChoice;
    /** A round's deadline in its guest (default 10 minutes, the coordinator's default round deadline). */
    taskTimeoutMs?: number;
  };
  /**
   * The site's startup kit: with it the agent dials the coordinator the kit names (or the
   * config's coordinator_url) and federates; without it, it serves the sidecar only.
   */
  kit?: Kit;
}

export interface RunningAgent {
  readonly mode: AgentMode;
  readonly port: number;
  readonly service: AgentService;
  readonly agent: LocalAgent;
  /** The dial-out session to the coordinator (with a kit). */
  readonly session?: AgentSession;
  /** Attest now (also runs at start and every reattest_interval_seconds of the policy). */
  attestNow(): Promise<void>;
  /** Stop the timer, the sidecar and the database; idempotent. */
  stop(): Promise<void>;
}

/** The agent needs a node key to bind into its evidence; hardware providers bring none, so make one. */
function withNodeKey(provider: EvidenceProvider): EvidenceProvider & { readonly publicKey: Uint8Array } {
  if ((provider as { publicKey?: unknown }).publicKey instanceof Uint8Array)
    return provider as EvidenceProvider & { publicKey: Uint8Array };
  const publicKey = rawEd25519PublicKey(generateKeyPairSync("ed25519").publicKey);
  return {
    kind: provider.kind,
    label: provider.label,
    description: provider.description,
    publicKey,
    collect: (reportData) => provider.collect(reportData),
  };
}

async function checkDirectory(path: string, field: string): Promise<void> {
  let ok = false;
  let why = "not a directory";
  try {
    ok = (await stat(path)).isDirectory();
  } catch (err) {
    why = `cannot be read (${(err as { code?: string }).code ?? "error"})`;
  }
  if (!ok) throw new ValidationError("agent config", [{ path: field, rule: `directory ${why}` }]);
}

async function policyFor(o: AgentProcessOptions, log: Logger): Promise<TrustPolicy> {
  if (o.mode === "SIMULATED") {
    // Simulated evidence is only ever acceptable to the simulation policy; the configured policy
    // (which, rightly, rejects it) is for hardware and --insecure runs.
    if (o.config.trust_policy) log.warn({ mode: o.mode }, "trust_policy is not applied under --simulation");
    return simulationTrustPolicy();
  }
  return o.config.trust_policy
    ? loadTrustPolicy(resolve(o.configDir, o.config.trust_policy))
    : defaultTrustPolicy();
}

/** The default deadline of a round in the guest: the coordinator's default round deadline. */
const ROUND_TASK_TIMEOUT_MS = 600_000;

/** The isolated runtime, checked before anything else starts (fail closed); none for `none`. */
async function isolationFor(o: AgentProcessOptions, log: Logger): Promise<TaskRuntime | undefined> {
  if (!o.isolation || o.isolation.mode === "none") return undefined;
  const runtime = await TaskRuntime.prepare({
    mode: o.isolation.mode,
    cacheDir: o.isolation.cacheDir,
    provider: o.isolation.provider,
    taskTimeoutMs: o.isolation.taskTimeoutMs ?? ROUND_TASK_TIMEOUT_MS,
    onWarning: (w) => log.warn({ code: "RUNTIME_EMULATED" }, w),
  });
  log.info({ isolation: runtime.isolation }, "isolated runtime ready");
  return runtime;
}

/** Why /health is not 200: the failed checks of the appraisal (check names and verifier details). */
function untrustedReason(a: Appraisal): string {
  const failed = a.result.checks.filter((c) => c.status === "fail");
  const what = failed.length ? failed.map((c) => `${c.name}: ${c.detail}`).join("; ") : "no check passed";
  return `attestation ${a.report.status} (${a.report.hardware_type}): ${what}; this agent refuses to train`;
}

/**
 * Start the agent process: validate the configuration, choose the evidence provider (refusing
 * without a TEE unless told otherwise), open the workspace ledger, attest, and serve the
 * management sidecar on loopback from the same AgentService the executor writes.
 */
export async function startAgentProcess(o: AgentProcessOptions): Promise<RunningAgent> {
  const { config } = o;
  const log = o.logger.child({ node: config.node_id });
  if (o.kit && (o.kit.identity.role !== "site" || o.kit.identity.name !== config.node_id))
    throw new IdentityError(
      "KIT_INVALID",
      `--kit: the agent needs the site kit of its node_id (this kit is for ${o.kit.identity.role} ${o.kit.identity.name})`,
    );
  const dataRoot = resolve(o.configDir, config.data_root);
  await checkDirectory(dataRoot, "data_root");
  if (config.dataset_id !== undefined) checkDatasetId(config.dataset_id);
  const policy = await policyFor(o, log);

  // Throws NoTeeError (NO_TEE / TEE_UNSUPPORTED) in HARDWARE mode on a machine without a usable TEE.
  const selection = await selectProvider({
    simulation: o.mode === "SIMULATED",
    insecure: o.mode === "INSECURE",
    detect: o.detect,
  });
  const provider = withNodeKey(selection.provider);
  log.info(
    { mode: o.mode, evidence_kind: provider.kind, label: provider.label },
    o.mode === "HARDWARE"
      ? "evidence provider selected"
      : `evidence provider selected: ${provider.label} evidence, no hardware protection`,
  );

  const runtime = await isolationFor(o, log);
  const isolation = runtime?.isolation;
  const workspace = resolve(o.workspace);
  await mkdir(workspace, { recursive: true, mode: 0o700 });
  const agent = await LocalAgent.start({
    id: config.node_id,
    workspace,
    dataRoot,
    provider,
    policy,
    accountant: config.accountant,
    acceptClientLevelDp: config.accept_client_level_dp,
    ...(runtime && { isolated: runtime, runtimeMeasurement: runtime.isolation.measurement }),
    databaseUrl: o.databaseUrl,
    logger: o.logger,
    // The kit's key signs the site's own audit chain, so a cross-check can pin it to the site.
    ...(o.kit && { chainSigner: new HeadSigner(o.kit.credential.keyPem) }),
  });
  const service = agent.service;

  let inflight: Promise<void> | null = null;
  // A TRUSTED appraisal stands until its validUntil and not a moment longer: if re-attestation
  // hangs or fails to land in time, the sidecar turns 503 at that instant (fail closed).
  let expiry: NodeJS.Timeout | undefined;
  let stopped = false;
  const expireAt = (until: Date | undefined): void => {
    clearTimeout(expiry);
    expiry = undefined;
    if (!until || stopped) return;
    expiry = setTimeout(
      () => {
        service.setFault(
          "attestation expired: re-attestation has not completed; this agent refuses to train",
        );
        log.error({ code: "ATTESTATION_EXPIRED" }, "attestation expired before re-attestation completed");
      },
      Math.max(0, until.getTime() - Date.now()),
    );
  };
  const attestOnce = async (): Promise<void> => {
    try {
      const a = await agent.attest();
      if (stopped) return;
      expireAt(a.trusted ? a.validUntil : undefined);
      if (a.trusted) {
        service.setFault(null);
        log.info(
          {
            status: a.report.status,
            hardware_type: a.report.hardware_type,
            measurement: a.report.measurement_hash,
            valid_until: a.validUntil?.toISOString(),
          },
          o.mode === "SIMULATED" ? "attested (SIMULATED: no hardware protection)" : "attested",
        );
      } else {
        service.setFault(untrustedReason(a));
        log.warn(
          {
            status: a.report.status,
            hardware_type: a.report.hardware_type,
            failed_checks: a.result.checks.filter((c) => c.status === "fail").map((c) => c.name),
          },
          "attestation not trusted: this agent refuses to train",
        );
      }
    } catch (err) {
      // No evidence at all: the node is not attested, whatever an earlier appraisal said.
      if (stopped) return;
      const code = err instanceof EnclaveError ? err.code : "ATTESTATION_FAILED";
      expireAt(undefined);
      service.setAttestation({
        node_id: config.node_id,
        hardware_type: HARDWARE_TYPE[provider.kind],
        enclave_signature: "unavailable",
        measurement_hash: "unavailable",
        status: "UNTRUSTED",
      });
      service.setFault(`attestation failed [${code}]; this agent refuses to train`);
      log.error({ code }, "attestation failed");
    }
  };
  const attestNow = (): Promise<void> => {
    inflight ??= attestOnce().finally(() => {
      inflight = null;
    });
    return inflight;
  };

  let sidecar: Sidecar;
  try {
    if (config.dataset_id !== undefined) await agent.showBudget(config.dataset_id, DEFAULT_DELTA);
    await attestNow();
    sidecar = await startSidecar(service, o.port ?? config.sidecar_port);
  } catch (err) {
    stopped = true;
    clearTimeout(expiry);
    await agent.close();
    throw err;
  }
  // Re-attest at 90% of the interval, so a fresh appraisal lands before the current one lapses.
  const timer = setInterval(
    () => void attestNow(),
    Math.max(500, Math.floor(policy.reattest_interval_seconds * 900)),
  );

  const session = o.kit
    ? new AgentSession({
        kit: o.kit,
        endpoint: config.coordinator_url,
        work: {
          evidence: (nonce, key) => agent.evidence(nonce, key),
          probe: (task) => agent.probe(task),
          run: (task) => agent.run(task),
        },
        logger: log,
      })
    : undefined;
  session?.start();
  const { host, port } = o.kit?.config.coordinator ?? {};
  log.info(
    {
      mode: o.mode,
      hardware_type: service.attestation()?.hardware_type,
      status: service.attestation()?.status,
      host: SIDECAR_HOST,
      port: sidecar.port,
      reattest_interval_seconds: policy.reattest_interval_seconds,
      dataset_id: config.dataset_id,
      isolation: isolation ?? { mode: "none" },
    },
    `agent started${o.mode === "HARDWARE" ? "" : ` (${o.mode}: no hardware protection)`}; ${
      session
        ? `dialling the coordinator at ${config.coordinator_url ?? `${host}:${port}`}`
        : "no --kit: serving the sidecar only, joining no federation"
    }`,
  );

  let stopping: Promise<void> | null = null;
  return {
    mode: o.mode,
    port: sidecar.port,
    service,
    agent,
    session,
    attestNow,
    stop: () =>
      (stopping ??= (async () => {
        // An attestation still in flight (a hung device, say) is not waited for: it no longer
        // touches the service once stopped, and it never needs the database.
        stopped = true;
        clearInterval(timer);
        clearTimeout(expiry);
        try {
          await session?.stop();
          await sidecar.close();
        } finally {
          await runtime?.close();
          await agent.close();
        }
        log.info({ code: "STOPPED" }, "agent stopped");
      })()),
  };
}
