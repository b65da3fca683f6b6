import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { RuntimeAssets } from "../assets.js";
import { bootFirecracker, CHANNEL_VSOCK_PORT, firecrackerCalls, GUEST_CID } from "./firecracker.js";

const assets = { kernel: "/cache/vmlinux", rootfs: "/cache/rootfs.cpio" } as RuntimeAssets;

/**
 * Firecracker cannot run on these machines (it needs working KVM, and the binary is not packaged):
 * this stand-in serves Firecracker's API on --api-sock (HTTP over a Unix socket), records each
 * request, answers 204 (or a 400 fault for `fault` on that path), and on InstanceStart plays the
 * guest: it connects to the vsock's host side, `<uds_path>_<port>`, as Firecracker does for a guest
 * that dials CID 2, and speaks the channel.
 */
function fakeFirecracker(behaviour: { fault?: string; guest?: "ready" | "silent" } = {}): {
  path: string;
  log: string;
} {
  const dir = mkdtempSync(join(tmpdir(), "fake-firecracker-"));
  const path = join(dir, "firecracker");
  const log = join(dir, "requests.jsonl");
  writeFileSync(
    path,
    `#!${process.execPath}
const http = require("node:http");
const net = require("node:net");
const fs = require("node:fs");
const sock = process.argv[process.argv.indexOf("--api-sock") + 1];
const behaviour = ${JSON.stringify(behaviour)};
const frame = (m) => { const b = Buffer.from(JSON.stringify(m)); const h = Buffer.alloc(4); h.writeUInt32BE(b.length); return Buffer.concat([h, b]); };
let vsock;
http.createServer((req, res) => {
  let body = "";
  req.on("data", (d) => (body += d));
  req.on("end", () => {
    const parsed = JSON.parse(body);
    fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({ method: req.method, path: req.url, type: req.headers["content-type"], body: parsed }) + "\\n");
    if (behaviour.fault === req.url) {
      res.writeHead(400, { "content-type": "application/json" });
      return res.end(JSON.stringify({ fault_message: "Invalid kernel path" }));
    }
    if (req.url === "/vsock") vsock = parsed.uds_path;
    res.writeHead(204).end();
    if (req.url === "/actions" && parsed.action_type === "InstanceStart" && behaviour.guest !== "silent") {
      const s = net.connect(vsock + "_${CHANNEL_VSOCK_PORT}", () => s.write(frame({ type: "ready", node: "v0", interfaces: ["lo"] })));
      s.on("data", () => s.write(frame({ type: "reply", id: 1, ok: true, value: "pong" })));
    }
  });
}).listen(sock);
`,
  );
  chmodSync(path, 0o755);
  return { path, log };
}

const requests = (log: string) =>
  readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .map(
      (l) => JSON.parse(l) as { method: string; path: string; type: string; body: Record<string, unknown> },
    );

describe("the Firecracker driver (against a stand-in API server: Firecracker cannot run here)", () => {
  it("configures machine, boot source, a read-only data drive and vsock, never a network interface, then starts", () => {
    const calls = firecrackerCalls({
      assets,
      memoryMiB: 512,
      vsockPath: "/run/v.sock",
      dataDrive: "/run/data.img",
      append: [],
    });
    expect(calls.map((c) => c.path)).toEqual([
      "/machine-config",
      "/boot-source",
      "/drives/data",
      "/vsock",
      "/actions",
    ]);
    expect(calls.every((c) => c.method === "PUT" && !c.path.startsWith("/network-interfaces"))).toBe(true);
    expect(calls[2]!.body).toMatchObject({ is_read_only: true, is_root_device: false });
    expect(calls[3]!.body).toEqual({ guest_cid: GUEST_CID, uds_path: "/run/v.sock" });
    expect(String(calls[1]!.body.boot_args)).toContain("enclave.channel=vsock");
    expect(String(calls[1]!.body.boot_args)).toContain("enclave.data=1");
  });

  it("boots over the API socket and talks to the guest over the vsock's Unix-socket host side", async () => {
    const fc = fakeFirecracker();
    const vm = await bootFirecracker({
      firecracker: fc.path,
      assets,
      bootTimeoutMs: 10_000,
      dataDrive: "/d.img",
    });
    try {
      expect([vm.vmm, vm.accel, vm.channel]).toEqual(["firecracker", "kvm", "vsock"]);
      expect(vm.ready.interfaces).toEqual(["lo"]);
      expect(await vm.connection.request("ping", null, 5000)).toBe("pong");
      const seen = requests(fc.log);
      expect(seen.map((r) => `${r.method} ${r.path}`)).toEqual([
        "PUT /machine-config",
        "PUT /boot-source",
        "PUT /drives/data",
        "PUT /vsock",
        "PUT /actions",
      ]);
      expect(seen.every((r) => r.type === "application/json")).toBe(true);
      expect(seen[1]!.body).toMatchObject({
        kernel_image_path: "/cache/vmlinux",
        initrd_path: "/cache/rootfs.cpio",
      });
      expect(seen[2]!.body).toEqual({
        drive_id: "data",
        path_on_host: "/d.img",
        is_root_device: false,
        is_read_only: true,
      });
      expect(seen[4]!.body).toEqual({ action_type: "InstanceStart" });
    } finally {
      await vm.stop();
    }
  });

  it("turns an API fault into VMM_START_FAILED naming the call, and a silent guest into GUEST_TIMEOUT", async () => {
    await expect(
      bootFirecracker({
        firecracker: fakeFirecracker({ fault: "/boot-source" }).path,
        assets,
        bootTimeoutMs: 10_000,
      }),
    ).rejects.toMatchObject({
      code: "RUNTIME_VMM_START_FAILED",
      message: "firecracker PUT /boot-source: HTTP 400: Invalid kernel path",
    });
    const t0 = performance.now();
    await expect(
      bootFirecracker({
        firecracker: fakeFirecracker({ guest: "silent" }).path,
        assets,
        bootTimeoutMs: 1500,
      }),
    ).rejects.toMatchObject({ code: "RUNTIME_GUEST_TIMEOUT" });
    expect(performance.now() - t0).toBeLessThan(5000);
    await expect(
      bootFirecracker({
        firecracker: "/nonexistent/firecracker",
        assets,
        bootTimeoutMs: 5000,
        apiTimeoutMs: 500,
      }),
    ).rejects.toMatchObject({ code: "RUNTIME_VMM_START_FAILED" });
  });
});
