import type { Command } from "commander";
import { ISOLATION_MODES, PROVIDERS, type IsolationMode, type ProviderChoice } from "../runtime/doctor.js";
import { choiceFlag } from "./flags.js";

/** The flags `train` and `agent` share to say where their tasks run. */
export interface IsolationFlags {
  isolation: IsolationMode;
  runtimeCache?: string;
  provider: ProviderChoice;
}

/** `--isolation`, `--runtime-cache`, `--provider`: one definition for every verb that runs tasks. */
export function isolationOptions(command: Command, what: string): Command {
  return command
    .option("--isolation <mode>", what, choiceFlag(ISOLATION_MODES), "none" as IsolationMode)
    .option("--runtime-cache <dir>", "microVM assets (default ~/.enclave/cache; see enclave runtime hydrate)")
    .option(
      "--provider <p>",
      "microVM host provider: auto | native | lima | wsl2",
      choiceFlag(["auto", ...PROVIDERS] as const),
      "auto" as ProviderChoice,
    );
}
