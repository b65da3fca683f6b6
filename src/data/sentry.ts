import { constants as fsc } from "node:fs";
import { open, readdir, readlink, realpath, stat, type FileHandle } from "node:fs/promises";
import { join, sep } from "node:path";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { DatasetError, DatasetErrorCode as Code } from "./dataset-error.js";

/**
 * Data Sentry, input side: a dataset id from a job is untrusted text. It may only name a
 * regular file inside the agent's data root, and only up to a size limit.
 */

export const DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024;
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 512 * 1024 * 1024;
const MAX_ID_LENGTH = 1024;
const MAX_SEGMENT_BYTES = 255;
const MAX_DEPTH = 32;

export interface SentryLimits {
  /** Largest file accepted, in bytes (default 256 MiB). */
  maxFileBytes?: number;
  /** Largest content after gzip decompression, in bytes (default 512 MiB). */
  maxDecompressedBytes?: number;
}

export interface ResolvedDataset {
  /** The id as given (relative to the data root, `/`-separated). */
  id: string;
  /** Canonical absolute path (all symlinks resolved), inside the canonical data root. */
  path: string;
  size: number;
}

export interface DatasetFile extends ResolvedDataset {
  bytes: Buffer;
}

function limitOf(value: number | undefined, fallback: number, what: string): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v < 1) throw new TypeError(`${what} must be a positive integer`);
  return v;
}

/**
 * Check the id's text before touching the file system. Returns its segments.
 * Refuses: non-strings, empty or over-long ids, control characters (NUL included), absolute
 * paths, drive letters, backslashes, `..`, `.` and empty segments.
 */
export function checkDatasetId(datasetId: unknown): string[] {
  const fail = (code: Code, rule: string): never => {
    throw DatasetError.of(code, typeof datasetId === "string" ? datasetId : "", rule);
  };
  if (typeof datasetId !== "string") return fail(Code.ID_INVALID, "dataset id must be a string");
  const id = datasetId;
  if (id.length === 0) return fail(Code.ID_INVALID, "dataset id must be non-empty");
  if (id.length > MAX_ID_LENGTH) return fail(Code.ID_INVALID, `dataset id must be at most ${MAX_ID_LENGTH} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(id)) return fail(Code.ID_INVALID, "dataset id must not contain control characters");
  if (id.startsWith("/")) return fail(Code.PATH_ESCAPE, "dataset id must be relative to the data root");
  if (id.includes("\\")) return fail(Code.PATH_ESCAPE, "dataset id must not contain backslashes");
  if (/^[A-Za-z]:/.test(id)) return fail(Code.PATH_ESCAPE, "dataset id must not start with a drive letter");
  const segments = id.split("/");
  if (segments.includes("..")) return fail(Code.PATH_ESCAPE, "dataset id must not contain '..' segments");
  if (segments.length > MAX_DEPTH) return fail(Code.ID_INVALID, `dataset id must have at most ${MAX_DEPTH} segments`);
  for (const s of segments) {
    if (s === "" || s === ".") return fail(Code.ID_INVALID, "dataset id must not contain empty or '.' segments");
    if (Buffer.byteLength(s) > MAX_SEGMENT_BYTES) {
      return fail(Code.ID_INVALID, `dataset id segments must be at most ${MAX_SEGMENT_BYTES} bytes`);
    }
  }
  return segments;
}

async function canonicalRoot(dataRoot: string, id: string): Promise<string> {
  let root: string;
  try {
    root = await realpath(dataRoot);
    if (!(await stat(root)).isDirectory()) throw new Error("not a directory");
  } catch {
    throw DatasetError.of(Code.ROOT_INVALID, id, "the configured data root is missing or not a directory");
  }
  return root;
}

function inside(root: string, path: string): boolean {
  const prefix = root.endsWith(sep) ? root : root + sep;
  return path.startsWith(prefix) && path.length > prefix.length;
}

function fsError(e: unknown, id: string): DatasetError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR") return DatasetError.of(Code.NOT_FOUND, id, "no such file in the data root");
  if (code === "ELOOP") return DatasetError.of(Code.PATH_ESCAPE, id, "symbolic link loop or link swapped in");
  if (code === "EACCES" || code === "EPERM") return DatasetError.of(Code.NOT_FOUND, id, "file is not readable");
  return DatasetError.of(Code.NOT_FOUND, id, `file could not be opened (${code ?? "error"})`);
}

/** The id checked, then its canonical path (symlinks resolved), which must lie inside the canonical root. */
async function canonicalInside(dataRoot: string, datasetId: unknown): Promise<{ root: string; path: string }> {
  const segments = checkDatasetId(datasetId);
  const id = datasetId as string;
  const root = await canonicalRoot(dataRoot, id);
  let path: string;
  try {
    path = await realpath(join(root, ...segments));
  } catch (e) {
    throw fsError(e, id);
  }
  if (!inside(root, path)) throw DatasetError.of(Code.PATH_ESCAPE, id, "resolves outside the data root");
  return { root, path };
}

/**
 * Open the dataset file and check it: canonical path inside the canonical root (symlinks
 * resolved), regular file, size within the limit. The returned handle is the checked file,
 * so reading from it cannot race with a rename or symlink swap after the check.
 */
async function openChecked(
  dataRoot: string,
  datasetId: unknown,
  limits: SentryLimits,
): Promise<{ handle: FileHandle; resolved: ResolvedDataset }> {
  checkDatasetId(datasetId);
  const id = datasetId as string;
  const maxFileBytes = limitOf(limits.maxFileBytes, DEFAULT_MAX_FILE_BYTES, "maxFileBytes");
  const { root, path } = await canonicalInside(dataRoot, id);

  let handle: FileHandle;
  try {
    // O_NOFOLLOW: the final component must not have become a symlink since realpath.
    // O_NONBLOCK: opening a FIFO must not hang waiting for a writer.
    handle = await open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (e) {
    throw fsError(e, id);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw DatasetError.of(Code.NOT_REGULAR_FILE, id, "is not a regular file");
    if (st.size > maxFileBytes) {
      throw DatasetError.of(Code.TOO_LARGE, id, `file is larger than the limit of ${maxFileBytes} bytes`);
    }
    // Linux: ask the kernel where the opened file really lives (catches a directory swapped
    // for a symlink between realpath and open). Elsewhere the realpath check stands alone.
    let opened: string | undefined;
    try {
      opened = await readlink(`/proc/self/fd/${handle.fd}`);
    } catch {
      opened = undefined;
    }
    if (opened !== undefined && opened.startsWith("/") && !inside(root, opened)) {
      throw DatasetError.of(Code.PATH_ESCAPE, id, "opened file lies outside the data root");
    }
    return { handle, resolved: { id, path, size: st.size } };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

/** Most entries one dataset directory may hold (image folders). */
export const MAX_DIRECTORY_ENTRIES = 1_000_000;

/**
 * The entries of a directory inside `dataRoot` (an image folder or one of its class folders),
 * sorted by name, each marked a directory or not. The same escape checks as a file; every file
 * listed is then read through readDatasetFile, which checks it again.
 */
export async function listDatasetDirectory(
  dataRoot: string,
  datasetId: string,
): Promise<{ name: string; directory: boolean }[]> {
  const { path } = await canonicalInside(dataRoot, datasetId);
  if (!(await stat(path)).isDirectory()) throw DatasetError.of(Code.NOT_FOUND, datasetId, "is not a directory");
  const entries = await readdir(path, { withFileTypes: true });
  if (entries.length > MAX_DIRECTORY_ENTRIES)
    throw DatasetError.of(Code.TOO_LARGE, datasetId, `directory has more than ${MAX_DIRECTORY_ENTRIES} entries`);
  return entries
    .map((e) => ({ name: e.name, directory: e.isDirectory() }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Resolve a dataset id to its canonical path inside `dataRoot`, refusing every escape. */
export async function resolveDatasetPath(
  dataRoot: string,
  datasetId: string,
  limits: SentryLimits = {},
): Promise<ResolvedDataset> {
  const { handle, resolved } = await openChecked(dataRoot, datasetId, limits);
  await handle.close();
  return resolved;
}

/** Resolve and read a dataset file in one step, from the very file descriptor that was checked. */
export async function readDatasetFile(
  dataRoot: string,
  datasetId: string,
  limits: SentryLimits = {},
): Promise<DatasetFile> {
  const { handle, resolved } = await openChecked(dataRoot, datasetId, limits);
  try {
    const bytes = Buffer.alloc(resolved.size);
    let off = 0;
    while (off < bytes.length) {
      const { bytesRead } = await handle.read(bytes, off, bytes.length - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    const probe = Buffer.alloc(1);
    const { bytesRead: extra } = await handle.read(probe, 0, 1, off);
    if (off !== bytes.length || extra !== 0) {
      throw DatasetError.of(Code.MALFORMED, resolved.id, "file changed size while being read");
    }
    return { ...resolved, bytes };
  } finally {
    await handle.close();
  }
}

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

const gunzipAsync = promisify(gunzip);

/** Decompress gzip content (detected by its magic bytes) under a size limit; other bytes pass through. */
export async function gunzipIfCompressed(bytes: Buffer, datasetId: string, limits: SentryLimits = {}): Promise<Buffer> {
  if (!isGzip(bytes)) return bytes;
  const max = limitOf(limits.maxDecompressedBytes, DEFAULT_MAX_DECOMPRESSED_BYTES, "maxDecompressedBytes");
  try {
    return await gunzipAsync(bytes, { maxOutputLength: max });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ERR_BUFFER_TOO_LARGE" || e instanceof RangeError) {
      throw DatasetError.of(Code.TOO_LARGE, datasetId, `decompressed content exceeds the limit of ${max} bytes`);
    }
    throw DatasetError.of(Code.MALFORMED, datasetId, "gzip stream is corrupt or truncated");
  }
}

