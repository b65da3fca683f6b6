// Worker-thread entry: one simulated agent, served to its WorkerAgent handle over the parent port.
import { parentPort, workerData } from "node:worker_threads";
import { SimulatedProvider } from "../attestation/providers/software.js";
import { serveAgent } from "../federation/transports/channel.js";
import { createLogger } from "../logging/logger.js";
import type { AgentWorkerOptions } from "./agent-worker.js";
import { LocalAgent } from "./local-agent.js";

const port = parentPort!;
const { logLevel, ...options } = workerData as AgentWorkerOptions;

serveAgent(
  LocalAgent.start({
    ...options,
    provider: new SimulatedProvider(),
    databaseUrl: "",
    logger: createLogger({ level: logLevel ?? "warn", name: "agent" }).child({ agent: options.id }),
  }),
  port,
  () => port.close(),
);
