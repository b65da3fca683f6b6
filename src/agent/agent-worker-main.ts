// Worker-thread entry: one simulated agent, driven by its WorkerAgent handle over the parent port.
import { parentPort, workerData } from "node:worker_threads";
import { SimulatedProvider } from "../attestation/providers/software.js";
import { EnclaveError } from "../errors.js";
import { createLogger, type LogLevel } from "../logging/logger.js";
import { LocalAgent, type LocalAgentOptions } from "./local-agent.js";
import type { AgentRequest, AgentResponse } from "../federation/transports/worker.js";

const port = parentPort!;
const { logLevel, ...options } = workerData as Omit<LocalAgentOptions, "provider"> & { logLevel?: LogLevel };

function failure(id: number, err: unknown): AgentResponse {
  return err instanceof EnclaveError
    ? { id, ok: false, error: { code: err.code, message: err.message, name: err.name } }
    : { id, ok: false, error: { code: "AGENT_INTERNAL", message: "internal agent error", name: "Error" } };
}

const ready = LocalAgent.start({
  ...options,
  provider: new SimulatedProvider(),
  databaseUrl: "",
  logger: createLogger({ level: logLevel ?? "warn", name: "agent" }).child({ agent: options.id }),
});
ready.then(
  () => port.postMessage({ id: 0, ok: true, value: "ready" } satisfies AgentResponse),
  (err) => port.postMessage(failure(0, err)),
);

port.on("message", async (req: AgentRequest) => {
  try {
    const agent = await ready;
    let value: unknown;
    switch (req.method) {
      case "evidence":
        value = await agent.evidence(req.args as Uint8Array);
        break;
      case "probe":
        value = await agent.probe(req.args as Parameters<LocalAgent["probe"]>[0]);
        break;
      case "run":
        value = await agent.run(req.args as Parameters<LocalAgent["run"]>[0]);
        break;
      case "close":
        await agent.close();
        value = null;
        break;
    }
    port.postMessage({ id: req.id, ok: true, value } satisfies AgentResponse);
    if (req.method === "close") port.close();
  } catch (err) {
    port.postMessage(failure(req.id, err));
  }
});
