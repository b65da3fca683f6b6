import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The CLI launcher, as a user runs it. */
export const ENCLAVE_BIN = fileURLToPath(new URL("../../bin/enclave.js", import.meta.url));

/** Runs `enclave ARGS` as a separate OS process in `cwd` with exactly `env`; resolves on exit. */
export function runEnclave(
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ENCLAVE_BIN, ...args], {
      cwd: options.cwd,
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b) => (stdout += b));
    child.stderr.on("data", (b) => (stderr += b));
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}
