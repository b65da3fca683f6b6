// The .proto files are the contract and src/gen/ is generated from them: regenerating into a
// scratch directory must give exactly the checked-in files (run `npm run proto` after an edit).
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const REPO = fileURLToPath(new URL("../", import.meta.url));
const BIN = join(REPO, "node_modules", ".bin");

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)))
    .sort();
}

describe("proto/ -> src/gen/", () => {
  it("the checked-in generated code is what buf generates from proto/ today", async () => {
    const out = mkdtempSync(join(tmpdir(), "enclave-gen-"));
    const env = { ...process.env, PATH: `${BIN}:${process.env.PATH}` };
    try {
      await promisify(execFile)(join(BIN, "buf"), ["generate", "-o", out], { cwd: REPO, env });
      const fresh = join(out, "src", "gen");
      const checked = join(REPO, "src", "gen");
      expect(files(fresh)).toEqual(files(checked));
      for (const f of files(checked))
        expect(readFileSync(join(fresh, f), "utf8"), f).toBe(readFileSync(join(checked, f), "utf8"));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
