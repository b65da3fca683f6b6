import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DatasetError } from "./dataset-error.js";
import { checkDatasetId, gunzipIfCompressed, readDatasetFile, resolveDatasetPath } from "./sentry.js";

async function refusal(promise: Promise<unknown>, code: string): Promise<DatasetError> {
  try {
    await promise;
  } catch (e) {
    expect(e).toBeInstanceOf(DatasetError);
    expect((e as DatasetError).code, (e as Error).message).toBe(code);
    return e as DatasetError;
  }
  throw new Error(`expected ${code}, but the call succeeded`);
}

// Layout:  base/root/{ok.csv, sub/, sub/inner.csv, inner-link.csv -> sub/inner.csv,
//                      escape.csv -> ../outside/secret.csv, dirlink -> ../outside, abs.csv -> /abs/secret}
//          base/outside/secret.csv
let base: string;
let root: string;

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), "enclave-sentry-"));
  root = join(base, "root");
  mkdirSync(join(root, "sub"), { recursive: true });
  mkdirSync(join(base, "outside"));
  writeFileSync(join(root, "ok.csv"), "a,b\n1,2\n");
  writeFileSync(join(root, "sub", "inner.csv"), "x\n");
  writeFileSync(join(base, "outside", "secret.csv"), "secret\n");
  symlinkSync("sub/inner.csv", join(root, "inner-link.csv"));
  symlinkSync("../outside/secret.csv", join(root, "escape.csv"));
  symlinkSync("../outside", join(root, "dirlink"));
  symlinkSync(join(base, "outside", "secret.csv"), join(root, "abs.csv"));
  symlinkSync("loop-b", join(root, "loop-a"));
  symlinkSync("loop-a", join(root, "loop-b"));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe("checkDatasetId (text rules, before any file system access)", () => {
  it.each([
    ["../outside/secret.csv", "DATASET_PATH_ESCAPE", /'\.\.'/],
    ["sub/../../outside/secret.csv", "DATASET_PATH_ESCAPE", /'\.\.'/],
    ["..", "DATASET_PATH_ESCAPE", /'\.\.'/],
    ["/etc/passwd", "DATASET_PATH_ESCAPE", /relative/],
    ["sub\\..\\..\\secret.csv", "DATASET_PATH_ESCAPE", /backslash/],
    ["C:/Windows/win.ini", "DATASET_PATH_ESCAPE", /drive letter/],
    ["c:secret.csv", "DATASET_PATH_ESCAPE", /drive letter/],
    ["ok.csv\u0000.png", "DATASET_ID_INVALID", /control/],
    ["ok\n.csv", "DATASET_ID_INVALID", /control/],
    ["", "DATASET_ID_INVALID", /non-empty/],
    ["sub//inner.csv", "DATASET_ID_INVALID", /empty or '\.'/],
    ["./ok.csv", "DATASET_ID_INVALID", /empty or '\.'/],
    ["sub/", "DATASET_ID_INVALID", /empty or '\.'/],
    ["a".repeat(1025), "DATASET_ID_INVALID", /at most 1024/],
    ["x".repeat(256), "DATASET_ID_INVALID", /255 bytes/],
    [Array(40).fill("d").join("/"), "DATASET_ID_INVALID", /segments/],
  ])("refuses %j with %s", (id, code, rule) => {
    let err: unknown;
    try {
      checkDatasetId(id);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DatasetError);
    expect((err as DatasetError).code).toBe(code);
    expect((err as DatasetError).message).toMatch(rule);
  });

  it("refuses a non-string id", () => {
    expect(() => checkDatasetId(42)).toThrow(/must be a string/);
  });

  it("quotes the id with control characters escaped (no log injection)", () => {
    try {
      checkDatasetId("a\u0000b\nc");
    } catch (e) {
      expect((e as Error).message).toContain('"a\\u0000b\\nc"');
      expect((e as Error).message).not.toContain("\n");
    }
  });

  it("accepts nested plain ids", () => {
    expect(checkDatasetId("sub/inner.csv")).toEqual(["sub", "inner.csv"]);
    expect(checkDatasetId("..hidden/x..y.csv")).toEqual(["..hidden", "x..y.csv"]);
  });
});

describe("resolveDatasetPath", () => {
  it("resolves a plain file to its canonical path inside the root", async () => {
    const r = await resolveDatasetPath(root, "ok.csv");
    expect(r.path).toBe(join(realpathSync(root), "ok.csv"));
    expect(r.size).toBe(8);
  });

  it("follows a symlink that stays inside the root", async () => {
    const r = await resolveDatasetPath(root, "inner-link.csv");
    expect(r.path).toBe(join(realpathSync(root), "sub", "inner.csv"));
  });

  it.each([
    ["escape.csv", "relative symlink to a file outside"],
    ["abs.csv", "absolute symlink to a file outside"],
    ["dirlink/secret.csv", "symlinked directory outside"],
  ])("refuses %s (%s)", async (id) => {
    const e = await refusal(resolveDatasetPath(root, id), "DATASET_PATH_ESCAPE");
    expect(e.message).toMatch(/outside the data root/);
    expect(e.message).not.toContain(base);
  });

  it("refuses a symlink loop", async () => {
    await refusal(resolveDatasetPath(root, "loop-a"), "DATASET_PATH_ESCAPE");
  });

  it("refuses '..' even when the target exists", async () => {
    await refusal(resolveDatasetPath(join(root, "sub"), "../ok.csv"), "DATASET_PATH_ESCAPE");
  });

  it("refuses the root itself and directories", async () => {
    await refusal(resolveDatasetPath(root, "sub"), "DATASET_NOT_REGULAR_FILE");
  });

  it("refuses a FIFO without blocking on it", async () => {
    const fifo = join(root, "pipe.csv");
    execFileSync("mkfifo", [fifo]);
    try {
      await refusal(readDatasetFile(root, "pipe.csv"), "DATASET_NOT_REGULAR_FILE");
    } finally {
      rmSync(fifo);
    }
  });

  it("reports a missing file, and a file under a regular file, as not found", async () => {
    await refusal(resolveDatasetPath(root, "missing.csv"), "DATASET_NOT_FOUND");
    await refusal(resolveDatasetPath(root, "ok.csv/x"), "DATASET_NOT_FOUND");
  });

  it("refuses a missing or non-directory root", async () => {
    await refusal(resolveDatasetPath(join(base, "nope"), "ok.csv"), "DATASET_ROOT_INVALID");
    await refusal(resolveDatasetPath(join(root, "ok.csv"), "x"), "DATASET_ROOT_INVALID");
  });

  it("refuses files over the size limit", async () => {
    const e = await refusal(resolveDatasetPath(root, "ok.csv", { maxFileBytes: 7 }), "DATASET_TOO_LARGE");
    expect(e.message).toMatch(/limit of 7 bytes/);
    await expect(resolveDatasetPath(root, "ok.csv", { maxFileBytes: 8 })).resolves.toBeTruthy();
  });

  it("rejects a nonsensical limit", async () => {
    await expect(resolveDatasetPath(root, "ok.csv", { maxFileBytes: -1 })).rejects.toThrow(/positive integer/);
  });
});

describe("readDatasetFile and gzip", () => {
  it("returns exactly the file bytes", async () => {
    const f = await readDatasetFile(root, "ok.csv");
    expect(f.bytes.toString()).toBe("a,b\n1,2\n");
  });

  it("decompresses gzip under a limit, and refuses a decompression bomb", async () => {
    const big = gzipSync(Buffer.alloc(1 << 20));
    expect(big.length).toBeLessThan(2000);
    expect((await gunzipIfCompressed(big, "z.gz", { maxDecompressedBytes: 1 << 20 })).length).toBe(1 << 20);
    await refusal(gunzipIfCompressed(big, "z.gz", { maxDecompressedBytes: 1000 }), "DATASET_TOO_LARGE");
  });

  it("refuses corrupt or truncated gzip", async () => {
    const gz = gzipSync(Buffer.from("hello,world\n".repeat(100)));
    await refusal(gunzipIfCompressed(gz.subarray(0, gz.length - 10), "t.gz"), "DATASET_MALFORMED");
    const flipped = Buffer.from(gz);
    flipped[20] ^= 0xff;
    await refusal(gunzipIfCompressed(flipped, "t.gz"), "DATASET_MALFORMED");
  });

  it("passes plain bytes through", async () => {
    const plain = Buffer.from("a,b\n");
    expect(await gunzipIfCompressed(plain, "p.csv")).toBe(plain);
  });
});
