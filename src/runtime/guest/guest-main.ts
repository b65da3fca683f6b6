import { createReadStream, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { encodeFrame, FrameDecoder } from "../channel/frames.js";

/**
 * The guest side of the isolated runtime, started by `/init` inside the microVM. It finds the
 * channel (the virtio-serial port named `enclave.channel`), announces `ready` with the network
 * interfaces it can see (loopback only: the VMM adds no network device), and answers requests.
 * Nothing it prints reaches the host's logs except as structured events.
 */
const PORT_NAME = "enclave.channel";

function findPort(): string {
  const root = "/sys/class/virtio-ports";
  for (const p of readdirSync(root)) {
    if (readFileSync(`${root}/${p}/name`, "utf8").trim() === PORT_NAME) return `/dev/${p}`;
  }
  throw new Error(`no virtio-serial port named ${PORT_NAME}`);
}

type Handler = (args: unknown) => unknown;

const handlers: Record<string, Handler> = {
  ping: () => "pong",
  interfaces: () => readdirSync("/sys/class/net").sort(),
};

function main(): void {
  // One open only: a virtio-serial port refuses a second one.
  const fd = openSync(findPort(), "r+");
  const send = (m: object) => writeSync(fd, encodeFrame(m));
  send({ type: "ready", node: process.version, interfaces: readdirSync("/sys/class/net").sort() });
  const decoder = new FrameDecoder();
  const input = createReadStream("", { fd, autoClose: false });
  input.on("data", (chunk) => {
    for (const m of decoder.push(chunk as Buffer)) {
      if (m.type !== "request" || typeof m.id !== "number" || typeof m.method !== "string") continue;
      if (m.method === "exit") {
        send({ type: "reply", id: m.id, ok: true, value: null });
        process.exit(0);
      }
      const handler = handlers[m.method];
      try {
        if (!handler)
          throw Object.assign(new Error(`unknown method ${m.method}`), { code: "GUEST_UNKNOWN_METHOD" });
        send({ type: "reply", id: m.id, ok: true, value: handler(m.args) });
      } catch (err) {
        const e = err as { code?: unknown; message?: unknown };
        send({
          type: "reply",
          id: m.id,
          ok: false,
          error: { code: typeof e.code === "string" ? e.code : "GUEST_ERROR", message: String(e.message) },
        });
      }
    }
  });
}

main();
