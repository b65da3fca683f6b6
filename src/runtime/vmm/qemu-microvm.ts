import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RuntimeAssets } from "../assets.js";
import { FrameDecoder } from "../channel/frames.js";
import type { Accel, ChannelKind } from "../doctor.js";
import { RuntimeError, RuntimeErrorCode } from "../errors.js";
import { GuestConnection, type GuestMessage, type VmExit } from "./guest-connection.js";

/** The virtio-serial port's name; the guest finds its device by it under /sys/class/virtio-ports. */
export const CHANNEL_PORT_NAME = "enclave.channel";

export interface MicroVmOptions {
  qemu: string;
  assets: RuntimeAssets;
  accel: Accel;
  /** Guest RAM; the initramfs (about 150 MiB) and Node.js live in it. */
  memoryMiB?: number;
  /** From spawn to the guest's `ready` message. */
  bootTimeoutMs: number;
  /** Extra kernel command-line words (tests use them to inject guest faults). */
  append?: string[];
  /** Each line the guest console prints (kernel and /init): for debug logs, never for errors. */
  onConsole?: (line: string) => void;
  onEvent?: (event: Extract<GuestMessage, { type: "event" }>) => void;
}

export interface BootedVm {
  vmm: "qemu-microvm";
  accel: Accel;
  channel: ChannelKind;
  bootMs: number;
  ready: Extract<GuestMessage, { type: "ready" }>;
  connection: GuestConnection;
  /** Resolves when the VMM process ends. */
  exited: Promise<VmExit>;
  stop(): Promise<void>;
}

/**
 * QEMU's microvm machine command line: no default devices, no network device (`-nic none`), the
 * console on the ISA serial port, the channel as a virtio-serial port over a Unix socket that the
 * host listens on and QEMU connects to, QEMU's own seccomp sandbox, and -no-reboot so the guest's
 * reset ends the process. Under emulation `tsc_early_khz` gives the kernel a TSC frequency: microvm
 * has no PIT speaker gate, HPET or PM timer to calibrate against, and the boot would stall.
 */
export function qemuArgs(o: {
  assets: RuntimeAssets;
  accel: Accel;
  memoryMiB: number;
  socket: string;
  append: string[];
}): string[] {
  const kvm = o.accel === "kvm";
  const cmdline = [
    "console=ttyS0",
    "panic=-1",
    "quiet",
    ...(kvm ? [] : ["tsc_early_khz=2000000"]),
    ...o.append,
  ];
  return [
    ...[
      "-machine",
      kvm ? "microvm,accel=kvm" : "microvm,accel=tcg,pit=on,pic=on,rtc=on",
      "-cpu",
      kvm ? "host" : "max",
    ],
    ...["-m", String(o.memoryMiB), "-smp", "1"],
    ...["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-nic", "none"],
    ...["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"],
    ...["-serial", "stdio"],
    ...["-kernel", o.assets.kernel, "-initrd", o.assets.rootfs, "-append", cmdline.join(" ")],
    ...["-chardev", `socket,id=channel,path=${o.socket}`],
    ...[
      "-device",
      "virtio-serial-device,max_ports=2",
      "-device",
      `virtserialport,chardev=channel,name=${CHANNEL_PORT_NAME}`,
    ],
  ];
}

function lines(stream: NodeJS.ReadableStream, each: (line: string) => void): void {
  let rest = "";
  stream.on("data", (d: Buffer) => {
    const parts = (rest + d.toString("utf8")).split(/\r?\n/);
    rest = parts.pop()!.slice(-4096);
    parts.forEach(each);
  });
}

/** `ready` as the guest must send it: its Node.js version and at most 64 interface names. */
function isReady(m: Record<string, unknown>): m is Extract<GuestMessage, { type: "ready" }> {
  const names = m.interfaces;
  return (
    m.type === "ready" &&
    typeof m.node === "string" &&
    m.node.length <= 64 &&
    Array.isArray(names) &&
    names.length <= 64 &&
    names.every((n) => typeof n === "string" && n.length <= 64)
  );
}

/** Boot a microVM and wait for its guest's `ready`; a crash or a missed deadline is a typed error. */
export async function bootMicroVm(o: MicroVmOptions): Promise<BootedVm> {
  const dir = await mkdtemp(join(tmpdir(), "enclave-vm-"));
  const socketPath = join(dir, "channel.sock");
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(socketPath, resolve));
  const started = performance.now();
  const child: ChildProcess = spawn(
    o.qemu,
    qemuArgs({
      assets: o.assets,
      accel: o.accel,
      memoryMiB: o.memoryMiB ?? 1024,
      socket: socketPath,
      append: o.append ?? [],
    }),
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stopping = false;
  let stderrTail = "";
  const exited = new Promise<VmExit>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal }));
    child.once("error", () => resolve({ code: null, signal: null }));
  });
  child.stderr!.on("data", (d: Buffer) => (stderrTail = (stderrTail + d.toString("utf8")).slice(-2048)));
  lines(child.stdout!, (l) => o.onConsole?.(l));
  const cleanup = async () => {
    server.close();
    await rm(dir, { recursive: true, force: true });
  };
  const stop = async () => {
    stopping = true;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    await cleanup();
  };

  let connection: GuestConnection | undefined;
  const decoder = new FrameDecoder();
  const booted = new Promise<Extract<GuestMessage, { type: "ready" }>>((resolve, reject) => {
    server.once("connection", (socket: Socket) => {
      server.close(); // one connection: QEMU's
      // A guest that breaks the protocol is not talked to again: its VM is stopped.
      connection = new GuestConnection(
        (f) => socket.write(f),
        (e) => o.onEvent?.(e),
        () => void stop(),
      );
      let ready = false;
      socket.on("data", (chunk: Buffer) => {
        let messages;
        try {
          messages = decoder.push(chunk);
        } catch (err) {
          connection!.end(err as RuntimeError);
          reject(err);
          void stop();
          return;
        }
        for (const m of messages) {
          if (!ready) {
            if (!isReady(m)) {
              const err = new RuntimeError(
                RuntimeErrorCode.CHANNEL_PROTOCOL,
                "the guest's first message was not ready",
              );
              connection!.end(err);
              reject(err);
              void stop();
              return;
            }
            ready = true;
            resolve(m);
          } else connection!.receive(m);
        }
      });
      socket.on("error", () => undefined);
    });
    void exited.then((x) => {
      const how = x.signal ? `signal ${x.signal}` : `exit status ${x.code}`;
      const why = stopping
        ? new RuntimeError(RuntimeErrorCode.GUEST_CRASHED, "the microVM was stopped")
        : x.code === null && x.signal === null
          ? new RuntimeError(RuntimeErrorCode.VMM_START_FAILED, `cannot start ${o.qemu}`)
          : new RuntimeError(
              RuntimeErrorCode.GUEST_CRASHED,
              `the microVM ended (${how}) before the guest finished`,
            );
      connection?.end(why);
      if (stderrTail.trim() && !connection)
        why.message += `: ${stderrTail
          .trim()
          .split("\n")[0]!
          .replace(/^qemu-system-x86_64: /, "")}`;
      reject(why);
    });
  });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new RuntimeError(
            RuntimeErrorCode.GUEST_TIMEOUT,
            `the guest was not ready within ${o.bootTimeoutMs} ms`,
          ),
        ),
      o.bootTimeoutMs,
    );
  });
  try {
    const ready = await Promise.race([booted, deadline]);
    return {
      vmm: "qemu-microvm",
      accel: o.accel,
      channel: "virtio-serial",
      bootMs: Math.round(performance.now() - started),
      ready,
      connection: connection!,
      exited,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
