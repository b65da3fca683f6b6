import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { EnclaveError } from "../errors.js";

/**
 * Reads a path that crosses a boundary (a job file, config, policy, evidence, certificate): it must
 * be a regular file of at most `maxBytes`, checked on the opened descriptor (no stat-then-open race),
 * and at most maxBytes + 1 bytes are ever read. A FIFO, /dev/zero or a directory is refused at once:
 * the open is non-blocking, so a FIFO without a writer cannot hang it. Errors name `what`, never
 * the path's contents.
 */
export async function readRegularFile(
  path: string,
  what: string,
  maxBytes: number,
  code = "INPUT_UNREADABLE",
): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw new EnclaveError(code, `${what} cannot be read (${(err as { code?: string }).code ?? "error"})`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new EnclaveError(code, `${what} must be a regular file`);
    const tooBig = () => new EnclaveError(code, `${what} exceeds ${maxBytes} bytes`);
    if (st.size > maxBytes) throw tooBig();
    const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > maxBytes) throw tooBig(); // it grew while being read
      if (n === buf.length) break;
    }
    return buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}
