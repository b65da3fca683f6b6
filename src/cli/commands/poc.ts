import type { Command } from "commander";
import { POC_DEFAULTS, runPoc, type PocSummary } from "../../poc/poc.js";
import { ExitCode } from "../exit-codes.js";
import { numberFlag } from "../flags.js";
import { eventPrinter, pct } from "../round-lines.js";

function printSummary(s: PocSummary): void {
  const rows = s.clients.map(
    (c) =>
      `  ${c.id.padEnd(14)} ${c.epsilon.toFixed(4).padStart(8)}  ${String(c.delta).padEnd(8)} ${String(c.examples).padStart(8)}  ${c.state}`,
  );
  const restarts = Object.entries(s.restarts).map(([name, n]) => `${name} ${n}`);
  process.stdout.write(
    [
      "",
      `status      ${s.status}${s.reason ? ` (${s.reason})` : ""}`,
      `accuracy    ${pct(s.final.accuracy)} federated with DP  |  ${pct(s.baseline.accuracy)} non-private centralised baseline`,
      `rounds      ${s.rounds.length}, job ${s.job_id}`,
      "",
      "  epsilon is example-level (one row of a site's data), per site",
      `  ${"client".padEnd(14)} ${"epsilon".padStart(8)}  ${"delta".padEnd(8)} ${"examples".padStart(8)}  state`,
      ...rows,
      "",
      `restarts    ${restarts.join(", ")}`,
      `workspace   ${s.workspace} (kits/, logs/, summary.json; audit: enclave audit verify --workspace ${s.workspace}/coordinator)`,
      "",
    ].join("\n"),
  );
}

export function registerPocCommand(program: Command): void {
  program
    .command("poc")
    .description(
      "proof of concept on this machine: provision a project, run a coordinator and N agents as separate processes on 127.0.0.1, run the demo job, stop everything",
    )
    .option(
      "--clients <n>",
      "number of sites (agents)",
      numberFlag({ integer: true, min: 1, max: 26 }),
      POC_DEFAULTS.clients,
    )
    .option(
      "--rounds <r>",
      "federated rounds of the demo job",
      numberFlag({ integer: true, min: 1, max: 10000 }),
      POC_DEFAULTS.rounds,
    )
    .option(
      "--workspace <dir>",
      "where kits/, pids/, logs/ and each participant's workspace go (must not hold a POC)",
      POC_DEFAULTS.workspace,
    )
    .option(
      "--port <n>",
      "the coordinator's port on 127.0.0.1 (0: any free port)",
      numberFlag({ integer: true, min: 0, max: 65535 }),
      POC_DEFAULTS.port,
    )
    .option("--keep-running", "after the job, keep the coordinator and agents running until Ctrl-C", false)
    .option(
      "--json",
      "print one machine-readable summary on stdout at the end (rounds still stream to stderr)",
      false,
    )
    .action(
      async (f: {
        clients: number;
        rounds: number;
        workspace: string;
        port: number;
        keepRunning: boolean;
        json: boolean;
      }) => {
        const stop = new AbortController();
        const onSignal = () => stop.abort();
        process.once("SIGINT", onSignal);
        process.once("SIGTERM", onSignal);
        try {
          process.stderr.write("coreason-enclave POC (simulated attestation: no hardware protection)\n");
          const s = await runPoc({
            ...f,
            signal: stop.signal,
            onProgress: (line) => process.stderr.write(`  ${line}\n`),
            onEvent: eventPrinter(),
            onSummary: (summary) =>
              f.json ? process.stdout.write(JSON.stringify(summary) + "\n") : printSummary(summary),
          });
          if (s.status !== "completed")
            process.exitCode =
              s.status === "privacy_budget_exhausted"
                ? ExitCode.BUDGET_EXHAUSTED
                : ExitCode.INSUFFICIENT_CLIENTS;
        } finally {
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
        }
      },
    );
}
