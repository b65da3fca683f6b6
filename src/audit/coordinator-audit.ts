import { join } from "node:path";
import type { CoordinatorEventListener } from "../coordinator/events.js";
import type { CoordinatorEvent } from "../coordinator/events.js";
import type { JobDirectory } from "../host/job-directory.js";
import type { Kit } from "../identity/kit.js";
import type { Logger } from "../logging/logger.js";
import { openDatabase, type Database } from "../storage/database.js";
import { AuditedJobDirectory } from "./audited-jobs.js";
import { AuditChain } from "./chain.js";
import { actorOf, auditFirst, CoordinatorAuditor, type CaAction } from "./coordinator-auditor.js";
import { HeadSigner } from "./entry.js";

/** The file beside the coordinator's database that holds its latest signed head. */
export const AUDIT_ANCHOR_FILE = "audit-head.json";

export interface CoordinatorAudit {
  chain: AuditChain;
  auditor: CoordinatorAuditor;
  /** The directory the host API serves: submit and abort are audited before they act. */
  jobs: JobDirectory;
  /** For runFederation's `onEvent`: the chain first, then the directory. */
  onEvent: CoordinatorEventListener;
  /** For the RevocationList: each newly revoked serial is recorded. */
  onRevoked: (serials: string[]) => void;
  /** For the AdminActionLog: each approval and revocation, recorded once with its admin as actor. */
  onAdminActions: (actions: CaAction[]) => void;
  close(): Promise<void>;
}

/**
 * The coordinator's audit ledger from its kit and workspace: the chain in the workspace's
 * database (PGlite under `<workspace>/db`, or DATABASE_URL), heads signed with the kit's key and
 * anchored in `<workspace>/audit-head.json`.
 */
export async function openCoordinatorAudit(o: {
  kit: Kit;
  workspace: string;
  /** The job directory the events also go to (the coordinator's JobStore). */
  jobs: JobDirectory & { record(e: CoordinatorEvent): void | Promise<void> };
  logger: Logger;
  database?: Database;
}): Promise<CoordinatorAudit> {
  const db = o.database ?? (await openDatabase({ workspace: o.workspace }));
  const chain = await AuditChain.open(db, {
    actor: actorOf(o.kit.identity),
    role: "coordinator",
    signer: new HeadSigner(o.kit.credential.keyPem),
    anchorPath: join(o.workspace, AUDIT_ANCHOR_FILE),
  });
  const auditor = new CoordinatorAuditor(chain);
  const ca = `ca/${o.kit.config.project}`;
  const unaudited = (err: unknown) =>
    o.logger.error(
      { code: (err as { code?: string }).code ?? "AUDIT_APPEND_REFUSED" },
      "admin action not audited",
    );
  return {
    chain,
    auditor,
    jobs: new AuditedJobDirectory(o.jobs, auditor),
    onEvent: auditFirst(auditor, (e) => o.jobs.record(e)),
    onRevoked: (serials) => void auditor.revoked(serials, ca).catch(unaudited),
    onAdminActions: (actions) => void auditor.adminActions(actions).catch(unaudited),
    close: async () => {
      if (!o.database) await db.close();
    },
  };
}
