import { z } from "zod";

/** The agent's configuration file (`enclave agent --conf FILE`), JSON or YAML. */
export const AgentConfig = z
  .object({
    node_id: z
      .string()
      .min(1, "must be a non-empty string")
      .max(128, "must be at most 128 characters")
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "must be letters, digits, '.', '_' or '-'"),
    /** Directory holding the datasets this agent may train on; ids resolve only inside it. */
    data_root: z.string().min(1, "must be a non-empty string"),
    /** Coordinator address the agent dials out to (sites never open inbound ports). */
    coordinator_url: z.url("must be a URL").optional(),
    sidecar_port: z.number().int("must be an integer").min(0, "must be >= 0").max(65535, "must be <= 65535").default(8000),
    /** Trust policy file applied to this node's own evidence before it accepts work. */
    trust_policy: z.string().min(1).optional(),
    /**
     * Dataset (id inside data_root) whose spent privacy budget the sidecar shows before any job has
     * run, read from the persistent ledger; without it the sidecar shows 0 until a job starts.
     */
    dataset_id: z
      .string()
      .min(1, "must be a non-empty string")
      .max(1024, "must be at most 1024 characters")
      .optional(),
    accountant: z.enum(["rdp", "prv"]).default("rdp"),
    /**
     * Accept DP_FEDAVG jobs, whose updates leave this agent WITHOUT local noise (the coordinator
     * adds client-level noise). Off by default: a data owner must opt in explicitly.
     */
    accept_client_level_dp: z.boolean().default(false),
    log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace"]).default("info"),
  })
  .strict()
  .meta({ id: "AgentConfig", description: "Configuration of an agent running at a data owner's site." });
export type AgentConfig = z.output<typeof AgentConfig>;
