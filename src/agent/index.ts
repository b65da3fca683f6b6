// `coreason-enclave/agent`: the agent at a data owner's site: executor, service, process and Airlock.
export * from "./local-agent.js";
export * from "./executor.js";
export * from "./agent-service.js";
export * from "./agent-process.js";
export { Airlock, METRIC_WHITELIST, type ModelManifest, type MetricName } from "../airlock/airlock.js";
