import { readFile, stat } from "node:fs/promises";
import { parseDocument } from "yaml";
import { EnclaveError, ValidationError } from "../errors.js";
import { AgentConfig } from "../schemas/agent-config.js";
import { parseContract } from "../schemas/contract.js";

const MAX_CONFIG_BYTES = 256 * 1024;

/**
 * Parse agent configuration text, JSON or YAML (JSON is YAML 1.2; the YAML parser also refuses
 * duplicate keys, which JSON.parse would silently resolve to the last one). Errors name the field
 * and the rule, or the line and column of a syntax error, never a value.
 */
export function parseAgentConfigText(text: string): AgentConfig {
  // prettyErrors only adds linePos; the error's message (which quotes the source) is never used.
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const where = e.linePos?.[0] ? `line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "somewhere";
    throw new ValidationError("agent config", [
      { path: "", rule: `not valid JSON or YAML (${e.code} at ${where})` },
    ]);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch {
    throw new ValidationError("agent config", [
      { path: "", rule: "not valid JSON or YAML (aliases or structure)" },
    ]);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError("agent config", [
      { path: "", rule: "must be a mapping (object) at the top level" },
    ]);
  }
  return parseContract(AgentConfig, value, "agent config");
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
