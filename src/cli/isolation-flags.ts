import type { Command } from "commander";
import { ISOLATION_MODES, PROVIDERS, type IsolationMode, type ProviderChoice } from "../runtime/doctor.js";
import { choiceFlag, numberFlag } from "./flags.js";

/** The flags `train` and `agent` share to say where their tasks run. */
export interface IsolationFlags {
  isolation: IsolationMode;
  runtimeCache?: string;
  provider: ProviderChoice;
  taskTimeout?: number;
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
    )
    .option(
      "--task-timeout <seconds>",
      "deadline of one task in its guest, after the guest is ready (default: train 3600, agent 600)",
      numberFlag({ integer: true, min: 1, max: 86_400 }),
    );
}
