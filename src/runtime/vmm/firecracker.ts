import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RuntimeAssets } from "../assets.js";
import { RuntimeError, RuntimeErrorCode } from "../errors.js";
import { startGuestSession, type GuestEvent, type GuestSession } from "./guest-session.js";

/** The guest's CID and the port it dials on the host (CID 2) for the channel. */
export const GUEST_CID = 3;
export const CHANNEL_VSOCK_PORT = 5000;

export interface FirecrackerOptions {
  firecracker: string;
  assets: RuntimeAssets;
  memoryMiB?: number;
  bootTimeoutMs: number;
  /** The task's dataset as a raw image, attached read-only (the guest's /dev/vda). */
  dataDrive?: string;
  append?: string[];
  onEvent?: (event: GuestEvent) => void;
  /** Deadline of one API request. */
  apiTimeoutMs?: number;
}

export interface BootedFirecracker extends GuestSession {
  vmm: "firecracker";
  accel: "kvm";
  channel: "vsock";
}

/** One API call as this driver makes it: method, path and JSON body. */
export interface ApiCall {
  method: "PUT";
  path: string;
  body: Record<string, unknown>;
}

/**
 * The API calls that configure and start the microVM, in order: machine, boot source (the ELF
 * vmlinux and the rootfs as initrd), the read-only dataset drive, the vsock device with its
 * Unix-socket host side, and InstanceStart. There is no network-interfaces call, ever: the guest
 * gets no network device.
 */
export function firecrackerCalls(o: {
  assets: RuntimeAssets;
  memoryMiB: number;
  vsockPath: string;
  dataDrive?: string;
  append: string[];
}): ApiCall[] {
  const bootArgs = [
    "console=ttyS0",
    "reboot=k",
    "panic=-1",
    "pci=off",
    "quiet",
    "enclave.channel=vsock",
    ...(o.dataDrive ? ["enclave.data=1"] : []),
    ...o.append,
  ].join(" ");
  return [
    {
      method: "PUT",
      path: "/machine-config",
      body: { vcpu_count: 1, mem_size_mib: o.memoryMiB, smt: false },
    },
    {
      method: "PUT",
      path: "/boot-source",
      body: { kernel_image_path: o.assets.kernel, initrd_path: o.assets.rootfs, boot_args: bootArgs },
    },
    ...(o.dataDrive
      ? [
          {
            method: "PUT" as const,
            path: "/drives/data",
            body: { drive_id: "data", path_on_host: o.dataDrive, is_root_device: false, is_read_only: true },
          },
        ]
      : []),
    { method: "PUT", path: "/vsock", body: { guest_cid: GUEST_CID, uds_path: o.vsockPath } },
    { method: "PUT", path: "/actions", body: { action_type: "InstanceStart" } },
  ];
}

/** One call on the API socket; a non-2xx answer is VMM_START_FAILED with Firecracker's fault message. */
export function callApi(socketPath: string, call: ApiCall, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify(call.body);
    const req = request(
      {
        socketPath,
        method: call.method,
        path: call.path,
        headers: {
          "content-type": "application/json",
          accept: "application/json",
          "content-length": Buffer.byteLength(body),
        },
        timeout: timeoutMs,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (text = (text + d).slice(0, 2048)));
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve();
          let fault = "";
          try {
            fault = String((JSON.parse(text) as { fault_message?: unknown }).fault_message ?? "");
          } catch {
            // not JSON: the status alone
          }
          reject(
            new RuntimeError(
              RuntimeErrorCode.VMM_START_FAILED,
              `firecracker ${call.method} ${call.path}: HTTP ${status}${fault ? `: ${fault.slice(0, 300)}` : ""}`,
            ),
          );
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) =>
      reject(
        new RuntimeError(
          RuntimeErrorCode.VMM_START_FAILED,
          `firecracker ${call.method} ${call.path}: ${(err as Error).message}`,
        ),
      ),
    );
    req.end(body);
  });
}

/**
 * Wait until the API socket accepts a connection. Its file appears when Firecracker binds it, a
 * moment before it listens: a call in between is refused, so the file alone is not readiness.
 */
async function waitForSocket(path: string, deadline: number): Promise<void> {
  const accepts = () =>
    new Promise<boolean>((resolve) => {
      const s = connect(path);
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
  for (;;) {
    if (await accepts()) return;
    if (Date.now() > deadline)
      throw new RuntimeError(RuntimeErrorCode.VMM_START_FAILED, "firecracker did not open its API socket");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Boot a Firecracker microVM (it needs working KVM) and wait for its guest's `ready` over vsock:
 * the guest dials the host (CID 2) on CHANNEL_VSOCK_PORT, which Firecracker forwards to the Unix
 * socket `<uds_path>_<port>` that the host listens on. Same framing and typed errors as QEMU's.
 */
export async function bootFirecracker(o: FirecrackerOptions): Promise<BootedFirecracker> {
  const dir = await mkdtemp(join(tmpdir(), "enclave-fc-"));
  const apiSocket = join(dir, "api.sock");
  const vsockPath = join(dir, "vsock.sock");
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) =>
    server.once("error", reject).listen(`${vsockPath}_${CHANNEL_VSOCK_PORT}`, resolve),
  );
  const started = performance.now();
  const child = spawn(o.firecracker, ["--api-sock", apiSocket, "--id", "enclave-task"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const channel = new Promise<Socket>((resolve) =>
    server.once("connection", (socket: Socket) => {
      server.close(); // one connection: the guest's
      resolve(socket);
    }),
  );
  const configured = (async () => {
    const apiTimeout = o.apiTimeoutMs ?? 10_000;
    await waitForSocket(apiSocket, Date.now() + apiTimeout);
    for (const call of firecrackerCalls({
      assets: o.assets,
      memoryMiB: o.memoryMiB ?? 1024,
      vsockPath,
      dataDrive: o.dataDrive,
      append: o.append ?? [],
    }))
      await callApi(apiSocket, call, apiTimeout);
  })();
  const session = startGuestSession({
    child,
    // A failed configuration fails the boot at once (the session then kills Firecracker).
    channel: Promise.race([channel, configured.then(() => channel)]),
    what: "the microVM",
    program: o.firecracker,
    bootTimeoutMs: o.bootTimeoutMs,
    started,
    onEvent: o.onEvent,
    cleanup: async () => {
      server.close();
      await rm(dir, { recursive: true, force: true });
    },
  });
  return { ...(await session), vmm: "firecracker", accel: "kvm", channel: "vsock" };
}
