import { randomUUID } from "node:crypto";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { HOST_API_HOST, startHostApi } from "../../host/host-api.js";
import { calibrateJobNoise, describeFilled, fillJob, readJobFile } from "../../coordinator/job-fill.js";
import { JobStore } from "../../coordinator/job-store.js";
import { loadKitAs } from "../../identity/kit.js";
import { AdminActionLog } from "../../identity/admin-actions.js";
import { RevocationList } from "../../identity/revocation.js";
import { createLogger } from "../../logging/logger.js";
import { adminClient, rpcError } from "../../sdk/admin-client.js";
import { submitJob, watchJob } from "../../sdk/orchestrate.js";
import { numberFlag } from "../flags.js";
import { untilSignal } from "../signals.js";
import type { JobStatus } from "../../gen/agent/v1/job_pb.js";
import { openCoordinatorAudit } from "../../audit/coordinator-audit.js";
import { Dashboard } from "../../dashboard/dashboard.js";
import { defaultTrustPolicy, loadTrustPolicy } from "../../attestation/policy/load.js";
import { AttestationGate } from "../../coordinator/attestation-gate.js";
import { JobRunner } from "../../coordinator/job-runner.js";
import { coordinatorJobSetup } from "../../coordinator/job-setup.js";
import { SessionHub } from "../../coordinator/session-hub.js";
import { DEFAULT_CHUNK_BYTES } from "../../federation/model-transfer.js";

const jobJson = (j: JobStatus) => ({
  job_id: j.jobId,
  status: j.status,
  rounds_completed: j.roundsCompleted,
  rounds: j.rounds,
  reason: j.reason,
  model_sha256: j.modelSha256,
  submitted_at: j.submittedAt,
});

const line = (j: JobStatus) =>
  `${j.jobId}  ${j.status.padEnd(24)} ${j.roundsCompleted}/${j.rounds}${j.reason ? `  ${j.reason}` : ""}`;

export function registerCoordinatorCommands(program: Command): void {
  program
    .command("coordinator")
    .description("serve the project's host API (mTLS, agent.v1.AgentService) from a coordinator kit")
    .requiredOption("--kit <dir>", "the coordinator's startup kit")
    .option("--workspace <dir>", "the coordinator's workspace", "./coordinator-workspace")
    .option("--host <host>", "address to listen on", HOST_API_HOST)
    .option(
      "--port <n>",
      "port (default: the kit's coordinator port)",
      numberFlag({ integer: true, min: 0, max: 65535 }),
    )
    .option("--revocations <file>", "the CA's revoked.json (default: <kit>/revoked.json)")
    .option(
      "--admin-actions <file>",
      "the CA's admin-actions.json: approvals and revocations, audited with their admin (default: <kit>/admin-actions.json)",
    )
    .option("--trust-policy <file>", "trust policy for the agents' evidence (default: the default policy)")
    .option(
      "--eval-data <file>",
      "the coordinator's own labelled held-out data (CSV and schema): the model's shape and each round's score (without it: the shape of the bundled dataset the job names, accuracy unknown)",
    )
    .option(
      "--baseline-data <file>",
      "labelled training data the coordinator may pool (CSV and schema): each job's non-private baseline, shown on the dashboard",
    )
    .option("--round-timeout <s>", "a round's deadline for each agent", numberFlag({ min: 1 }), 600)
    .option(
      "--start-timeout <s>",
      "how long a job waits for min_clients of its sites to connect and attest",
      numberFlag({ min: 0 }),
      300,
    )
    .option(
      "--heartbeat <s>",
      "session heartbeat interval",
      numberFlag({ integer: true, min: 1, max: 3600 }),
      5,
    )
    .option("--log-level <level>", "fatal|error|warn|info|debug", "info")
    .action(
      async (o: {
        kit: string;
        workspace: string;
        host: string;
        port?: number;
        revocations?: string;
        adminActions?: string;
        trustPolicy?: string;
        evalData?: string;
        baselineData?: string;
        roundTimeout: number;
        startTimeout: number;
        heartbeat: number;
        logLevel: string;
      }) => {
        const kit = await loadKitAs(o.kit, "coordinator");
        const logger = createLogger({ level: o.logLevel as never, name: "coordinator" });
        // Jobs, statuses, events and checkpoints in PostgreSQL: DATABASE_URL, or PGlite in the workspace;
        // the audit chain in the same database, its head anchored beside it.
        const store = await JobStore.openWorkspace(resolve(o.workspace));
        const audit = await openCoordinatorAudit({
          kit,
          workspace: resolve(o.workspace),
          jobs: store,
          database: store.database,
          logger,
        });
        const revocations = new RevocationList(
          resolve(o.revocations ?? join(kit.dir, "revoked.json")),
          kit.caPem,
          audit.onRevoked,
        );
        // The admin action log first: a revocation it names is audited with its admin, not the CA.
        const adminActions = new AdminActionLog(
          resolve(o.adminActions ?? join(kit.dir, "admin-actions.json")),
          kit.caPem,
          audit.onAdminActions,
        );
        adminActions.refresh();
        if (adminActions.problem)
          logger.warn({ code: "KIT_INVALID" }, `--admin-actions: ${adminActions.problem}`);
        revocations.load();
        const policy = o.trustPolicy ? await loadTrustPolicy(resolve(o.trustPolicy)) : defaultTrustPolicy();
        const sessions = new SessionHub({
          gate: new AttestationGate(policy),
          reattestSeconds: policy.reattest_interval_seconds,
          heartbeatSeconds: o.heartbeat,
          coordinatorId: kit.identity.name,
          maxChunkBytes: DEFAULT_CHUNK_BYTES,
          remote: { runTimeoutMs: o.roundTimeout * 1000 },
          logger,
        });
        const evalData = o.evalData ? resolve(o.evalData) : undefined;
        const runner = new JobRunner({
          jobs: store,
          // The audit ledger's entry first, then the store (status, watchers, checkpoint).
          record: audit.onEvent,
          sessions,
          setup: coordinatorJobSetup({
            evalData,
            database: async () => store.database,
            baselineData: o.baselineData ? resolve(o.baselineData) : undefined,
            onBaseline: (job, b) => audit.auditor.baseline(job, b),
          }),
          startTimeoutMs: o.startTimeout * 1000,
          logger,
        });
        const api = await startHostApi({
          credential: kit.credential,
          caPem: kit.caPem,
          jobs: audit.jobs,
          audit: audit.chain,
          dashboard: new Dashboard(audit.chain, audit.jobs),
          sessions,
          host: o.host,
          port: o.port ?? kit.config.coordinator.port,
          isRevoked: (serial) => {
            adminActions.refresh();
            return revocations.isRevoked(serial);
          },
          logger,
        });
        process.stdout.write(
          JSON.stringify({ listening: { host: o.host, port: api.port }, project: kit.config.project }) + "\n",
        );
        runner.start();
        await untilSignal();
        await runner.stop();
        await api.close();
        await store.close();
      },
    );

  const withAdmin = (name: string, description: string) =>
    program
      .command(name)
      .description(description)
      .requiredOption("--kit <dir>", "an admin's startup kit")
      .option("--endpoint <url>", "the coordinator (default: the one the kit names)")
      .option("--json", "print JSON");

  withAdmin(
    "submit",
    "submit a FederationJob file (JSON or YAML); prints its job id. A job without job_id gets a fresh one, and without privacy.noise_multiplier the noise calibrated to its target (DP_SGD: from --rows)",
  )
    .argument("<job-file>")
    .option(
      "--rows <n>",
      "DP_SGD calibration: the smallest site's training rows",
      numberFlag({ integer: true, min: 1 }),
    )
    .option(
      "--batch-size <b>",
      "DP_SGD calibration: the sites' expected batch size",
      numberFlag({ integer: true, min: 1 }),
      16,
    )
    .option(
      "--local-epochs <n>",
      "DP_SGD calibration: local epochs per round",
      numberFlag({ integer: true, min: 1 }),
      1,
    )
    .action(async (file: string, o: SubmitFlags) => {
      const kit = await loadKitAs(o.kit, "admin");
      // Refused here, naming fields, before anything is sent; what the file leaves out is filled.
      const { job, filled } = fillJob(await readJobFile(file), {
        newId: randomUUID,
        calibrate: (j) =>
          calibrateJobNoise(j, { rows: o.rows, batchSize: o.batchSize, epochs: o.localEpochs }),
      });
      for (const line of describeFilled(job, filled)) process.stderr.write(`${line}\n`);
      const jobId = await submitJob(adminClient(kit, o.endpoint), job);
      process.stdout.write(o.json ? JSON.stringify({ job_id: jobId }) + "\n" : jobId + "\n");
    });

  interface SubmitFlags {
    kit: string;
    endpoint?: string;
    json?: boolean;
    rows?: number;
    batchSize: number;
    localEpochs: number;
  }

  withAdmin("status", "one job's status")
    .argument("<job-id>")
    .action(async (jobId: string, o: { kit: string; endpoint?: string; json?: boolean }) => {
      const r = await adminClient(await loadKitAs(o.kit, "admin"), o.endpoint)
        .getJob({ jobId })
        .catch((e: unknown) => {
          throw rpcError(e);
        });
      process.stdout.write(o.json ? JSON.stringify(jobJson(r.job!)) + "\n" : line(r.job!) + "\n");
    });

  withAdmin("jobs", "every job the coordinator knows, newest first").action(
    async (o: { kit: string; endpoint?: string; json?: boolean }) => {
      const r = await adminClient(await loadKitAs(o.kit, "admin"), o.endpoint)
        .listJobs({})
        .catch((e: unknown) => {
          throw rpcError(e);
        });
      process.stdout.write(
        o.json
          ? JSON.stringify(
              r.jobs.map((j) => ({ job_id: j.jobId, status: j.status, rounds_completed: j.roundsCompleted })),
            ) + "\n"
          : r.jobs.map(line).join("\n") + (r.jobs.length ? "\n" : ""),
      );
    },
  );

  withAdmin("abort", "stop a job")
    .argument("<job-id>")
    .action(async (jobId: string, o: { kit: string; endpoint?: string; json?: boolean }) => {
      const r = await adminClient(await loadKitAs(o.kit, "admin"), o.endpoint)
        .abortJob({ jobId })
        .catch((e: unknown) => {
          throw rpcError(e);
        });
      process.stdout.write(o.json ? JSON.stringify(jobJson(r.job!)) + "\n" : line(r.job!) + "\n");
    });

  withAdmin("watch", "stream a job's events until it ends (one JSON object per line with --json)")
    .argument("<job-id>")
    .action(async (jobId: string, o: { kit: string; endpoint?: string; json?: boolean }) => {
      const client = adminClient(await loadKitAs(o.kit, "admin"), o.endpoint);
      for await (const e of watchJob(client, jobId))
        process.stdout.write(
          o.json ? JSON.stringify(e) + "\n" : `${e.type}${"round" in e ? ` round ${e.round}` : ""}\n`,
        );
    });
}
