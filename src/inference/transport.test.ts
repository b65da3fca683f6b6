import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTrustPolicy } from "../attestation/policy/load.js";
import { SimulatedProvider } from "../attestation/providers/software.js";
import { decodeModelFile } from "../model/model-file.js";
import { breastCancerModelFile, breastCancerRows } from "../../test/support/inference.js";
import { ConfidentialClient } from "./client.js";
import { Predictor } from "./predictor.js";
import { InferenceServer } from "./server.js";
import { formatEndpoint, netTransport, parseEndpoint, type Endpoint, type Transport } from "./transport.js";
import {
  localCid,
  VMADDR_CID_ANY,
  VMADDR_CID_LOCAL,
  vsockTransport,
  vsockUnavailableReason,
} from "./vsock-transport.js";

const policy = parseTrustPolicy({ allow_simulated: true });

/** Why the vsock round trip cannot run here, or null when the kernel has vsock loopback. */
async function vsockLoopbackMissing(): Promise<string | null> {
  const reason = vsockUnavailableReason();
  if (reason) return reason;
  const l = await vsockTransport.listen({ kind: "vsock", cid: VMADDR_CID_ANY, port: VMADDR_CID_ANY }, (s) =>
    s.destroy(),
  );
  try {
    const s = await vsockTransport.dial(
      { kind: "vsock", cid: VMADDR_CID_LOCAL, port: (l.endpoint as { port: number }).port },
      { timeoutMs: 1000 },
    );
    s.destroy();
    return null;
  } catch (err) {
    return `the kernel has no vsock loopback (CID ${VMADDR_CID_LOCAL} does not answer: ${(err as Error).message}); load vsock_loopback to run it`;
  } finally {
    await l.close();
  }
}
const noLoopback = await vsockLoopbackMissing();

let server: InferenceServer;
let predictor: Predictor;

beforeAll(async () => {
  predictor = new Predictor(decodeModelFile(await breastCancerModelFile()));
  server = await InferenceServer.create({
    provider: new SimulatedProvider({ measurement: new Uint8Array(48) }),
    predictor,
    mode: "simulation",
  });
});
afterAll(() => server.closeAll());

async function roundTrip(transport: Transport, endpoint: Endpoint, dialAt: (bound: Endpoint) => Endpoint) {
  const listener = await transport.listen(endpoint, (s) => void server.handle(s));
  try {
    const client = await ConfidentialClient.connect(dialAt(listener.endpoint), { policy, transport });
    const rows = breastCancerRows(40);
    expect(await client.predict(rows)).toEqual(await predictor.predictCsv(Buffer.from(rows)));
    client.close();
  } finally {
    await listener.close();
  }
}

describe("transports behind one interface", () => {
  it("parses unix:, tcp: and vsock: endpoints and refuses anything else by rule", () => {
    expect(parseEndpoint("unix:/run/enclave.sock")).toEqual({ kind: "unix", path: "/run/enclave.sock" });
    expect(parseEndpoint("tcp:127.0.0.1:5005")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 5005 });
    expect(parseEndpoint("tcp:[::1]:80")).toEqual({ kind: "tcp", host: "::1", port: 80 });
    expect(parseEndpoint("vsock:16:5005")).toEqual({ kind: "vsock", cid: 16, port: 5005 });
    expect(formatEndpoint(parseEndpoint("tcp:[::1]:80"))).toBe("tcp:[::1]:80");
    for (const bad of [
      "",
      "http://x",
      "tcp:host",
      "tcp:h:0",
      "tcp:h:70000",
      "vsock:x:1",
      "vsock:1:-1",
      "unix:",
    ]) {
      expect(() => parseEndpoint(bad)).toThrow(expect.objectContaining({ code: "ENDPOINT_INVALID" }));
    }
  });

  it("serves the same protocol over loopback TCP", async () => {
    await roundTrip(netTransport, { kind: "tcp", host: "127.0.0.1", port: 0 }, (b) => b);
  });

  it.skipIf(noLoopback !== null)(
    `serves the same protocol over AF_VSOCK (${noLoopback ?? "loopback"})`,
    async () => {
      await roundTrip(vsockTransport, { kind: "vsock", cid: VMADDR_CID_ANY, port: VMADDR_CID_ANY }, (b) => ({
        ...(b as { kind: "vsock"; port: number }),
        cid: VMADDR_CID_LOCAL,
      }));
    },
  );

  it.skipIf(vsockUnavailableReason() !== null)(
    `types a vsock peer that is not there (${vsockUnavailableReason() ?? "AF_VSOCK available"})`,
    async () => {
      expect(localCid()).toBeGreaterThanOrEqual(2);
      // Our own CID through a transport without loopback, or a port nobody listens on: refused, not hung.
      const port = 0x7fff_fff0;
      const err = await vsockTransport
        .dial({ kind: "vsock", cid: localCid(), port }, { timeoutMs: 2000 })
        .catch((e) => e);
      expect(["CONNECTION_REFUSED", "TIMEOUT"]).toContain(err.code);
    },
  );
});
