import { Worker } from "node:worker_threads";
import { ChannelAgent } from "./channel.js";

/**
 * An agent in a worker thread: the same AgentHandle, messages over the worker's port instead of
 * calls. `entry` is the compiled worker script that serves the agent (serveAgent on its
 * parentPort); `workerData` is handed to it.
 */
export class WorkerAgent extends ChannelAgent {
  private constructor(
    id: string,
    private readonly worker: Worker,
  ) {
    super(id, worker);
    worker.on("error", () => this.fail("AGENT_WORKER_CRASHED", `agent ${id}: worker thread crashed`));
    worker.on("exit", () => this.fail("AGENT_WORKER_EXITED", `agent ${id}: worker thread exited`));
  }

  static async start(entry: string, id: string, workerData: unknown): Promise<WorkerAgent> {
    const agent = new WorkerAgent(id, new Worker(entry, { workerData }));
    try {
      await agent.ready();
    } catch (err) {
      await agent.worker.terminate();
      throw err;
    }
    return agent;
  }

  override async close(): Promise<void> {
    try {
      await super.close();
    } finally {
      await this.worker.terminate();
    }
  }
}
