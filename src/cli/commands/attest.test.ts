// `enclave attest --simulation --out FILE` prints a "check it" command: it must work as printed,
// and say why plain `enclave verify` refuses the evidence under the default policy.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { cli } from "../../../test/support/cli.js";

const BIN = fileURLToPath(new URL("../../../bin/enclave.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "enclave-attest-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("enclave attest --simulation: the printed check", () => {
  for (const mode of ["--simulation", "--insecure"]) {
    it(`${mode}: the printed check command passes, and the note says why the default policy fails it`, async () => {
      const r = await cli("attest", mode, "--out", join(dir, `ev${mode}.bin`));
      expect(r.code, r.err).toBe(0);
      const check = /^check it: +(.*)$/m.exec(r.out)![1];
      expect(r.out).toMatch(/^note: .*default trust policy rejects (SIMULATED|INSECURE) evidence/m);
      const run = (cmd: string) =>
        spawnSync("sh", ["-c", cmd.replaceAll("enclave verify", `"${process.execPath}" "${BIN}" verify`)], {
          cwd: dir,
          encoding: "utf8",
        });
      const ok = run(check);
      expect(ok.status, ok.stdout + ok.stderr).toBe(0);
      // Without the policy the same verification exits 1: the note is true.
      const plain = check.slice(check.indexOf("enclave verify")).replace(/ --policy \S+$/, "");
      expect(run(plain).status).toBe(1);
    });
  }
});
