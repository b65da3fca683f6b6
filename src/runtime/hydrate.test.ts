import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { inspectAssets, loadAssets } from "./assets.js";
import { INIT_SCRIPT } from "./guest-image.js";
import { hydrate } from "./hydrate.js";
import { sha256 } from "./manifest.js";

/** The host packages hydrate reads (CI installs busybox-static and a linux-image package). */
const hostReady = existsSync("/bin/busybox") && readdirSync("/boot").some((n) => n.startsWith("vmlinuz-"));
const run = hostReady || !!process.env.CI;

const made: string[] = [];
const scratch = (label: string) => {
  const dir = mkdtempSync(join(tmpdir(), `hydrate-${label}-`));
  made.push(dir);
  return dir;
};
// Each hydration writes about 200 MB: leave nothing behind.
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe.skipIf(!run)("runtime hydrate", () => {
  // Two hydrations of about 200 MB each: generous on a loaded 2-core machine.
  it(
    "gives the same bytes and measurement from the same inputs, whatever their paths and mtimes",
    { timeout: 300_000 },
    async () => {
      const a = scratch("a");
      const b = scratch("b");
      // The same busybox under another name with another mtime: metadata must not leak into the image.
      const copy = join(b, "busybox-copy");
      copyFileSync("/bin/busybox", copy);
      utimesSync(copy, new Date("2001-02-03T04:05:06Z"), new Date("2001-02-03T04:05:06Z"));
      const first = await hydrate({ cacheDir: join(a, "cache") });
      const second = await hydrate({ cacheDir: join(b, "cache"), busybox: copy });
      for (const f of ["vmlinux", "rootfs.cpio", "manifest.json"]) {
        expect(readFileSync(join(a, "cache", f)).equals(readFileSync(join(b, "cache", f))), f).toBe(true);
      }
      expect(second.measurement).toBe(first.measurement);
      expect(first.measurement).toBe(sha256(readFileSync(join(a, "cache/manifest.json"))));

      const m = first.manifest;
      expect(m.kernel.format).toBe("elf");
      for (const path of [
        "init",
        "bin/busybox",
        "usr/bin/node",
        "etc/tetragon/tetragon.tp.d/enclave-no-network.yaml",
      ]) {
        expect(m.files[path], path).toMatch(/^[0-9a-f]{64}$/);
      }
      expect(m.files["opt/enclave/dist/runtime/guest/guest-main.js"]).toBeDefined();
      expect(Object.keys(m.files).some((p) => p.startsWith("lib/x86_64-linux-gnu/libc.so"))).toBe(true);
      expect(m.modules).toContain("virtio_console.ko");
      expect(m.files["init"]).toBe(sha256(Buffer.from(INIT_SCRIPT)));

      const loaded = await loadAssets(join(a, "cache"));
      expect(loaded.measurement).toBe(first.measurement);
      const rootfs = join(a, "cache/rootfs.cpio");
      const bytes = readFileSync(rootfs);
      bytes[bytes.length - 200] ^= 1;
      writeFileSync(rootfs, bytes);
      const tampered = await inspectAssets(join(a, "cache"));
      expect(tampered).toEqual({
        status: "fail",
        detail: `rootfs.cpio in ${join(a, "cache")} does not match manifest.json (sha256 differs): hydrate again`,
      });
    },
  );

  it("refuses a busybox that is not static", async () => {
    const dir = scratch("dyn");
    await expect(hydrate({ cacheDir: join(dir, "cache"), busybox: process.execPath })).rejects.toMatchObject({
      code: "RUNTIME_HYDRATE_INPUT_INVALID",
      message: `busybox is not a static ELF executable: ${process.execPath} (Debian: busybox-static)`,
    });
    expect(existsSync(join(dir, "cache/manifest.json"))).toBe(false);
  });
});
