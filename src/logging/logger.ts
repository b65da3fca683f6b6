import { pino, type DestinationStream, type Logger, type LevelWithSilent } from "pino";

export type { Logger };
export type LogLevel = LevelWithSilent;

/**
 * The project's structured logger (pino, JSON lines). The rule for every call site: log codes,
 * ids, counts and numeric metrics only, never a data value, a row or a free-text field that
 * could carry one. The canary tests drive the whole pipeline at `trace` to hold us to it.
 */
export function createLogger(
  options: { level?: LogLevel; name?: string; destination?: DestinationStream } = {},
): Logger {
  return pino(
    {
      name: options.name ?? "enclave",
      level: options.level ?? (process.env.ENCLAVE_LOG_LEVEL as LogLevel | undefined) ?? "info",
      base: { pid: process.pid },
      // Error objects are reduced to their class, code and message (which our errors keep value-free).
      serializers: {
        err: (e: { name?: string; code?: string; message?: string }) => ({
          type: e?.name,
          code: e?.code,
          message: e?.message,
        }),
      },
    },
    options.destination ?? pino.destination({ dest: 2, sync: true }),
  );
}

/** A logger that drops everything (the default for library code that was given none). */
export const silentLogger: Logger = pino({ level: "silent" });
