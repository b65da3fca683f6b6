import { homedir } from "node:os";
import { join } from "node:path";

/** Where the persistent state (privacy ledger, checkpoints) lives unless --workspace says otherwise. */
export function defaultWorkspace(): string {
  return process.env.ENCLAVE_WORKSPACE ?? join(homedir(), ".enclave", "workspace");
}
