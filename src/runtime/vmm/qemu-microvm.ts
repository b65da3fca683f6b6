import { spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { VMADDR_CID_ANY, vsockTransport } from "../../inference/vsock-transport.js";
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
  /**
   * `vsock` where the host has /dev/vhost-vsock (and AF_VSOCK sockets): a vhost-vsock-device with its
   * own guest CID, the guest dialling the host (CID 2) on a port the host listens on; otherwise (the
   * default) virtio-serial over a Unix socket. The framing and the typed errors are the same.
   */
  channel?: ChannelKind;
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
  /** virtio-serial: the Unix socket the host listens on. */
  socket: string;
  append: string[];
  dataDrive?: string;
  /** vsock instead of virtio-serial: the guest's CID and the host port it dials. */
  vsock?: { cid: number; port: number };
}): string[] {
  const kvm = o.accel === "kvm";
  const cmdline = [
    "console=ttyS0",
    "panic=-1",
    "quiet",
    ...(kvm ? [] : ["tsc_early_khz=2000000"]),
    ...(o.dataDrive ? ["enclave.data=1"] : []),
    ...(o.vsock ? ["enclave.channel=vsock", `enclave.vsock_port=${o.vsock.port}`] : []),
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
    ...(o.vsock
      ? ["-device", `vhost-vsock-device,guest-cid=${o.vsock.cid}`]
      : [
          ...["-chardev", `socket,id=channel,path=${o.socket}`],
          "-device",
          "virtio-serial-device,max_ports=2",
          "-device",
          `virtserialport,chardev=channel,name=${CHANNEL_PORT_NAME}`,
        ]),
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

/** A random value in [lo, hi): guest CIDs and host ports, unique per VM on this host with high odds. */
const pick = (lo: number, hi: number) => lo + randomInt(hi - lo);

/** The channel's host end: a Unix socket QEMU connects to, or an AF_VSOCK port the guest dials. */
async function listenChannel(
  o: MicroVmOptions,
  socketPath: string,
): Promise<{ channel: Promise<Duplex>; close: () => Promise<void>; vsock?: { cid: number; port: number } }> {
  if (o.channel === "vsock") {
    let accept!: (s: Duplex) => void;
    const channel = new Promise<Duplex>((r) => (accept = r));
    // The first connection only: the guest's (the addon does not report the peer CID; see docs/runtime.md).
    let taken = false;
    for (let attempt = 0; ; attempt++) {
      const port = pick(1 << 16, 1 << 30);
      try {
        const listener = await vsockTransport.listen({ kind: "vsock", cid: VMADDR_CID_ANY, port }, (s) => {
          if (taken) return void s.destroy();
          taken = true;
          accept(s);
        });
        return { channel, close: () => listener.close(), vsock: { cid: pick(3, 1 << 30), port } };
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
  }
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(socketPath, resolve));
  const channel = new Promise<Socket>((resolve) =>
    server.once("connection", (socket: Socket) => {
      server.close(); // one connection: QEMU's
      resolve(socket);
    }),
  );
  return { channel, close: async () => void server.close() };
}

/** Boot a microVM and wait for its guest's `ready`; a crash or a missed deadline is a typed error. */
export async function bootMicroVm(o: MicroVmOptions): Promise<BootedVm> {
  const dir = await mkdtemp(join(tmpdir(), "enclave-vm-"));
  const socketPath = join(dir, "channel.sock");
  const host = await listenChannel(o, socketPath);
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
      vsock: host.vsock,
    }),
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  lines(child.stdout!, (l) => o.onConsole?.(l));
  const session = await startGuestSession({
    child,
    channel: host.channel,
    what: "the microVM",
    program: o.qemu,
    bootTimeoutMs: o.bootTimeoutMs,
    started,
    onEvent: o.onEvent,
    cleanup: async () => {
      await host.close();
      await rm(dir, { recursive: true, force: true });
    },
  });
  return { ...session, vmm: "qemu-microvm", accel: o.accel, channel: host.vsock ? "vsock" : "virtio-serial" };
}
