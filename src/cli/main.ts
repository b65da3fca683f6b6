import { Command, CommanderError } from "commander";
import { EnclaveError } from "../errors.js";
import { registerSchemasCommand } from "./commands/schemas.js";
import { registerSchemaCommand } from "./commands/schema.js";
import { registerTrainCommand } from "./commands/train.js";
import { registerSimulateCommand } from "./commands/simulate.js";
import { registerAttestCommand } from "./commands/attest.js";
import { registerVerifyCommand } from "./commands/verify.js";
import { registerBudgetCommand } from "./commands/budget.js";
import { registerAgentCommand } from "./commands/agent.js";
import { registerInferenceCommands } from "./commands/inference.js";
import { registerLedgerCommand } from "./commands/ledger.js";
import { registerIdentityCommands } from "./commands/identity.js";
import { registerCoordinatorCommands } from "./commands/coordinator.js";
import { registerRuntimeCommand } from "./commands/runtime.js";
import { registerAuditCommand } from "./commands/audit.js";
import { registerDashboardCommand } from "./commands/dashboard.js";
import { registerPocCommand } from "./commands/poc.js";

export function buildProgram(): Command {
  const program = new Command("enclave")
    .description("coreason-enclave: confidential, differentially private federated learning")
    .version("0.1.0")
    // The error and one pointer, not the whole help (inherited by every verb registered below).
    .showHelpAfterError("(run with --help for usage)");
  registerSchemasCommand(program);
  registerSchemaCommand(program);
  registerTrainCommand(program);
  registerSimulateCommand(program);
  registerAttestCommand(program);
  registerVerifyCommand(program);
  registerBudgetCommand(program);
  registerAgentCommand(program);
  registerInferenceCommands(program);
  registerLedgerCommand(program);
  registerIdentityCommands(program);
  registerCoordinatorCommands(program);
  registerRuntimeCommand(program);
  registerAuditCommand(program);
  registerDashboardCommand(program);
  registerPocCommand(program);
  return program;
}

/** Errors print their stable code and message only: never a stack with data in it. */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  for (const verb of program.commands) verb.exitOverride(); // a verb's usage error returns its code too
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof EnclaveError) {
      process.stderr.write(`enclave: error [${err.code}]: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(
      `enclave: unexpected error: ${(err as Error)?.name ?? "Error"}: ${(err as Error)?.message}\n`,
    );
    return 1;
  }
}

const invokedDirectly = process.argv[1] && import.meta.url.endsWith("/cli/main.js");
if (invokedDirectly) {
  runCli(process.argv).then((code) => {
    process.exitCode = code;
  });
}
