import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, rmSync, writeFileSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { STOP_WITH_SUPERVISOR_ENV } from "../cli/signals.js";

/** One supervised child: `node <entry> ...args`, its output appended to `<logs>/<name>.log`. */
export interface ChildSpec {
  name: string;
  args: string[];
  /** Every line the child writes (stdout and stderr), for readiness checks. */
  onLine?: (line: string) => void;
}

export interface SupervisorOptions {
  /** The script the children run (the CLI's entry). */
  entry: string;
  /** `<name>.pid` for each running child. */
  pidDir: string;
  /** `<name>.log`: each child's stdout and stderr, across restarts. */
  logDir: string;
  env?: NodeJS.ProcessEnv;
  /** Restarts per child before it is given up (default 5). */
  maxRestarts?: number;
  /** First restart delay, doubled each time up to 8 s (default 500 ms). */
  backoffMs?: number;
  /** How long a child has to exit after SIGTERM before SIGKILL (default 10 s). */
  stopGraceMs?: number;
  /** A child exited unexpectedly and is restarted after `delayMs` (or given up when `delayMs` is null). */
  onExit?: (name: string, how: string, restart: number, delayMs: number | null) => void;
}

interface Supervised {
  spec: ChildSpec;
  child: ChildProcess | null;
  restarts: number;
  log: WriteStream;
  timer?: NodeJS.Timeout;
}

/**
 * A small service manager for `enclave poc`: it runs each child as its own OS process (its own
 * process group, so a terminal's Ctrl-C reaches only the supervisor, which stops them in order;
 * its stdin the supervisor's pipe, so a supervisor that dies takes its children with it),
 * writes its pid to `<pidDir>/<name>.pid`, and restarts a child that exits while it should run,
 * with exponential backoff, up to a cap (counted per child). `stop()` sends SIGTERM, then
 * SIGKILL after a grace period, and removes the pid files: no child outlives it.
 */
export class Supervisor {
  private readonly children = new Map<string, Supervised>();
  private stopping = false;
  private gaveUp: ((name: string) => void) | null = null;

  constructor(private readonly o: SupervisorOptions) {
    mkdirSync(o.pidDir, { recursive: true });
    mkdirSync(o.logDir, { recursive: true });
  }

  /** Start a child and keep it running until `stop()`. */
  start(spec: ChildSpec): void {
    const s: Supervised = {
      spec,
      child: null,
      restarts: 0,
      log: createWriteStream(join(this.o.logDir, `${spec.name}.log`), { flags: "a" }),
    };
    this.children.set(spec.name, s);
    this.launch(s);
  }

  /** How often each child was restarted. */
  restarts(): Record<string, number> {
    return Object.fromEntries([...this.children].map(([name, s]) => [name, s.restarts]));
  }

  /** The pid of a running child. */
  pid(name: string): number | undefined {
    return this.children.get(name)?.child?.pid;
  }

  /** Called with the name of a child given up after its last allowed restart. */
  onGiveUp(listener: (name: string) => void): void {
    this.gaveUp = listener;
  }

  private pidFile(name: string): string {
    return join(this.o.pidDir, `${name}.pid`);
  }

  private launch(s: Supervised): void {
    // stdin is this supervisor's pipe: when it closes (this process gone, even by SIGKILL), the
    // child stops as on SIGTERM.
    const child = spawn(process.execPath, [this.o.entry, ...s.spec.args], {
      env: { ...(this.o.env ?? process.env), [STOP_WITH_SUPERVISOR_ENV]: "1" },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    child.stdin!.on("error", () => undefined); // a child that exits first closes it
    s.child = child;
    if (child.pid !== undefined) writeFileSync(this.pidFile(s.spec.name), `${child.pid}\n`);
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.pipe(s.log, { end: false });
      if (s.spec.onLine) createInterface({ input: stream }).on("line", s.spec.onLine);
    }
    child.once("error", () => undefined); // an exec failure also ends in "exit"
    child.once("exit", (code, signal) => this.exited(s, child, code, signal));
  }

  private exited(s: Supervised, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null) {
    if (s.child !== child) return;
    s.child = null;
    rmSync(this.pidFile(s.spec.name), { force: true });
    if (this.stopping) return;
    const how = signal ? `killed by ${signal}` : `exited with code ${code}`;
    if (s.restarts >= (this.o.maxRestarts ?? 5)) {
      this.o.onExit?.(s.spec.name, how, s.restarts, null);
      this.gaveUp?.(s.spec.name);
      return;
    }
    s.restarts++;
    const delay = Math.min(8000, (this.o.backoffMs ?? 500) * 2 ** (s.restarts - 1));
    this.o.onExit?.(s.spec.name, how, s.restarts, delay);
    s.timer = setTimeout(() => {
      s.timer = undefined;
      if (!this.stopping) this.launch(s);
    }, delay);
  }

  /** Stop every child (SIGTERM, then SIGKILL after the grace period); resolves when all have exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.children.values()].map(async (s) => {
        clearTimeout(s.timer);
        const child = s.child;
        if (child && child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((r) => child.once("exit", () => r()));
          child.kill("SIGCONT"); // a stopped child cannot act on SIGTERM
          child.kill("SIGTERM");
          const force = setTimeout(() => child.kill("SIGKILL"), this.o.stopGraceMs ?? 10_000);
          await exited;
          clearTimeout(force);
        }
        rmSync(this.pidFile(s.spec.name), { force: true });
        await new Promise<void>((r) => s.log.end(r));
      }),
    );
  }
}
