import { createReadStream, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { encodeFrame, FrameDecoder } from "../channel/frames.js";
import { runRoundTask, type RoundTaskArgs } from "./round-task.js";
import { runTrainTask, type TrainTaskArgs } from "./train-task.js";

/**
 * The guest side of the isolated runtime, started by `/init` inside the microVM (or by the host as
 * a child process under `--isolation process`). It finds the channel (the virtio-serial port named
 * `enclave.channel`, or the inherited fd 3 of a guest process), announces `ready` with the network
 * interfaces it can see (loopback only: the VMM adds no network device), and answers requests.
 * Nothing it prints reaches the host's logs except as structured events.
 */
const PORT_NAME = "enclave.channel";
/** Set by the host for a guest process: the channel is this inherited fd, the data root this directory. */
const PROCESS_CHANNEL_ENV = "ENCLAVE_GUEST_CHANNEL_FD";
const PROCESS_DATA_ENV = "ENCLAVE_GUEST_DATA";
const TEST_FAULTS_WORD = "enclave.test_faults=1";
/** The host's vsock CID, and the port the channel is dialled on (the Firecracker driver listens there). */
const HOST_CID = 2;
const CHANNEL_VSOCK_PORT = 5000;

interface Channel {
  send(m: object): void;
  onData(each: (chunk: Buffer) => void): void;
}

function findPort(): string {
  const root = "/sys/class/virtio-ports";
  for (const p of readdirSync(root)) {
    if (readFileSync(`${root}/${p}/name`, "utf8").trim() === PORT_NAME) return `/dev/${p}`;
  }
  throw new Error(`no virtio-serial port named ${PORT_NAME}`);
}

function socketChannel(socket: Duplex): Channel {
  socket.on("close", () => process.exit(0));
  return { send: (m) => socket.write(encodeFrame(m)), onData: (each) => socket.on("data", each) };
}

async function openChannel(): Promise<Channel> {
  const inherited = process.env[PROCESS_CHANNEL_ENV];
  if (inherited) return socketChannel(new Socket({ fd: Number(inherited), readable: true, writable: true }));
  // vsock to the host (CID 2): Firecracker forwards it to the host's Unix socket; under QEMU's
  // vhost-vsock the host listens on the port the command line names.
  const cmdline = ` ${kernelCommandLine().trim()} `;
  if (cmdline.includes(" enclave.channel=vsock ")) {
    const { vsockTransport } = await import("../../inference/vsock-transport.js");
    const named = / enclave\.vsock_port=([0-9]{1,10}) /.exec(cmdline);
    return socketChannel(
      await vsockTransport.dial(
        { kind: "vsock", cid: HOST_CID, port: named ? Number(named[1]) : CHANNEL_VSOCK_PORT },
        { timeoutMs: 30_000 },
      ),
    );
  }
  // One open only: a virtio-serial port refuses a second one.
  const fd = openSync(findPort(), "r+");
  const input = createReadStream("", { fd, autoClose: false });
  return {
    send: (m) => writeSync(fd, encodeFrame(m)),
    onData: (each) => input.on("data", (c) => each(c as Buffer)),
  };
}

function kernelCommandLine(): string {
  try {
    return readFileSync("/proc/cmdline", "utf8");
  } catch {
    return "";
  }
}

type Handler = (args: unknown) => unknown;

/**
 * End the guest at once, as a crash does. Not process.exit: outside the channel's own data callback a
 * read of the port is pending in libuv's thread pool, and Node's exit joins that pool, so it would
 * block forever on a device read. /init then resets the machine, which ends the VMM.
 */
function crash(): never {
  process.kill(process.pid, "SIGKILL");
  throw new Error("unreachable");
}

function handlers(send: (m: object) => void): Record<string, Handler> {
  const dataRoot = process.env[PROCESS_DATA_ENV] ?? "/data";
  const emit = (event: string, fields: Record<string, number | string>) =>
    send({ type: "event", event, ...fields });
  const table: Record<string, Handler> = {
    ping: () => "pong",
    interfaces: () => readdirSync("/sys/class/net").sort(),
    train: (args) => runTrainTask(args as TrainTaskArgs, dataRoot, emit),
    round: (args) => runRoundTask(args as RoundTaskArgs, dataRoot, emit),
  };
  // Faults on request, for the tests of the host's deadlines: only when the host booted the guest so.
  const faults =
    process.env.ENCLAVE_GUEST_TEST_FAULTS === "1" ||
    ` ${kernelCommandLine().trim()} `.includes(` ${TEST_FAULTS_WORD} `);
  if (faults) {
    table["fault:hang"] = () => new Promise(() => undefined);
    table["fault:crash"] = () => crash();
  }
  return table;
}

async function main(): Promise<void> {
  // A task that throws outside a request is a crash of the guest, never a hang.
  process.on("uncaughtException", crash);
  process.on("unhandledRejection", crash);
  const channel = await openChannel();
  const send = (m: object) => channel.send(m);
  send({ type: "ready", node: process.version, interfaces: readdirSync("/sys/class/net").sort() });
  const table = handlers(send);
  const decoder = new FrameDecoder();
  channel.onData((chunk) => {
    for (const m of decoder.push(chunk)) {
      if (m.type !== "request" || typeof m.id !== "number" || typeof m.method !== "string") continue;
      const id = m.id;
      if (m.method === "exit") {
        send({ type: "reply", id, ok: true, value: null });
        process.exit(0);
      }
      const handler = table[m.method];
      const fail = (err: unknown) => {
        const e = err as { code?: unknown; message?: unknown };
        send({
          type: "reply",
          id,
          ok: false,
          error: { code: typeof e.code === "string" ? e.code : "GUEST_ERROR", message: String(e.message) },
        });
      };
      if (!handler) {
        fail(Object.assign(new Error(`unknown method ${m.method}`), { code: "GUEST_UNKNOWN_METHOD" }));
        continue;
      }
      Promise.resolve()
        .then(() => handler(m.args))
        .then((value) => send({ type: "reply", id, ok: true, value }), fail);
    }
  });
}

void main();
