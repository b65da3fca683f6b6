// Provisioning, startup kits, enrolment and revocation: an edited kit is refused naming what was
// changed; an enrolled site's key never leaves it; a revoked certificate is refused at the next
// handshake of a real host API.
import { X509Certificate } from "node:crypto";
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  cpSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectError } from "@connectrpc/connect";
import { startHostApi } from "../host/host-api.js";
import { MemoryJobDirectory } from "../host/job-directory.js";
import { adminClient } from "../sdk/admin-client.js";
import { loadCa, CA_FILES } from "./ca-files.js";
import { approveEnrolment, createEnrolment, readEnrolment } from "./enrolment.js";
import { loadKit, writeKit, KIT_FILES } from "./kit.js";
import { parseProjectText } from "./project.js";
import { provisionProject } from "./provision.js";
import { readRevocations, revokeSerials, RevocationList } from "./revocation.js";

const PROJECT = `
name: demo
coordinator: { host: localhost, port: 7339 }
sites: [site-a, site-b]
admins: [admin]
`;

describe("enclave provision: a project CA and signed startup kits", () => {
  let out: string;
  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), "enclave-provision-"));
    await provisionProject(parseProjectText(PROJECT), out);
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  const copy = (name: string) => {
    const dir = mkdtempSync(join(tmpdir(), "enclave-kit-"));
    cpSync(join(out, "kits", name), dir, { recursive: true });
    return dir;
  };

  it("writes one kit per participant that loads as that participant, keys readable by the owner only", async () => {
    for (const [name, role] of [
      ["coordinator", "coordinator"],
      ["site-a", "site"],
      ["site-b", "site"],
      ["admin", "admin"],
    ] as const) {
      const kit = await loadKit(join(out, "kits", name));
      expect(kit.identity).toEqual({ name, role });
      expect(kit.config).toMatchObject({ project: "demo", coordinator: { host: "localhost", port: 7339 } });
      expect(statSync(join(out, "kits", name, KIT_FILES.key)).mode & 0o077).toBe(0);
    }
    expect(statSync(join(out, "ca", CA_FILES.key)).mode & 0o077).toBe(0);
    // The coordinator's certificate is valid for the host agents dial.
    const cert = new X509Certificate(readFileSync(join(out, "kits", "coordinator", KIT_FILES.cert)));
    expect(cert.checkHost("localhost")).toBe("localhost");
  });

  it("refuses an edited kit, naming the file", async () => {
    const edited = copy("site-a");
    const config = readFileSync(join(edited, KIT_FILES.config), "utf8");
    writeFileSync(join(edited, KIT_FILES.config), config.replace('"port": 7339', '"port": 7340'));
    await expect(loadKit(edited)).rejects.toMatchObject({
      code: "KIT_INVALID",
      message: expect.stringMatching(/kit\.json was changed after the project CA signed it/),
    });

    const swapped = copy("site-a");
    copyFileSync(join(out, "kits", "site-b", KIT_FILES.cert), join(swapped, KIT_FILES.cert));
    await expect(loadKit(swapped)).rejects.toThrow(/cert\.pem is not the file the kit was issued with/);

    const wrongKey = copy("site-a");
    copyFileSync(join(out, "kits", "site-b", KIT_FILES.key), join(wrongKey, KIT_FILES.key));
    await expect(loadKit(wrongKey)).rejects.toThrow(/key\.pem is not the key of cert\.pem/);

    const unsigned = copy("site-a");
    rmSync(join(unsigned, KIT_FILES.signature));
    await expect(loadKit(unsigned)).rejects.toThrow(/kit\.sig cannot be read/);
    for (const d of [edited, swapped, wrongKey, unsigned]) rmSync(d, { recursive: true, force: true });
  });

  it("refuses a project file naming each bad field, and never overwrites a project", async () => {
    expect(() => parseProjectText("name: demo\ncoordinator: {host: h}\nsites: [a, a]\nadmins: []\n")).toThrow(
      /sites\.1: must be unique among all participants.*admins: must list at least one admin|admins: must list at least one admin.*sites\.1/,
    );
    expect(() => parseProjectText("name: ../x\ncoordinator: {host: h}\nsites: [a]\nadmins: [b]\n")).toThrow(
      /name: must be 1-63/,
    );
    await expect(provisionProject(parseProjectText(PROJECT), out)).rejects.toMatchObject({
      code: "IDENTITY_INVALID",
    });
  });

  it("enrols a site whose key never leaves it: CSR -> approve -> kit that loads with the site's own key", async () => {
    const site = mkdtempSync(join(tmpdir(), "enclave-enrol-"));
    const { keyPem, csrPem } = await createEnrolment("site-c", "site");
    const ca = await loadCa(join(out, "ca"));
    const credential = await approveEnrolment(ca, await readEnrolment(csrPem));
    expect(credential.keyPem).toBe("");
    await writeKit(site, ca, credential, {
      participant: "site-c",
      role: "site",
      coordinator: ca.coordinator,
    });
    writeFileSync(join(site, KIT_FILES.key), keyPem, { mode: 0o600 });
    expect((await loadKit(site)).identity).toEqual({ name: "site-c", role: "site" });

    // A request for the coordinator role, or one whose signature is broken, is not approved.
    await expect(readEnrolment((await createEnrolment("evil", "coordinator")).csrPem)).rejects.toMatchObject({
      code: "CSR_INVALID",
    });
    const b64 = csrPem.split("\n").slice(1, -2).join("");
    const der = Buffer.from(b64, "base64");
    der[der.length - 5] ^= 0x01;
    const broken = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    await expect(readEnrolment(broken)).rejects.toMatchObject({ code: "CSR_INVALID" });
    rmSync(site, { recursive: true, force: true });
  });

  it("refuses a revoked certificate at the next handshake; an edited revocation list is refused", async () => {
    const coordinator = await loadKit(join(out, "kits", "coordinator"));
    const admin = await loadKit(join(out, "kits", "admin"));
    const list = join(out, "ca", CA_FILES.revoked);
    const revocations = new RevocationList(list, coordinator.caPem);
    const api = await startHostApi({
      credential: coordinator.credential,
      caPem: coordinator.caPem,
      jobs: new MemoryJobDirectory(),
      host: "127.0.0.1",
      port: 0,
      isRevoked: (s) => revocations.isRevoked(s),
    });
    try {
      const endpoint = `https://localhost:${api.port}`;
      expect((await adminClient(admin, endpoint).listJobs({})).jobs).toEqual([]);
      const serial = new X509Certificate(admin.credential.certPem).serialNumber.toLowerCase();
      revokeSerials(list, await loadCa(join(out, "ca")), [serial]);
      await expect(adminClient(admin, endpoint).listJobs({})).rejects.toBeInstanceOf(ConnectError);
      expect(revocations.isRevoked(serial)).toBe(true);

      // An edited list does not verify: it is refused, and the last good list stays in force.
      writeFileSync(list, readFileSync(list, "utf8").replace(serial, "00"));
      utimesSync(list, new Date(), new Date(Date.now() + 5000));
      expect(() => readRevocations(list, coordinator.caPem)).toThrow(/not signed by the project CA/);
      expect(revocations.isRevoked(serial)).toBe(true);
      expect(revocations.problem).toMatch(/not signed by the project CA/);
    } finally {
      await api.close();
    }
  });
});
