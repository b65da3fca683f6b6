import { accessSync, constants, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { EnclaveError } from "../errors.js";
import { createDirectory } from "../storage/directory.js";

/** An output path a verb was given cannot be written: found before any work or budget is spent. */
export class OutputPathError extends EnclaveError {
  constructor(flag: string, rule: string) {
    super("OUTPUT_NOT_WRITABLE", `${flag}: ${rule}`);
  }
}

function kind(path: string): "dir" | "file" | "other" | null {
  try {
    const st = statSync(path);
    return st.isDirectory() ? "dir" : st.isFile() ? "file" : "other";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return null;
    if (code === "ENOTDIR") return null; // a parent is a file: checkCreatable says so
    throw new EnclaveError("OUTPUT_NOT_WRITABLE", `cannot inspect an output path (${code})`);
  }
}

function writableDir(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The nearest existing ancestor must be a writable directory (nothing is created here). */
function checkCreatable(path: string, flag: string): void {
  let up = dirname(path);
  while (kind(up) === null && dirname(up) !== up) up = dirname(up);
  if (kind(up) !== "dir") throw new OutputPathError(flag, "a parent of the path is not a directory");
  if (!writableDir(up))
    throw new OutputPathError(flag, "the directory it would be created in is not writable");
}

/**
 * Checks, before any work, that `path` is (or can be created as) a writable directory.
 * Creates nothing: a refused or failed run leaves no empty directory behind.
 */
export function checkOutputDir(path: string, flag = "--out"): string {
  const abs = resolve(path);
  const k = kind(abs);
  if (k === null) checkCreatable(abs, flag);
  else if (k !== "dir") throw new OutputPathError(flag, "exists and is not a directory");
  else if (!writableDir(abs)) throw new OutputPathError(flag, "is a directory that is not writable");
  return abs;
}

/** Checks, before any work, that `path` is (or can be created as) a writable regular file. */
export function checkOutputFile(path: string, flag = "--out"): string {
  const abs = resolve(path);
  const k = kind(abs);
  if (k === null) checkCreatable(abs, flag);
  else if (k !== "file") throw new OutputPathError(flag, "exists and is not a regular file");
  else if (!writableDir(dirname(abs))) throw new OutputPathError(flag, "its directory is not writable");
  return abs;
}

/**
 * Writes every file into `dir` (created if needed) or none: each goes to a temporary name first
 * and is renamed into place only when all were written, so a failure leaves no half-written set.
 */
export function writeOutputFiles(dir: string, files: Record<string, string | Uint8Array>): string[] {
  createDirectory(dir, "--out");
  const tmp = (name: string) => join(dir, `.${name}.${process.pid}.tmp`);
  const names = Object.keys(files);
  try {
    for (const name of names) writeFileSync(tmp(name), files[name]);
  } catch (err) {
    for (const name of names) rmSync(tmp(name), { force: true });
    throw new OutputPathError("--out", `writing failed (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  for (const name of names) renameSync(tmp(name), join(dir, name));
  return names.map((n) => join(dir, n));
}
