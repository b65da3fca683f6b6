import { createRequire } from "node:module";
import { Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { InferenceError } from "./errors.js";
import { formatEndpoint, netTransport, type Endpoint, type Listener, type Transport } from "./transport.js";

/** The native vsock addon (native/src/vsock.cc): each connection bridged to a socketpair end. */
interface VsockAddon {
  abi: number;
  available(): string | null;
  localCid(): number;
  connect(cid: number, port: number, timeoutMs: number): Promise<number>;
  listen(cid: number, port: number, onConnection: (fd: number) => void): { port: number; close(): void };
}

/** VMADDR_CID_ANY: listen on every CID of this machine (what an enclave does). */
export const VMADDR_CID_ANY = 0xffffffff;
/** VMADDR_CID_LOCAL: this machine's own CID, answered only where the kernel has vsock loopback. */
export const VMADDR_CID_LOCAL = 1;

export const VSOCK_ADDON_PATH = fileURLToPath(
  new URL("../../native/build/Release/enclave_vsock.node", import.meta.url),
);

let loaded: { addon: VsockAddon | null; reason: string | null } | undefined;

function load(): { addon: VsockAddon | null; reason: string | null } {
  if (loaded) return loaded;
  try {
    const addon = createRequire(import.meta.url)(VSOCK_ADDON_PATH) as VsockAddon;
    if (addon.abi !== 1)
      loaded = { addon: null, reason: "the vsock addon is from another version; rebuild it" };
    else loaded = { addon, reason: addon.available() };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    loaded = {
      addon: null,
      reason:
        code === "MODULE_NOT_FOUND"
          ? "the native vsock addon is not built (no C++ toolchain at install time?)"
          : `the native vsock addon failed to load (${typeof code === "string" ? code : "load error"})`,
    };
  }
  return loaded;
}

/** null when vsock can be used here, else why not (for errors and skipped tests). */
export function vsockUnavailableReason(): string | null {
  return load().reason;
}

function addon(): VsockAddon {
  const { addon, reason } = load();
  if (!addon || reason) throw new InferenceError("TRANSPORT_UNAVAILABLE", `vsock: ${reason}`);
  return addon;
}

/** This machine's vsock CID. */
export function localCid(): number {
  return addon().localCid();
}

function typed(err: unknown, endpoint: Endpoint): InferenceError {
  const code = String((err as { code?: unknown })?.code ?? "EIO");
  const where = formatEndpoint(endpoint);
  if (code === "ECONNREFUSED" || code === "ECONNRESET") {
    return new InferenceError(
      "CONNECTION_REFUSED",
      `cannot connect to ${where} (${code}): is the enclave listening?`,
    );
  }
  if (code === "ETIMEDOUT") return new InferenceError("TIMEOUT", `connecting to ${where} timed out`);
  if (code === "ENODEV" || code === "EHOSTUNREACH" || code === "ENETUNREACH") {
    return new InferenceError("CONNECTION_REFUSED", `cannot reach ${where} (${code}): no such CID here`);
  }
  return new InferenceError("TRANSPORT_UNAVAILABLE", `vsock on ${where} failed (${code})`);
}

const wrap = (fd: number) => new Socket({ fd, readable: true, writable: true });

/** AF_VSOCK through the native addon, behind the same Transport interface as Unix and TCP. */
export const vsockTransport: Transport = {
  async listen(endpoint, onConnection): Promise<Listener> {
    if (endpoint.kind !== "vsock")
      throw new InferenceError("ENDPOINT_INVALID", "vsockTransport takes vsock endpoints");
    let handle: { port: number; close(): void };
    try {
      handle = addon().listen(endpoint.cid, endpoint.port, (fd) => onConnection(wrap(fd)));
    } catch (err) {
      if (err instanceof InferenceError) throw err;
      throw typed(err, endpoint);
    }
    return {
      endpoint: { ...endpoint, port: handle.port },
      close: async () => handle.close(),
    };
  },

  async dial(endpoint, { timeoutMs }) {
    if (endpoint.kind !== "vsock")
      throw new InferenceError("ENDPOINT_INVALID", "vsockTransport takes vsock endpoints");
    const a = addon();
    try {
      return wrap(await a.connect(endpoint.cid, endpoint.port, Math.max(1, Math.round(timeoutMs))));
    } catch (err) {
      throw typed(err, endpoint);
    }
  },
};

/** The transport for an endpoint: vsock through the native addon, Unix and TCP through node:net. */
export function transportFor(endpoint: Endpoint): Transport {
  return endpoint.kind === "vsock" ? vsockTransport : netTransport;
}
