import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import { loadAgentConfig } from "../../agent/agent-config-file.js";
import { agentMode, startAgentProcess } from "../../agent/agent-process.js";
import { createLogger, type LogLevel } from "../../logging/logger.js";
import { choiceFlag, numberFlag } from "../flags.js";
import { untilSignal } from "../signals.js";
import { defaultCacheDir } from "../../runtime/cache-dir.js";
import { isolationOptions, type IsolationFlags } from "../isolation-flags.js";
import { loadKit } from "../../identity/kit.js";

interface AgentFlags extends IsolationFlags {
  kit?: string;
  workspace: string;
  conf: string;
  simulation: boolean;
  insecure: boolean;
  port?: number;
  logLevel?: LogLevel;
}

/**
 * Test hook: resolve TEE device paths under this directory instead of "/". Pointing it at an empty
 * directory makes "no TEE here" deterministic; it can only hide hardware, never fake trusted
 * evidence (evidence from a fake root does not verify).
 */
export const DETECT_ROOT_ENV = "ENCLAVE_TEE_DETECT_ROOT";

export function registerAgentCommand(program: Command): void {
  isolationOptions(
    program.command("agent"),
    "where tasks run: microvm (no network device; its measurement bound into the evidence), process, or none",
  )
    .description(
      "run the agent at a data owner's site: attest, keep the privacy ledger, serve the management sidecar on 127.0.0.1, and with --kit dial out to the coordinator and train its jobs",
    )
    .option("--kit <dir>", "the site's startup kit: dial the coordinator it names and federate")
    .option("--workspace <dir>", "workspace holding the persistent privacy ledger (db/)", "./agent-workspace")
    .requiredOption("--conf <file>", "agent configuration (AgentConfig, JSON or YAML)")
    .option("--simulation", "no TEE needed: simulated attestation (no hardware protection)", false)
    .option(
      "--insecure",
      "run without TEE hardware: INSECURE evidence, appraised by the trust policy (which rejects it by default)",
      false,
    )
    .option(
      "--port <n>",
      "management sidecar port on 127.0.0.1 (default: sidecar_port of the config)",
      numberFlag({ integer: true, min: 0, max: 65535 }),
    )
    .option(
      "--log-level <level>",
      "structured log level on stderr (default: log_level of the config)",
      choiceFlag(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const),
    )
    .action(async (f: AgentFlags) => {
      const mode = agentMode(f);
      const confPath = resolve(f.conf);
      const config = await loadAgentConfig(confPath);
      const kit = f.kit ? await loadKit(resolve(f.kit)) : undefined;
      const logger = createLogger({ level: f.logLevel ?? config.log_level, name: "enclave-agent" });
      const detectRoot = process.env[DETECT_ROOT_ENV];
      const stop = untilSignal();
      const running = await startAgentProcess({
        config,
        configDir: dirname(confPath),
        workspace: resolve(f.workspace),
        mode,
        kit,
        port: f.port,
        logger,
        detect: detectRoot ? { root: resolve(detectRoot), runCommand: null } : undefined,
        isolation: {
          mode: f.isolation,
          cacheDir: resolve(f.runtimeCache ?? defaultCacheDir()),
          provider: f.provider,
          taskTimeoutMs: f.taskTimeout === undefined ? undefined : f.taskTimeout * 1000,
        },
      });
      const signal = await stop;
      logger.info({ signal }, "shutting down");
      await running.stop();
    });
}
