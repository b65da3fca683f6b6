import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { elfHasInterpreter, parseKernelImage } from "./kernel-image.js";

/** An ELF64 header with `phnum` program headers of the given types, and a Linux banner after them. */
function elf(types: number[], banner = "Linux version 6.1.0-test (x) #1\n"): Buffer {
  const b = Buffer.alloc(0x40 + types.length * 0x38 + 64);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(b);
  b.writeBigUInt64LE(0x40n, 0x20);
  b.writeUInt16LE(0x38, 0x36);
  b.writeUInt16LE(types.length, 0x38);
  types.forEach((t, i) => b.writeUInt32LE(t, 0x40 + i * 0x38));
  return Buffer.concat([b, Buffer.from(banner)]);
}

/** A bzImage as the boot protocol lays it out: setup sectors, "HdrS", version string, payload offset/length. */
function bzImage(payload: Buffer, release = "6.1.0-test"): Buffer {
  const setupSects = 4;
  const b = Buffer.alloc((setupSects + 1) * 512 + payload.length);
  b[0x1f1] = setupSects;
  b.write("HdrS", 0x202, "latin1");
  b.writeUInt16LE(0x300 - 0x200, 0x20e);
  b.write(`${release} (builder) #1 SMP`, 0x300, "latin1");
  b.writeUInt32LE(0, 0x248);
  b.writeUInt32LE(payload.length, 0x24c);
  payload.copy(b, (setupSects + 1) * 512);
  return b;
}

describe("kernel image", () => {
  it("keeps an ELF vmlinux and reads its release from the banner", () => {
    const k = parseKernelImage(elf([1]), "kernel");
    expect(k).toMatchObject({ format: "elf", release: "6.1.0-test" });
  });

  it("unpacks a gzip bzImage payload to the ELF inside it", () => {
    const inner = elf([1, 1]);
    const k = parseKernelImage(bzImage(gzipSync(inner)), "kernel");
    expect(k.format).toBe("elf");
    expect(k.release).toBe("6.1.0-test");
    expect(k.bytes.equals(inner)).toBe(true);
  });

  it("keeps a bzImage whose payload it cannot unpack, with the release from its header", () => {
    const k = parseKernelImage(bzImage(Buffer.from("unknown-compressor")), "kernel");
    expect(k).toMatchObject({ format: "bzImage", release: "6.1.0-test" });
  });

  it("refuses what is neither, with a typed error", () => {
    expect(() => parseKernelImage(Buffer.alloc(4096), "kernel")).toThrow(
      expect.objectContaining({
        code: "RUNTIME_HYDRATE_INPUT_INVALID",
        message: "kernel: neither an ELF vmlinux nor a bzImage",
      }),
    );
  });

  it("tells a static executable (no PT_INTERP) from a dynamic one", () => {
    expect(elfHasInterpreter(elf([1, 1]))).toBe(false);
    expect(elfHasInterpreter(elf([6, 3, 1]))).toBe(true);
  });
});
