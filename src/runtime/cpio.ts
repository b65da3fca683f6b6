/**
 * A reproducible cpio "newc" archive, the format the Linux kernel unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst). Reproducible by construction: entries
 * are sorted by path bytes, every mtime is `mtime` (default 0), uid and gid are 0, inode numbers are
 * assigned in order, and nothing is read from the host's file metadata.
 */
export type CpioEntry =
  | { path: string; type: "dir"; mode?: number }
  | { path: string; type: "file"; data: Uint8Array; mode?: number }
  | { path: string; type: "symlink"; target: string }
  | { path: string; type: "chardev"; major: number; minor: number; mode?: number };

const TYPE_BITS = { dir: 0o040000, file: 0o100000, symlink: 0o120000, chardev: 0o020000 } as const;
const DEFAULT_MODE = { dir: 0o755, file: 0o644, symlink: 0o777, chardev: 0o600 } as const;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, "0");
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;

function header(
  fields: {
    ino: number;
    mode: number;
    nlink: number;
    mtime: number;
    size: number;
    rmajor: number;
    rminor: number;
  },
  nameSize: number,
): string {
  return (
    "070701" +
    [
      fields.ino,
      fields.mode,
      0,
      0,
      fields.nlink,
      fields.mtime,
      fields.size,
      0,
      0,
      fields.rmajor,
      fields.rminor,
      nameSize,
      0,
    ]
      .map(hex8)
      .join("")
  );
}

/** Archive paths are relative ("init", "usr/bin/node"), no "." or ".." segments, no empty segments. */
function checkPath(path: string): void {
  if (!path || path.startsWith("/") || path.split("/").some((s) => s === "" || s === "." || s === "..")) {
    throw new RangeError(`cpio path not normalised: ${JSON.stringify(path)}`);
  }
}

/** Build the archive. Duplicate paths are refused; parent directories must be listed explicitly. */
export function buildCpio(entries: CpioEntry[], mtime = 0): Buffer {
  const sorted = [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const chunks: Buffer[] = [];
  const seen = new Set<string>();
  let ino = 1;
  const push = (name: string, fields: Parameters<typeof header>[0], data: Uint8Array) => {
    const nameBytes = Buffer.from(name + "\0", "utf8");
    const head = Buffer.from(header(fields, nameBytes.length), "ascii");
    chunks.push(head, nameBytes, Buffer.alloc(pad4(head.length + nameBytes.length)));
    chunks.push(
      Buffer.from(data.buffer, data.byteOffset, data.byteLength),
      Buffer.alloc(pad4(data.byteLength)),
    );
  };
  for (const e of sorted) {
    checkPath(e.path);
    if (seen.has(e.path)) throw new RangeError(`duplicate cpio path: ${JSON.stringify(e.path)}`);
    const parent = e.path.includes("/") ? e.path.slice(0, e.path.lastIndexOf("/")) : "";
    if (parent && !seen.has(parent))
      throw new RangeError(`cpio parent directory missing: ${JSON.stringify(parent)}`);
    seen.add(e.path);
    const data =
      e.type === "file" ? e.data : e.type === "symlink" ? Buffer.from(e.target, "utf8") : new Uint8Array(0);
    const perm = e.type === "symlink" ? DEFAULT_MODE.symlink : (e.mode ?? DEFAULT_MODE[e.type]);
    push(
      e.path,
      {
        ino: ino++,
        mode: TYPE_BITS[e.type] | (perm & 0o7777),
        nlink: e.type === "dir" ? 2 : 1,
        mtime,
        size: data.byteLength,
        rmajor: e.type === "chardev" ? e.major : 0,
        rminor: e.type === "chardev" ? e.minor : 0,
      },
      data,
    );
  }
  push(
    "TRAILER!!!",
    { ino: 0, mode: 0, nlink: 1, mtime: 0, size: 0, rmajor: 0, rminor: 0 },
    new Uint8Array(0),
  );
  return Buffer.concat(chunks);
}
