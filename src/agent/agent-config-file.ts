import { readFile, stat } from "node:fs/promises";
import { EnclaveError } from "../errors.js";
import { AgentConfig } from "../schemas/agent-config.js";
import { parseConfigText } from "../schemas/config-text.js";
import { parseContract } from "../schemas/contract.js";

const MAX_CONFIG_BYTES = 256 * 1024;

/** Parse and validate agent configuration text (JSON or YAML); errors name the field and rule. */
export function parseAgentConfigText(text: string): AgentConfig {
  return parseContract(AgentConfig, parseConfigText(text, "agent config"), "agent config");
}

/** Read and validate the agent's configuration file (`enclave agent --conf FILE`). */
export async function loadAgentConfig(path: string): Promise<AgentConfig> {
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw Object.assign(new Error("not a file"), { code: "ENOTFILE" });
    size = st.size;
  } catch (err) {
    throw new EnclaveError(
      "CONFIG_UNREADABLE",
      `agent config file cannot be read (${(err as { code?: string }).code ?? "error"})`,
    );
  }
  if (size > MAX_CONFIG_BYTES) {
    throw new EnclaveError("CONFIG_UNREADABLE", `agent config file exceeds ${MAX_CONFIG_BYTES} bytes`);
  }
  return parseAgentConfigText(await readFile(path, "utf8"));
}
