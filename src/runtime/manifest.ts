import { createHash } from "node:crypto";
import { z } from "zod";

/**
 * The runtime manifest: SHA-256 of the kernel, of the rootfs archive and of every file inside it.
 * Its own SHA-256 (of the exact bytes written to `manifest.json`) is the runtime measurement that
 * enters the agent's attestation claims. It holds no host path or time, so the same inputs give the
 * same measurement on any machine.
 */
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex digits");
export const RuntimeManifest = z
  .object({
    format: z.literal("coreason-enclave-runtime/1"),
    kernel: z
      .object({
        file: z.literal("vmlinux"),
        format: z.enum(["elf", "bzImage"]),
        release: z.string().min(1),
        sha256: Sha256,
        bytes: z.number().int().positive(),
      })
      .strict(),
    rootfs: z
      .object({
        file: z.literal("rootfs.cpio"),
        sha256: Sha256,
        bytes: z.number().int().positive(),
        entries: z.number().int().positive(),
      })
      .strict(),
    node: z.string().min(1),
    package: z.object({ name: z.string(), version: z.string() }).strict(),
    modules: z.array(z.string()),
    files: z.record(z.string(), Sha256),
  })
  .strict();
export type RuntimeManifest = z.output<typeof RuntimeManifest>;

export const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Canonical bytes: keys in a fixed order (files sorted by path bytes), two-space JSON, one newline. */
export function encodeManifest(m: RuntimeManifest): Buffer {
  const files = Object.fromEntries(
    Object.entries(m.files).sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
  );
  const ordered: RuntimeManifest = {
    format: m.format,
    kernel: {
      file: m.kernel.file,
      format: m.kernel.format,
      release: m.kernel.release,
      sha256: m.kernel.sha256,
      bytes: m.kernel.bytes,
    },
    rootfs: {
      file: m.rootfs.file,
      sha256: m.rootfs.sha256,
      bytes: m.rootfs.bytes,
      entries: m.rootfs.entries,
    },
    node: m.node,
    package: { name: m.package.name, version: m.package.version },
    modules: m.modules,
    files,
  };
  return Buffer.from(JSON.stringify(ordered, null, 2) + "\n", "utf8");
}
