import { appraiseEvidence, type Appraisal } from "../attestation/appraise.js";
import { bindReportData } from "../attestation/binding.js";
import { NonceIssuer } from "../attestation/nonce.js";
import type { EvidenceProvider } from "../attestation/providers/provider.js";
import { createAccountant, type AccountantName } from "../privacy/accountant/index.js";
import { BudgetLedger } from "../privacy/budget-ledger.js";
import { PrivacyGuard } from "../privacy/guard.js";
import type { Logger } from "../logging/logger.js";
import { randomStream, type RandomSource } from "../random.js";
import type { TrustPolicy } from "../schemas/trust-policy.js";
import { EPSILON_HARD_CEILING } from "../schemas/privacy.js";
import { openDatabase, type Database } from "../storage/database.js";
import { kernels } from "../tensor/backend.js";
import { ValidationError } from "../errors.js";
import { loadTrainingExamples } from "./training-examples.js";

export { loadTrainingExamples };
import { AgentService } from "./agent-service.js";
import type { AgentHandle, BoundEvidence } from "../federation/agent-handle.js";
import { Executor } from "./executor.js";
import { SiteChain } from "../audit/site-chain.js";
import type { HeadSigner } from "../audit/entry.js";
import type { RoundRuntime } from "./isolated-round.js";
import type { BudgetProbe, TaskOutcome, TrainTask } from "../federation/task.js";

export interface LocalAgentOptions {
  id: string;
  /**
   * Signs the heads of the site's own audit chain (the key of its startup kit); without it the
   * chain is an unsigned hash chain (a simulation's sites have no kits).
   */
  chainSigner?: HeadSigner;
  /** Holds the agent's persistent privacy ledger (`<workspace>/db`). */
  workspace: string;
  /** Dataset ids resolve only inside this directory (Data Sentry). */
  dataRoot: string;
  provider: EvidenceProvider & { readonly publicKey: Uint8Array };
  /** The agent's own trust policy: it refuses to train unless its evidence passes it. */
  policy: TrustPolicy;
  accountant: AccountantName;
  /** Reproducible randomness for simulations; the OS CSPRNG when omitted. */
  seed?: number | string;
  databaseUrl?: string;
  /**
   * The ledger's database, owned by the caller (a simulation's schema-scoped view): when given,
   * `workspace` and `databaseUrl` are not used for the ledger and closing the agent leaves it open.
   */
  database?: Database;
  /** Keep the ledger in an embedded database in memory only (a simulated site in a worker thread). */
  memoryDatabase?: boolean;
  logger?: Logger;
  /**
   * SHA-256 (hex) of the isolated runtime's manifest when this agent's tasks run in a microVM: bound
   * into every report data it asks its TEE to sign, so a verifier's policy can pin the runtime.
   */
  runtimeMeasurement?: string;
  /**
   * `--isolation microvm|process`: every round's Validate -> Train -> Sanitize runs in this runtime's
   * guest (src/agent/isolated-round.ts); what the guest did is recorded in the site's chain.
   */
  isolated?: RoundRuntime;
  /** The owner's opt-in to DP_FEDAVG jobs (un-noised updates, client-level DP at the coordinator). */
  acceptClientLevelDp?: boolean;
}

function runtimeMeasurementBytes(hex: string | undefined): Uint8Array | undefined {
  if (hex === undefined) return undefined;
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new ValidationError("agent options", [
      { path: "runtimeMeasurement", rule: "must be 64 lower-case hex digits" },
    ]);
  return new Uint8Array(Buffer.from(hex, "hex"));
}

/** An agent running in this thread: its service, executor and ledger, behind the AgentHandle. */
export class LocalAgent implements AgentHandle {
  readonly service: AgentService;
  private constructor(
    readonly id: string,
    private readonly db: Database,
    private readonly executor: Executor,
    private readonly provider: LocalAgentOptions["provider"],
    service: AgentService,
    private readonly appraiseSelf: () => Promise<Appraisal>,
    private readonly ledger: BudgetLedger,
    private readonly accountantName: AccountantName,
    private readonly dataRoot: string,
    private readonly runtimeMeasurement: Uint8Array | undefined,
    private readonly chain: SiteChain,
  ) {
    this.service = service;
  }

  static async start(o: LocalAgentOptions): Promise<LocalAgent> {
    const db =
      o.database ??
      (await openDatabase({ workspace: o.workspace, url: o.databaseUrl, memory: o.memoryDatabase }));
    try {
      const ledger = await BudgetLedger.open(db);
      const chain = await SiteChain.open(db, o.id, o.chainSigner);
      const service = new AgentService(o.id);
      const rng = (label: string): RandomSource => randomStream(o.seed, `${o.id}/${label}`);
      const selfNonces = new NonceIssuer();
      const runtime = runtimeMeasurementBytes(o.runtimeMeasurement);
      // Self-check before touching data: fresh evidence bound to a local nonce and our key.
      const appraiseSelf = async (): Promise<Appraisal> => {
        const { nonce } = selfNonces.issue();
        const evidence = await o.provider.collect(bindReportData(nonce, o.provider.publicKey, runtime));
        return appraiseEvidence(evidence, {
          policy: o.policy,
          binding: { nonce, publicKey: o.provider.publicKey, runtimeMeasurement: runtime },
          nonceIssuer: selfNonces,
          nodeId: o.id,
        });
      };
      const executor = new Executor({
        service,
        attest: async () => (await appraiseSelf()).report,
        loadDataset: (datasetId) => loadTrainingExamples(o.dataRoot, datasetId),
        ledger,
        accountantFromHistory: (h) => createAccountant(o.accountant, h),
        kernels: kernels(),
        noise: rng("noise"),
        sampling: rng("sampling"),
        init: rng("init"),
        logger: o.logger,
        acceptClientLevelDp: o.acceptClientLevelDp,
        isolated: o.isolated && {
          runtime: o.isolated,
          accountant: o.accountant,
          record: (task, record) => chain.guestTask(task, record),
        },
      });
      return new LocalAgent(
        o.id,
        db,
        executor,
        o.provider,
        service,
        appraiseSelf,
        ledger,
        o.accountant,
        o.dataRoot,
        runtime,
        chain,
      );
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  /**
   * Attest outside a task (at start and on the re-attestation timer): the same self-appraisal the
   * executor runs before training, recorded on the service the sidecar reads.
   */
  async attest(): Promise<Appraisal> {
    const appraisal = await this.appraiseSelf();
    this.service.setAttestation(appraisal.report);
    return appraisal;
  }

  /**
   * Before any job: show the budget already spent on `datasetId` (from the persistent ledger, at
   * `delta`) through a guard on that ledger. A job replaces it with the guard it enforces.
   */
  async showBudget(datasetId: string, delta: number): Promise<void> {
    const { identity } = await loadTrainingExamples(this.dataRoot, datasetId);
    const guard = await new PrivacyGuard({
      ledger: this.ledger,
      datasetId: identity,
      legacyKeys: [datasetId],
      jobId: "",
      targetEpsilon: EPSILON_HARD_CEILING,
      delta,
      noiseMultiplier: 1,
      accountantFromHistory: (h) => createAccountant(this.accountantName, h),
    }).init();
    this.service.setGuard(guard, datasetId, EPSILON_HARD_CEILING);
  }

  /**
   * Evidence for the coordinator's challenge, bound to its nonce and a key: this node's own key,
   * or over a network session the public key of the TLS client certificate (`key`), so the
   * evidence is good for that session only.
   */
  async evidence(nonce: Uint8Array, key: Uint8Array = this.provider.publicKey): Promise<BoundEvidence> {
    const runtime = this.runtimeMeasurement;
    const evidence = await this.provider.collect(bindReportData(nonce, key, runtime));
    return { evidence, publicKey: key, ...(runtime ? { runtimeMeasurement: runtime } : {}) };
  }

  probe(task: TrainTask): Promise<BudgetProbe> {
    return this.executor.probe(task);
  }

  /** One round; what leaves through the Airlock is recorded in the site's own chain before it goes. */
  async run(task: TrainTask): Promise<TaskOutcome> {
    const outcome = await this.executor.run(task);
    await this.chain.released(task, outcome);
    return outcome;
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
