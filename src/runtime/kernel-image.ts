import { execFileSync } from "node:child_process";
import { gunzipSync } from "node:zlib";
import { RuntimeError, RuntimeErrorCode } from "./errors.js";

/**
 * A kernel for the microVM. Firecracker boots only an uncompressed ELF `vmlinux`; QEMU's microvm
 * boots that (PVH) or a bzImage. Distribution kernels ship bzImages (`/boot/vmlinuz-*`), so the
 * hydrator unpacks the payload to ELF when it can and otherwise keeps the bzImage, saying so.
 */
export interface KernelImage {
  format: "elf" | "bzImage";
  /** `uname -r` of the kernel, from the bzImage header or the "Linux version" banner. */
  release: string;
  bytes: Buffer;
}

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/** The compressors Linux uses for the bzImage payload, by magic, with how to undo each. */
const DECOMPRESSORS: { magic: number[]; name: string; run: (b: Buffer) => Buffer }[] = [
  { magic: [0x1f, 0x8b], name: "gzip", run: (b) => gunzipSync(b) },
  { magic: [0x02, 0x21, 0x4c, 0x18], name: "lz4", run: (b) => tool("lz4", ["-dc"], b) },
  {
    magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    name: "xz",
    run: (b) => tool("xz", ["-dc", "--single-stream"], b),
  },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], name: "zstd", run: (b) => tool("zstd", ["-dcq"], b) },
];

function tool(cmd: string, args: string[], input: Buffer): Buffer {
  // The payload may carry trailing bytes (the decompressed size); the tools write the image first.
  try {
    return execFileSync(cmd, args, { input, maxBuffer: 1 << 30, stdio: ["pipe", "pipe", "ignore"] });
  } catch (err) {
    const out = (err as { stdout?: Buffer }).stdout;
    if (out && out.subarray(0, 4).equals(ELF_MAGIC)) return out;
    throw err;
  }
}

function banner(bytes: Buffer): string | undefined {
  const at = bytes.indexOf("Linux version ");
  if (at < 0) return undefined;
  return /^Linux version (\S+)/.exec(bytes.subarray(at, at + 256).toString("latin1"))?.[1];
}

/** Read a kernel file's bytes as ELF or bzImage; anything else is refused. */
export function parseKernelImage(bytes: Buffer, what: string): KernelImage {
  if (bytes.subarray(0, 4).equals(ELF_MAGIC)) {
    const release = banner(bytes);
    if (!release)
      throw new RuntimeError(
        RuntimeErrorCode.HYDRATE_INPUT_INVALID,
        `${what}: ELF without a Linux version banner`,
      );
    return { format: "elf", release, bytes };
  }
  if (bytes.length < 0x270 || bytes.toString("latin1", 0x202, 0x206) !== "HdrS") {
    throw new RuntimeError(
      RuntimeErrorCode.HYDRATE_INPUT_INVALID,
      `${what}: neither an ELF vmlinux nor a bzImage`,
    );
  }
  const versionAt = bytes.readUInt16LE(0x20e) + 0x200;
  const release = /^(\S+)/.exec(bytes.toString("latin1", versionAt, versionAt + 128))?.[1];
  if (!release)
    throw new RuntimeError(
      RuntimeErrorCode.HYDRATE_INPUT_INVALID,
      `${what}: bzImage without a version string`,
    );
  const setupSects = bytes[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + bytes.readUInt32LE(0x248);
  const payload = bytes.subarray(start, start + bytes.readUInt32LE(0x24c));
  for (const d of DECOMPRESSORS) {
    if (!d.magic.every((m, i) => payload[i] === m)) continue;
    try {
      const elf = d.run(payload);
      if (elf.subarray(0, 4).equals(ELF_MAGIC)) return { format: "elf", release, bytes: elf };
    } catch {
      // The decompressor is not installed: keep the bzImage (QEMU boots it; Firecracker cannot).
    }
  }
  return { format: "bzImage", release, bytes };
}

/** Does this ELF executable need a dynamic loader (a PT_INTERP program header)? */
export function elfHasInterpreter(bytes: Buffer): boolean {
  if (!bytes.subarray(0, 4).equals(ELF_MAGIC) || bytes[4] !== 2) return true; // not ELF64: not ours
  const phoff = Number(bytes.readBigUInt64LE(0x20));
  const phentsize = bytes.readUInt16LE(0x36);
  const phnum = bytes.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (bytes.readUInt32LE(phoff + i * phentsize) === 3) return true;
  }
  return false;
}
