import { spawn } from "node:child_process";

const JOB = new URL("./job-process.ts", import.meta.url).pathname;
const root = new URL("../..", import.meta.url).pathname;

/**
 * One `job-process.ts` as its own OS process (the embedded database, never DATABASE_URL from the
 * environment): its last stdout line parsed, or `killed` when SIGKILLed after `killAfterMs`. A
 * non-zero exit rejects with the tail of its stderr.
 */
export function runJobProcess(
  args: object,
  killAfterMs: number | null = null,
): Promise<{ killed: true } | { killed: false; result: Record<string, unknown> }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ["--import", "tsx", JOB, JSON.stringify(args)], {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, DATABASE_URL: "" },
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (b) => (out += b));
    child.stderr.on("data", (b) => (err += b));
    const timer = killAfterMs === null ? null : setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.on("error", rej);
    child.on("exit", (code, signal) => {
      if (timer) clearTimeout(timer);
      if (signal === "SIGKILL") return res({ killed: true });
      if (code !== 0) return rej(new Error(`job exited ${code}: ${err.slice(-2000)}`));
      res({ killed: false, result: JSON.parse(out.trim().split("\n").pop()!) });
    });
  });
}
