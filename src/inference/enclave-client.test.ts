import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { breastCancerModelFile, breastCancerRows } from "../../test/support/inference.js";
import { decodeModelFile } from "../model/model-file.js";
import { createEnclaveClient, discoverEnclaveCid, type CommandRunner } from "./enclave-client.js";
import { Predictor } from "./predictor.js";

const runner =
  (code: number | string, stdout = ""): CommandRunner =>
  async () => ({ code, stdout });

describe("EnclaveClient, chosen by ENCLAVE_MODE", () => {
  it("mock runs the same server in process and answers like the local model", async () => {
    const bytes = await breastCancerModelFile();
    const model = join(mkdtempSync(join(tmpdir(), "enclave-mock-model-")), "model.safetensors");
    writeFileSync(model, bytes);
    const client = await createEnclaveClient({ env: { ENCLAVE_MODE: "mock", ENCLAVE_MODEL: model } });
    expect(client.mode).toBe("mock");
    const rows = breastCancerRows(12);
    expect(await client.predict(rows)).toEqual(
      await new Predictor(decodeModelFile(bytes)).predictCsv(Buffer.from(rows)),
    );
    expect(await client.health()).toMatchObject({ status: "ok", mode: "mock", evidence_kind: "simulated" });
    await client.close();
  });

  it("refuses an unknown mode by name", async () => {
    await expect(createEnclaveClient({ env: { ENCLAVE_MODE: "sgx-ish" } })).rejects.toMatchObject({
      code: "ENDPOINT_INVALID",
      message: expect.stringMatching(/ENCLAVE_MODE must be one of mock, nitro/),
    });
  });

  it("nitro discovers the CID with nitro-cli, and says clearly when it is absent or nothing runs", async () => {
    await expect(discoverEnclaveCid(runner("ENOENT"))).rejects.toMatchObject({
      code: "TRANSPORT_UNAVAILABLE",
      message: expect.stringMatching(/nitro-cli is not installed.*ENCLAVE_CID/),
    });
    await expect(discoverEnclaveCid(runner(0, "[]"))).rejects.toMatchObject({
      code: "CONNECTION_REFUSED",
      message: expect.stringMatching(/no Nitro Enclave is running/),
    });
    const one = JSON.stringify([{ EnclaveID: "i-0abc-enc1", EnclaveCID: 16, State: "RUNNING" }]);
    expect(await discoverEnclaveCid(runner(0, one))).toBe(16);
    const two = JSON.stringify([
      { EnclaveCID: 16, State: "RUNNING" },
      { EnclaveCID: 17, State: "RUNNING" },
    ]);
    await expect(discoverEnclaveCid(runner(0, two))).rejects.toMatchObject({ code: "ENDPOINT_INVALID" });
    await expect(discoverEnclaveCid(runner(1))).rejects.toMatchObject({ code: "TRANSPORT_UNAVAILABLE" });
  });

  it("nitro dials the discovered CID and types the failure instead of hanging", async () => {
    const one = JSON.stringify([{ EnclaveCID: 16, State: "RUNNING" }]);
    const t0 = Date.now();
    const err = await createEnclaveClient({
      env: { ENCLAVE_MODE: "nitro" },
      runCommand: runner(0, one),
      timeoutMs: 2000,
    }).catch((e) => e);
    expect(["CONNECTION_REFUSED", "TIMEOUT", "TRANSPORT_UNAVAILABLE"]).toContain(err.code);
    expect(Date.now() - t0).toBeLessThan(10_000);
    await expect(
      createEnclaveClient({ env: { ENCLAVE_MODE: "nitro", ENCLAVE_CID: "x" } }),
    ).rejects.toMatchObject({
      message: expect.stringMatching(/ENCLAVE_CID must be an integer/),
    });
  });
});
