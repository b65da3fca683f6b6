/**
 * Set by a supervisor (`enclave poc`) on its children: stdin is the supervisor's pipe, and its end
 * (the supervisor exited, SIGKILL included) stops the child as SIGTERM would, so none is orphaned.
 */
export const STOP_WITH_SUPERVISOR_ENV = "ENCLAVE_STOP_WITH_SUPERVISOR";

/**
 * Resolves on the first SIGINT or SIGTERM (or, for a supervised child, when its supervisor's pipe
 * closes: "SIGTERM"); a second signal gets the default action (terminate now).
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolveSignal) => {
    const on = (signal: NodeJS.Signals) => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      resolveSignal(signal);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
    if (process.env[STOP_WITH_SUPERVISOR_ENV] === "1") {
      process.stdin.once("end", () => on("SIGTERM"));
      process.stdin.once("error", () => on("SIGTERM"));
      process.stdin.resume();
    }
  });
}
