import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ProtocolError } from "../federation/errors.js";
import { WorkerAgent } from "../federation/transports/worker.js";
import type { LogLevel } from "../logging/logger.js";
import type { LocalAgentOptions } from "./local-agent.js";

/** A simulated agent's options as a worker thread receives them (no live objects cross). */
export type AgentWorkerOptions = Omit<LocalAgentOptions, "provider" | "logger" | "databaseUrl"> & {
  logLevel?: LogLevel;
};

/** The compiled worker entry (tests run the TypeScript sources, the worker runs the build). */
function agentWorkerEntry(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [
    join(here, "agent-worker-main.js"),
    join(here, "../../dist/agent/agent-worker-main.js"),
  ])
    if (existsSync(candidate)) return candidate;
  throw new ProtocolError("WORKER_ENTRY_MISSING", "the agent worker is not built; run `npm run build`");
}

/** Start a simulated agent (SimulatedProvider, embedded ledger) in its own worker thread. */
export function startAgentWorker(options: AgentWorkerOptions): Promise<WorkerAgent> {
  return WorkerAgent.start(agentWorkerEntry(), options.id, options);
}
