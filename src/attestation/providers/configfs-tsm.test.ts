import * as fsp from "node:fs/promises";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { pemToDerList } from "../pki/index.js";
import { ConfigfsTsmProvider, probeTsmProvider, type TsmFs } from "./configfs-tsm.js";
import { ProviderError } from "./provider.js";
import { encodeSnpCertTable, parseSnpCertTable, SNP_CERT_GUIDS } from "./snp-cert-table.js";

const VECTORS = fileURLToPath(new URL("../../../test/vectors/", import.meta.url));
const vector = (p: string) => new Uint8Array(readFileSync(join(VECTORS, p)));

/**
 * Plays the kernel's part of configfs-tsm over a real temp directory: mkdir creates the attribute
 * files, writes to inblob/privlevel bump `generation`, outblob replays a recorded report.
 */
class FakeTsmKernel implements TsmFs {
  readonly root = mkdtempSync(join(tmpdir(), "tsm-"));
  generationBumpOnRead = 0; // simulate a concurrent writer
  removed: string[] = [];
  lastInblob?: Uint8Array;
  constructor(
    private readonly provider: string,
    private readonly outblob: Uint8Array,
    private readonly auxblob?: Uint8Array,
  ) {}
  async mkdir(p: string) {
    await fsp.mkdir(p);
    await fsp.writeFile(join(p, "provider"), this.provider + "\n");
    await fsp.writeFile(join(p, "generation"), "0\n");
    if (this.auxblob) await fsp.writeFile(join(p, "auxblob"), this.auxblob);
  }
  async rmdir(p: string) {
    this.removed.push(basename(p));
    await fsp.rm(p, { recursive: true });
  }
  async readFile(p: string) {
    if (basename(p) === "outblob") {
      if (this.generationBumpOnRead > 0) {
        this.generationBumpOnRead--;
        await this.bump(dirname(p));
      }
      return this.outblob;
    }
    return new Uint8Array(await fsp.readFile(p));
  }
  async writeFile(p: string, d: Uint8Array | string) {
    const name = basename(p);
    if (name !== "inblob" && name !== "privlevel")
      throw Object.assign(new Error("EACCES"), { code: "EACCES" });
    if (name === "inblob") this.lastInblob = Uint8Array.from(d as Uint8Array);
    await fsp.writeFile(p, d);
    await this.bump(dirname(p));
  }
  async exists(p: string) {
    return fsp.access(p).then(
      () => true,
      () => false,
    );
  }
  private async bump(dir: string) {
    const g = Number(await fsp.readFile(join(dir, "generation"), "utf8"));
    await fsp.writeFile(join(dir, "generation"), `${g + 1}\n`);
  }
}

// trustee_test-report.bin: report_data from sev-snp/EXPECTED.json.
const SNP_REPORT_DATA = Buffer.from(
  "ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e2" + "00".repeat(32),
  "hex",
);
// go-tdx-guest_tdx_prod_quote_SPR_E4.dat: td_body.reportdata from tdx/EXPECTED.json.
const TDX_REPORT_DATA = Buffer.from(
  "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dacead6f0c87a6d766c66f6f29f8acb281f1113",
  "hex",
);

function snpCertTable(): { table: Uint8Array; vcek: Uint8Array; ask: Uint8Array; ark: Uint8Array } {
  const vcek = vector("sev-snp/trustee_test-vcek.der");
  const [ask, ark] = pemToDerList(
    readFileSync(join(VECTORS, "sev-snp/go-sev-guest_ask_ark_milan.pem"), "utf8"),
  );
  return {
    table: encodeSnpCertTable([
      { guid: "63da758d-e664-4564-adc5-f4b93be8accd", der: vcek },
      { guid: "4ab7b379-bbac-4fe4-a02f-05aef327c782", der: ask },
      { guid: "c0b406a4-a803-4952-9743-3fb6014cd0ae", der: ark },
    ]),
    vcek,
    ask,
    ark,
  };
}

describe("SNP certificate table", () => {
  it("writes GUIDs in textual byte order with LE offsets from the table start (hand-checked bytes)", () => {
    const { table, vcek, ask } = snpCertTable();
    const b = Buffer.from(table);
    expect(b.subarray(0, 16).toString("hex")).toBe("63da758de6644564adc5f4b93be8accd");
    expect(b.readUInt32LE(16)).toBe(4 * 24); // three entries + terminator
    expect(b.readUInt32LE(20)).toBe(vcek.length);
    expect(b.readUInt32LE(24 + 16)).toBe(96 + vcek.length);
    expect(b.readUInt32LE(24 + 20)).toBe(ask.length);
    expect(b.subarray(72, 96).every((x) => x === 0)).toBe(true);
    const parsed = parseSnpCertTable(table);
    expect(parsed.map((c) => c.role)).toEqual(["VCEK", "ASK", "ARK"]);
    expect(Buffer.from(parsed[0].der).equals(Buffer.from(vcek))).toBe(true);
  });

  it("accepts an empty blob and trailing padding; maps VLEK and unknown GUIDs", () => {
    expect(parseSnpCertTable(new Uint8Array(0))).toEqual([]);
    const t = encodeSnpCertTable([
      { guid: "a8074bc2-a25a-483e-aae6-39c045a0b8a1", der: new Uint8Array([1, 2, 3]) },
      { guid: "00000000-0000-c0de-0000-000000000000", der: new Uint8Array([4]) },
    ]);
    const padded = new Uint8Array(4096);
    padded.set(t);
    const parsed = parseSnpCertTable(padded);
    expect(parsed.map((c) => c.role)).toEqual(["VLEK", "OTHER"]);
    expect(SNP_CERT_GUIDS["a8074bc2-a25a-483e-aae6-39c045a0b8a1"]).toBe("VLEK");
  });

  it("rejects tables that point outside themselves, repeat an entry or lack a terminator", () => {
    const t = Buffer.from(
      encodeSnpCertTable([{ guid: "63da758d-e664-4564-adc5-f4b93be8accd", der: new Uint8Array(10) }]),
    );
    const beyond = Buffer.from(t);
    beyond.writeUInt32LE(1000, 20);
    expect(() => parseSnpCertTable(beyond)).toThrow(/outside the table/);
    const intoHeader = Buffer.from(t);
    intoHeader.writeUInt32LE(8, 16);
    expect(() => parseSnpCertTable(intoHeader)).toThrow(/outside the table/);
    expect(() => parseSnpCertTable(new Uint8Array(10).fill(1))).toThrow(/terminating/);
    const dup = encodeSnpCertTable([
      { guid: "63da758d-e664-4564-adc5-f4b93be8accd", der: new Uint8Array(1) },
      { guid: "63da758d-e664-4564-adc5-f4b93be8accd", der: new Uint8Array(1) },
    ]);
    expect(() => parseSnpCertTable(dup)).toThrow(/duplicate/);
  });
});

describe("ConfigfsTsmProvider against a fake configfs tree", () => {
  it("collects a recorded SNP report with its certificate table and removes the entry", async () => {
    const { table, vcek } = snpCertTable();
    const report = vector("sev-snp/trustee_test-report.bin");
    const kernel = new FakeTsmKernel("sev_guest", report, table);
    const p = new ConfigfsTsmProvider("snp", { root: kernel.root, fs: kernel, privlevel: 0 });
    const ev = await p.collect(new Uint8Array(SNP_REPORT_DATA));
    expect(ev.kind).toBe("snp");
    expect(ev.label).toBe("HARDWARE");
    expect(Buffer.from(ev.bytes).equals(Buffer.from(report))).toBe(true);
    expect(ev.certificates?.map((c) => c.role)).toEqual(["VCEK", "ASK", "ARK"]);
    expect(Buffer.from(ev.certificates![0].der).equals(Buffer.from(vcek))).toBe(true);
    expect(Buffer.from(kernel.lastInblob!).equals(SNP_REPORT_DATA)).toBe(true);
    expect(kernel.removed.length).toBe(1);
    expect(await fsp.readdir(kernel.root)).toEqual([]);
  });

  it("collects a recorded TDX quote", async () => {
    const quote = vector("tdx/go-tdx-guest_tdx_prod_quote_SPR_E4.dat");
    const kernel = new FakeTsmKernel("tdx_guest", quote);
    const ev = await new ConfigfsTsmProvider("tdx", { root: kernel.root, fs: kernel }).collect(
      new Uint8Array(TDX_REPORT_DATA),
    );
    expect(ev.kind).toBe("tdx");
    expect(ev.certificates).toBeUndefined();
    expect(ev.bytes.length).toBe(4974);
  });

  it("refuses a report that does not carry the requested report data", async () => {
    const kernel = new FakeTsmKernel("sev_guest", vector("sev-snp/trustee_test-report.bin"));
    const p = new ConfigfsTsmProvider("snp", { root: kernel.root, fs: kernel });
    await expect(p.collect(new Uint8Array(64).fill(1))).rejects.toMatchObject({
      code: "REPORT_DATA_MISMATCH",
    });
    expect(await fsp.readdir(kernel.root)).toEqual([]);
  });

  it("detects a concurrent writer through generation, retries, and gives up after the attempts", async () => {
    const report = vector("sev-snp/trustee_test-report.bin");
    const kernel = new FakeTsmKernel("sev_guest", report);
    kernel.generationBumpOnRead = 1;
    const p = new ConfigfsTsmProvider("snp", { root: kernel.root, fs: kernel, attempts: 2 });
    const ev = await p.collect(new Uint8Array(SNP_REPORT_DATA));
    expect(ev.bytes.length).toBe(1184); // second attempt succeeded
    expect(kernel.removed.length).toBe(2);
    kernel.generationBumpOnRead = 5;
    const err = await p.collect(new Uint8Array(SNP_REPORT_DATA)).catch((e) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err.code).toBe("TSM_CONFLICT");
    expect(err.message).toMatch(/concurrent writer/);
  });

  it("refuses a provider of the other vendor, and wrong-size report data", async () => {
    const kernel = new FakeTsmKernel("tdx_guest", vector("tdx/go-tdx-guest_tdx_prod_quote_SPR_E4.dat"));
    const p = new ConfigfsTsmProvider("snp", { root: kernel.root, fs: kernel });
    await expect(p.collect(new Uint8Array(64))).rejects.toMatchObject({ code: "PROVIDER_FAILED" });
    await expect(p.collect(new Uint8Array(32))).rejects.toThrow(/exactly 64 bytes/);
    expect(() => new ConfigfsTsmProvider("snp", { privlevel: 4 })).toThrow(/privlevel/);
  });

  it("reports the OS error code when the entry cannot be created", async () => {
    const p = new ConfigfsTsmProvider("snp", { root: join(tmpdir(), "no-such-tsm-root-xyz") });
    const err = await p.collect(new Uint8Array(64)).catch((e) => e);
    expect(err.code).toBe("PROVIDER_FAILED");
    expect(err.message).toMatch(/ENOENT/);
  });

  it("probes the provider name, creating and removing one entry", async () => {
    const kernel = new FakeTsmKernel("sev_guest", new Uint8Array(0));
    expect((await probeTsmProvider({ root: kernel.root, fs: kernel })).provider).toBe("sev_guest");
    expect(await fsp.readdir(kernel.root)).toEqual([]);
    expect((await probeTsmProvider({ root: join(kernel.root, "absent") })).provider).toBeUndefined();
  });
});
