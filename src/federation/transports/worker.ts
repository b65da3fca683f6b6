import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Evidence } from "../../attestation/evidence.js";
import { EnclaveError } from "../../errors.js";
import type { AgentHandle } from "../../coordinator/coordinator.js";
import type { LocalAgentOptions } from "../../agent/local-agent.js";
import type { BudgetProbe, TaskOutcome, TrainTask } from "../task.js";

export interface AgentRequest {
  id: number;
  method: "evidence" | "probe" | "run" | "close";
  args?: unknown;
}

export type AgentResponse =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { code: string; message: string; name: string } };

/** The compiled worker entry (tests run the TypeScript sources, the worker runs the build). */
function workerEntry(): string {
  const here = fileURLToPath(import.meta.url);
  const sibling = join(dirname(here), "../../agent/agent-worker-main.js");
  if (existsSync(sibling)) return sibling;
  const built = join(dirname(here), "../../../dist/agent/agent-worker-main.js");
  if (existsSync(built)) return built;
  throw new EnclaveError("WORKER_ENTRY_MISSING", "the agent worker is not built; run `npm run build`");
}

/** An agent in a worker thread: same AgentHandle, messages instead of calls. */
export class WorkerAgent implements AgentHandle {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(
    readonly id: string,
    private readonly worker: Worker,
  ) {
    worker.on("message", (res: AgentResponse) => {
      const p = this.pending.get(res.id);
      if (!p) return;
      this.pending.delete(res.id);
      if (res.ok) p.resolve(res.value);
      else p.reject(new EnclaveError(res.error.code, res.error.message));
    });
    worker.on("error", () => this.failAll("AGENT_WORKER_CRASHED", `agent ${id}: worker thread crashed`));
    worker.on("exit", () => this.failAll("AGENT_WORKER_EXITED", `agent ${id}: worker thread exited`));
  }

  static async start(
    options: Omit<LocalAgentOptions, "provider" | "logger"> & { logLevel?: string },
  ): Promise<WorkerAgent> {
    const worker = new Worker(workerEntry(), { workerData: options });
    const agent = new WorkerAgent(options.id, worker);
    await new Promise<void>((resolve, reject) => agent.pending.set(0, { resolve: () => resolve(), reject }));
    return agent;
  }

  private failAll(code: string, message: string): void {
    for (const p of this.pending.values()) p.reject(new EnclaveError(code, message));
    this.pending.clear();
  }

  private call<T>(method: AgentRequest["method"], args?: unknown): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ id, method, args } satisfies AgentRequest);
    });
  }

  evidence(nonce: Uint8Array): Promise<{ evidence: Evidence; publicKey: Uint8Array }> {
    return this.call("evidence", nonce);
  }

  probe(task: TrainTask): Promise<BudgetProbe> {
    return this.call("probe", task);
  }

  run(task: TrainTask): Promise<TaskOutcome> {
    return this.call("run", task);
  }

  async close(): Promise<void> {
    try {
      await this.call("close");
    } finally {
      await this.worker.terminate();
    }
  }
}
