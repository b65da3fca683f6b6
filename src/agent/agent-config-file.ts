import { readRegularFile } from "../storage/regular-file.js";
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
  const bytes = await readRegularFile(path, "agent config file", MAX_CONFIG_BYTES, "CONFIG_UNREADABLE");
  return parseAgentConfigText(bytes.toString("utf8"));
}
