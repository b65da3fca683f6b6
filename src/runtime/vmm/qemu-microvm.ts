import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RuntimeAssets } from "../assets.js";
import type { Accel, ChannelKind } from "../doctor.js";
import { startGuestSession, type GuestEvent, type GuestSession } from "./guest-session.js";

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
  onEvent?: (event: GuestEvent) => void;
  /**
   * A raw image the guest sees as a read-only virtio-blk disk (/dev/vda): the task's dataset, as a
   * cpio archive that /init unpacks into /data and then remounts read-only.
   */
  dataDrive?: string;
}

export interface BootedVm extends GuestSession {
  vmm: "qemu-microvm";
  accel: Accel;
  channel: ChannelKind;
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
  dataDrive?: string;
}): string[] {
  const kvm = o.accel === "kvm";
  const cmdline = [
    "console=ttyS0",
    "panic=-1",
    "quiet",
    ...(kvm ? [] : ["tsc_early_khz=2000000"]),
    ...(o.dataDrive ? ["enclave.data=1"] : []),
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
    // QEMU opens the image read-only and refuses the guest's writes: the dataset cannot be changed.
    ...(o.dataDrive
      ? [
          "-drive",
          `file=${o.dataDrive.replace(/,/g, ",,")},format=raw,if=none,id=data,readonly=on`,
          "-device",
          "virtio-blk-device,drive=data",
        ]
      : []),
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

/** Boot a microVM and wait for its guest's `ready`; a crash or a missed deadline is a typed error. */
export async function bootMicroVm(o: MicroVmOptions): Promise<BootedVm> {
  const dir = await mkdtemp(join(tmpdir(), "enclave-vm-"));
  const socketPath = join(dir, "channel.sock");
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(socketPath, resolve));
  const started = performance.now();
  const child = spawn(
    o.qemu,
    qemuArgs({
      assets: o.assets,
      accel: o.accel,
      memoryMiB: o.memoryMiB ?? 1024,
      socket: socketPath,
      append: o.append ?? [],
      dataDrive: o.dataDrive,
    }),
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  lines(child.stdout!, (l) => o.onConsole?.(l));
  const channel = new Promise<Socket>((resolve) =>
    server.once("connection", (socket: Socket) => {
      server.close(); // one connection: QEMU's
      resolve(socket);
    }),
  );
  const session = await startGuestSession({
    child,
    channel,
    what: "the microVM",
    program: o.qemu,
    bootTimeoutMs: o.bootTimeoutMs,
    started,
    onEvent: o.onEvent,
    cleanup: async () => {
      server.close();
      await rm(dir, { recursive: true, force: true });
    },
  });
  return { ...session, vmm: "qemu-microvm", accel: o.accel, channel: "virtio-serial" };
}
