import { execFileSync } from "node:child_process";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildCpio, type CpioEntry } from "./cpio.js";

const entries: CpioEntry[] = [
  { path: "bin", type: "dir" },
  { path: "bin/sh", type: "symlink", target: "busybox" },
  { path: "bin/busybox", type: "file", data: Buffer.from("#!fake\n"), mode: 0o755 },
  { path: "init", type: "file", data: Buffer.from("echo up\n"), mode: 0o755 },
  { path: "etc", type: "dir" },
  { path: "etc/odd-size", type: "file", data: Buffer.from("abcde") },
  { path: "dev", type: "dir" },
  { path: "dev/console", type: "chardev", major: 5, minor: 1 },
];

/** Debian's busybox-static (CI installs it); its cpio is a reader written by someone else. */
const busybox = existsSync("/bin/busybox") ? "/bin/busybox" : undefined;

describe("cpio newc archive", () => {
  it("is the same bytes whatever order the entries come in", () => {
    const a = buildCpio(entries);
    const b = buildCpio([...entries].reverse());
    expect(a.equals(b)).toBe(true);
    expect(a.subarray(0, 6).toString()).toBe("070701");
    expect(a.length % 4).toBe(0);
    expect(a.includes(Buffer.from("TRAILER!!!\0"))).toBe(true);
  });

  it("writes mtime 0, uid 0 and gid 0 in every header", () => {
    const a = buildCpio(entries).toString("latin1");
    const headers = [...a.matchAll(/070701([0-9a-f]{104})/g)].map((m) => m[1]!);
    expect(headers.length).toBe(entries.length + 1);
    for (const h of headers) {
      const field = (i: number) => h.slice(i * 8, i * 8 + 8);
      expect([field(2), field(3), field(5)]).toEqual(["00000000", "00000000", "00000000"]);
    }
  });

  it("refuses duplicate paths, missing parents and unnormalised paths", () => {
    expect(() => buildCpio([...entries, { path: "init", type: "dir" }])).toThrow(/duplicate cpio path/);
    expect(() => buildCpio([{ path: "a/b", type: "dir" }])).toThrow(/parent directory missing: "a"/);
    for (const path of ["/abs", "a/../b", "a//b", "."]) {
      expect(() => buildCpio([{ path, type: "dir" }])).toThrow(/not normalised/);
    }
  });

  it.skipIf(!busybox && !process.env.CI)(
    "unpacks with busybox cpio to the same files, modes and links",
    () => {
      expect(busybox, "busybox-static must be installed in CI").toBeDefined();
      const dir = mkdtempSync(join(tmpdir(), "cpio-"));
      const archive = join(dir, "a.cpio");
      writeFileSync(archive, buildCpio(entries.filter((e) => e.type !== "chardev")));
      const out = join(dir, "out");
      mkdirSync(out);
      execFileSync("sh", ["-c", `cd "${out}" && ${busybox} cpio -i -d < "${archive}"`], { stdio: "ignore" });
      expect(readFileSync(join(out, "init"), "utf8")).toBe("echo up\n");
      expect(lstatSync(join(out, "init")).mode & 0o777).toBe(0o755);
      expect(readFileSync(join(out, "etc/odd-size"), "utf8")).toBe("abcde");
      expect(lstatSync(join(out, "etc/odd-size")).mode & 0o777).toBe(0o644);
      expect(readlinkSync(join(out, "bin/sh"))).toBe("busybox");
      const listing = execFileSync(busybox!, ["cpio", "-t"], {
        input: buildCpio(entries),
        stdio: ["pipe", "pipe", "ignore"],
      }).toString();
      expect(listing.trim().split("\n")).toEqual([
        "bin",
        "bin/busybox",
        "bin/sh",
        "dev",
        "dev/console",
        "etc",
        "etc/odd-size",
        "init",
      ]);
    },
  );
});
