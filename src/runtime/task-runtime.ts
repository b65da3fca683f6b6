import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { parseSafetensors } from "../model/safetensors.js";
import type { StepReservation } from "../privacy/reserved-ledger.js";
import type {
  IsolatedTrainer,
  IsolationReport,
  LocalTrainingOptions,
  TrainedModel,
} from "../training/local-training.js";
import { loadAssets, type RuntimeAssets } from "./assets.js";
import { buildCpio } from "./cpio.js";
import { assessHost, type Accel, type ChannelKind, type ProviderChoice } from "./doctor.js";
import { RuntimeError, RuntimeErrorCode } from "./errors.js";
import { probeHost } from "./host-probe.js";
import { kernelPins, type TrainTaskArgs, type TrainTaskReply } from "./guest/train-task.js";
import { startGuestSession, type GuestEvent, type GuestSession } from "./vmm/guest-session.js";
import { bootFirecracker } from "./vmm/firecracker.js";
import { bootMicroVm } from "./vmm/qemu-microvm.js";

/** The VMM a task's microVM runs under: Firecracker (KVM only) or QEMU's microvm machine. */
export type VmmChoice =
  { firecracker: string; accel: "kvm" } | { qemu: string; accel: Accel; channel?: ChannelKind };

/** A guest event as the host records it: a name and bounded numbers or digests, nothing else. */
export interface RuntimeEvent {
  event: string;
  [field: string]: string | number;
}

export interface TaskRuntimeOptions {
  mode: "microvm" | "process";
  cacheDir: string;
  provider?: ProviderChoice;
  /** Spawn to the guest's `ready` (default 5 minutes: emulated boots are slow on a busy host). */
  bootTimeoutMs?: number;
  /** The task's own deadline, after `ready` (default 1 hour). */
  taskTimeoutMs?: number;
  /** Host-side events: boot, the guest's task_start/task_end, exit. */
  onEvent?: (event: RuntimeEvent) => void;
  /** Said once when the microVM runs under software emulation (tests only, never production). */
  onWarning?: (warning: string) => void;
  /** Enable the guest's fault methods (tests of the deadlines only). */
  testFaults?: boolean;
  /** Tests: send the task as the guest's fault method of that name, which hangs or crashes it. */
  testFault?: "hang" | "crash";
  /**
   * Tests and the bench only: keep the guest after a task and give it the next task whose inputs are
   * byte for byte the same (one emulated boot serves several checks); `close()` ends it. Production
   * boots a fresh guest for every task.
   */
  shareGuest?: boolean;
  /** microvm: the VMM and acceleration, when the caller already knows them (tests, the bench). */
  vmm?: VmmChoice;
}

const EVENT_NAME = /^[a-z][a-z_]{0,31}$/;
const FIELD_NAME = /^[a-z][a-z0-9_]{0,31}$/;
const DIGEST = /^[0-9a-f]{64}$/;

/** The guest is untrusted: an event keeps its name, finite numbers and SHA-256 digests, at most 16 fields. */
export function recordGuestEvent(e: GuestEvent): RuntimeEvent | null {
  if (!EVENT_NAME.test(e.event)) return null;
  const out: RuntimeEvent = { event: e.event, source: "guest" };
  let n = 0;
  for (const [k, v] of Object.entries(e)) {
    if (k === "type" || k === "event" || !FIELD_NAME.test(k) || n >= 16) continue;
    if ((typeof v === "number" && Number.isFinite(v)) || (typeof v === "string" && DIGEST.test(v))) {
      out[k] = v;
      n++;
    }
  }
  return out;
}

/** The compiled guest entry (tests run the TypeScript sources, the guest runs the build). */
function guestEntry(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [
    join(here, "guest/guest-main.js"),
    join(here, "../../dist/runtime/guest/guest-main.js"),
  ])
    if (existsSync(candidate)) return candidate;
  throw new RuntimeError(
    RuntimeErrorCode.HYDRATE_INPUT_MISSING,
    "the guest is not built; run `npm run build`",
  );
}

/** Padded to whole 512-byte sectors: a block device's size. */
const sectors = (b: Buffer) => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);

const MAX_WEIGHTS_BASE64 = 48 * 1024 * 1024;

function decodeReply(reply: unknown): TrainedModel {
  const r = reply as Partial<TrainTaskReply>;
  if (
    typeof r !== "object" ||
    r === null ||
    typeof r.weights !== "string" ||
    r.weights.length > MAX_WEIGHTS_BASE64
  )
    throw new RuntimeError(RuntimeErrorCode.CHANNEL_PROTOCOL, "train reply: weights missing or too large");
  const num = (x: unknown) => (typeof x === "number" ? x : NaN);
  const b = r.baseline as { accuracy?: unknown; loss?: unknown } | undefined;
  return {
    weights: parseSafetensors(Buffer.from(r.weights, "base64")).tensors,
    steps: num(r.steps),
    accuracy: num(r.accuracy),
    loss: num(r.loss),
    baseline: b && typeof b === "object" ? { accuracy: num(b.accuracy), loss: num(b.loss) } : undefined,
    stoppedBy: r.stopped === true ? { code: "PRIVACY_BUDGET_EXHAUSTED", message: "" } : undefined,
    kernels: typeof r.kernels === "string" ? r.kernels : "unknown",
  };
}

/**
 * One task in an isolated runtime: a microVM booted for it (no network device, the dataset on a
 * read-only disk, the channel over virtio-serial), or a child process (`process`: a separate OS
 * process with read-only copies of the inputs and the host's network). The host's ledger is not
 * reachable from either: the task's guard runs on the reservation it is sent.
 */
export class TaskRuntime implements IsolatedTrainer {
  private shared: { session: GuestSession; dir: string; digest: string } | null = null;
  /** Where the guest's events of the current task go. */
  private taskListener: (e: RuntimeEvent) => void = () => undefined;

  private constructor(
    private readonly o: TaskRuntimeOptions,
    readonly isolation: IsolationReport,
    private readonly assets: RuntimeAssets | null,
  ) {}

  /** Check that the mode can run here (the doctor's verdict, one place) and load the assets. */
  static async prepare(o: TaskRuntimeOptions): Promise<TaskRuntime> {
    if (o.mode === "process") return new TaskRuntime(o, { mode: "process", channel: "pipe" }, null);
    const assets = await loadAssets(o.cacheDir);
    let vmm = o.vmm;
    if (!vmm) {
      const facts = await probeHost({ cacheDir: o.cacheDir });
      const verdict = assessHost(facts, o.provider ?? "auto", {
        status: "pass",
        detail: "",
        measurement: assets.measurement,
      }).modes.microvm;
      const binary = verdict.vmm === "firecracker" ? facts.firecracker.path : facts.qemu.path;
      if (!verdict.available || !binary || !verdict.accel)
        throw new RuntimeError(
          RuntimeErrorCode.PROVIDER_UNAVAILABLE,
          `--isolation microvm is unavailable here: ${verdict.reason} (see: enclave runtime doctor)`,
        );
      if (verdict.warning) o.onWarning?.(verdict.warning);
      vmm =
        verdict.vmm === "firecracker"
          ? { firecracker: binary, accel: "kvm" }
          : { qemu: binary, accel: verdict.accel, channel: verdict.channel };
    } else if (vmm.accel === "emulated")
      o.onWarning?.("the microVM runs under software emulation: fine for tests, never for production");
    const fc = "firecracker" in vmm;
    const isolation: IsolationReport = {
      mode: "microvm",
      vmm: fc ? "firecracker" : "qemu-microvm",
      accel: vmm.accel,
      channel: "firecracker" in vmm ? "vsock" : (vmm.channel ?? "virtio-serial"),
      measurement: assets.measurement,
    };
    return new TaskRuntime({ ...o, vmm }, isolation, assets);
  }

  async train(
    options: LocalTrainingOptions,
    reservation: StepReservation,
    inputs: Record<string, string>,
  ): Promise<TrainedModel> {
    const { onStep: _onStep, workspace: _workspace, ...rest } = options;
    const args: TrainTaskArgs = { options: rest, reservation, kernels: kernelPins() };
    return decodeReply(await this.runTask("train", args, inputs));
  }

  /**
   * One federated round's task in the guest (src/runtime/guest/round-task.ts); the reply is the
   * guest's, untrusted: the agent admits it (src/agent/isolated-round.ts). `onEvent` gets this task's
   * events as well as the runtime's listener.
   */
  round(args: object, inputs: Record<string, string>, onEvent?: (e: RuntimeEvent) => void): Promise<unknown> {
    return this.runTask("round", args, inputs, onEvent);
  }

  /**
   * Boot (or spawn) a guest with the task's inputs, send it the task, and end it. A guest that fails
   * the task (a typed error, a crash, a missed deadline) is killed at once, not asked to power off.
   */
  private async runTask(
    method: string,
    args: object,
    inputs: Record<string, string>,
    onEvent?: (e: RuntimeEvent) => void,
  ): Promise<unknown> {
    const emit = (e: RuntimeEvent) => {
      this.o.onEvent?.(e);
      onEvent?.(e);
    };
    this.taskListener = emit;
    const digest = this.o.shareGuest ? await inputsDigest(inputs) : "";
    let guest = this.shared?.digest === digest ? this.shared : null;
    if (!guest) {
      await this.close();
      const dir = await mkdtemp(join(tmpdir(), "enclave-task-"));
      try {
        guest = { session: await this.start(dir, inputs, emit), dir, digest };
      } catch (err) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
    let ok = false;
    try {
      const name = this.o.testFault ? `fault:${this.o.testFault}` : method;
      const reply = await guest.session.connection.request(name, args, this.o.taskTimeoutMs ?? 3_600_000);
      ok = true;
      return reply;
    } finally {
      if (ok && this.o.shareGuest) this.shared = guest;
      else {
        this.shared = null;
        await this.end(guest, ok);
      }
    }
  }

  /** Tests: the guest kept by `shareGuest`, if any. */
  get sharedGuest(): GuestSession | null {
    return this.shared?.session ?? null;
  }

  /** End a guest kept by `shareGuest` (nothing otherwise). */
  async close(): Promise<void> {
    const guest = this.shared;
    this.shared = null;
    if (guest) await this.end(guest, true);
  }

  /** Boot (or spawn) the guest with the inputs; any failure here means the task never started. */
  private async start(
    dir: string,
    inputs: Record<string, string>,
    emit: (e: RuntimeEvent) => void,
  ): Promise<GuestSession> {
    try {
      const session = await (this.assets ? this.bootVm(dir, inputs) : this.spawnProcess(dir, inputs));
      emit({ event: "boot", source: "host", mode: this.isolation.mode, ms: session.bootMs });
      return session;
    } catch (err) {
      throw new RuntimeError(
        RuntimeErrorCode.TASK_NOT_STARTED,
        `the ${this.isolation.mode} runtime did not start: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  private onGuestEvent = (e: GuestEvent) => {
    const r = recordGuestEvent(e);
    if (r) this.taskListener(r);
  };

  private async bootVm(dir: string, inputs: Record<string, string>): Promise<GuestSession> {
    const entries = [];
    for (const [name, path] of Object.entries(inputs))
      entries.push({ path: name, type: "file" as const, data: await readFile(path), mode: 0o444 });
    const image = join(dir, "data.img");
    await writeFile(image, sectors(buildCpio(entries)), { mode: 0o400 });
    const common = {
      assets: this.assets!,
      bootTimeoutMs: this.o.bootTimeoutMs ?? 300_000,
      dataDrive: image,
      append: this.o.testFaults || this.o.testFault ? ["enclave.test_faults=1"] : [],
      onEvent: this.onGuestEvent,
    };
    const vmm = this.o.vmm!;
    return "firecracker" in vmm
      ? bootFirecracker({ ...common, firecracker: vmm.firecracker })
      : bootMicroVm({ ...common, qemu: vmm.qemu, accel: vmm.accel, channel: vmm.channel });
  }

  private async spawnProcess(dir: string, inputs: Record<string, string>): Promise<GuestSession> {
    const data = join(dir, "data");
    await mkdir(data);
    for (const [name, path] of Object.entries(inputs)) {
      await copyFile(path, join(data, name));
      await chmod(join(data, name), 0o444);
    }
    await chmod(data, 0o555);
    const entry = guestEntry();
    const started = performance.now();
    const child = spawn(process.execPath, [entry], {
      stdio: ["ignore", "ignore", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH ?? "",
        ENCLAVE_GUEST_CHANNEL_FD: "3",
        ENCLAVE_GUEST_DATA: data,
        ...(this.o.testFaults || this.o.testFault ? { ENCLAVE_GUEST_TEST_FAULTS: "1" } : {}),
      },
    });
    return startGuestSession({
      child,
      channel: Promise.resolve(child.stdio[3] as Duplex),
      what: "the guest process",
      program: process.execPath,
      bootTimeoutMs: this.o.bootTimeoutMs ?? 60_000,
      started,
      onEvent: this.onGuestEvent,
      cleanup: () => chmod(data, 0o755),
    });
  }

  /**
   * End a guest and record how it ended: one that finished its task is asked to power off (and
   * killed if it has not within 30 s); one that failed it is killed at once.
   */
  private async end(guest: { session: GuestSession; dir: string }, politely: boolean): Promise<void> {
    const { session } = guest;
    try {
      if (politely) {
        await session.connection.request("exit", null, 30_000).catch(() => undefined);
        await Promise.race([session.exited, new Promise((r) => setTimeout(r, 30_000).unref())]);
      }
      await session.stop();
      const x = await session.exited;
      this.taskListener({
        event: "exit",
        source: "host",
        ...(x.code !== null ? { code: x.code } : {}),
        ...(x.signal ? { signal: x.signal } : {}),
      });
    } finally {
      await rm(guest.dir, { recursive: true, force: true });
    }
  }
}

/** What a guest was given: the inputs' names and contents (a shared guest takes only the same inputs). */
async function inputsDigest(inputs: Record<string, string>): Promise<string> {
  const h = createHash("sha256");
  for (const name of Object.keys(inputs).sort())
    h.update(`${name}\0`).update(
      createHash("sha256")
        .update(await readFile(inputs[name]!))
        .digest(),
    );
  return h.digest("hex");
}
