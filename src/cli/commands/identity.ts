import { mkdir, readFile, writeFile, rename } from "node:fs/promises";
import { X509Certificate } from "node:crypto";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { loadCa, CA_FILES } from "../../identity/ca-files.js";
import { approveEnrolment, createEnrolment, readEnrolment } from "../../identity/enrolment.js";
import { IdentityError } from "../../identity/errors.js";
import { loadKitAs, writeKit } from "../../identity/kit.js";
import type { ProjectCa } from "../../identity/certificates.js";
import { loadProject } from "../../identity/project.js";
import { provisionProject } from "../../identity/provision.js";
import { readRevocations, revokeSerials } from "../../identity/revocation.js";
import { appendAdminAction } from "../../identity/admin-actions.js";
import { existsSync } from "node:fs";
import { choiceFlag } from "../flags.js";

const print = (json: boolean | undefined, data: unknown, text: string) =>
  process.stdout.write(json ? JSON.stringify(data) + "\n" : text + "\n");

async function readSmall(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new IdentityError(
      "IDENTITY_INVALID",
      `${what} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
}

/** The CA's log of approvals and revocations (`<ca>/admin-actions.json`), signed by the CA. */
const ADMIN_ACTIONS = "admin-actions.json";

/**
 * Who is acting at the CA: the admin whose kit `--kit` names (a kit of this project's CA, with an
 * admin certificate the CA has not revoked), or the CA itself when no kit is given.
 */
async function actingAdmin(kitDir: string | undefined, caDir: string, ca: ProjectCa): Promise<string> {
  if (kitDir === undefined) return `ca/${ca.project}`;
  const kit = await loadKitAs(kitDir, "admin");
  if (!new X509Certificate(kit.caPem).publicKey.equals(new X509Certificate(ca.certPem).publicKey))
    throw new IdentityError("KIT_INVALID", "--kit: the admin kit is not of this project CA");
  const list = join(caDir, CA_FILES.revoked);
  const serial = new X509Certificate(kit.credential.certPem).serialNumber.toLowerCase();
  if (existsSync(list) && readRevocations(list, ca.certPem).includes(serial))
    throw new IdentityError("KIT_INVALID", "--kit: this admin's certificate is revoked");
  return `admin/${kit.identity.name}`;
}

const ADMIN_KIT_HELP =
  "the acting admin's startup kit: the action is recorded in <ca>/admin-actions.json, and so in the coordinator's audit chain, under this admin (default: the CA)";

/** provision, enroll, approve, revoke: the project's identities and startup kits. */
export function registerIdentityCommands(program: Command): void {
  program
    .command("provision")
    .description("create a project CA and a signed startup kit for every participant of project.yaml")
    .requiredOption("--project <file>", "project.yaml: name, coordinator {host, port}, sites, admins")
    .requiredOption("--out <dir>", "where ca/ and kits/<participant>/ are written")
    .option("--json", "print the result as JSON")
    .action(async (o: { project: string; out: string; json?: boolean }) => {
      const r = await provisionProject(await loadProject(o.project), resolve(o.out));
      print(
        o.json,
        r,
        [
          `project CA: ${r.ca_dir} (keep ${CA_FILES.key} offline: it signs kits and revocations)`,
          ...r.kits.map((k) => `  ${k.role.padEnd(11)} ${k.participant.padEnd(20)} ${k.dir}`),
        ].join("\n"),
      );
    });

  program
    .command("enroll")
    .description("make this site's key and a certificate signing request (the key never leaves this machine)")
    .requiredOption("--name <id>", "this participant's name (a site id or admin id)")
    .option("--role <role>", "site or admin", choiceFlag(["site", "admin"]), "site")
    .requiredOption("--out <dir>", "where key.pem and csr.pem are written")
    .option("--json", "print the result as JSON")
    .action(async (o: { name: string; role: "site" | "admin"; out: string; json?: boolean }) => {
      const e = await createEnrolment(o.name, o.role);
      const dir = resolve(o.out);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await writeFile(join(dir, "key.pem.tmp"), e.keyPem, { mode: 0o600 });
      await rename(join(dir, "key.pem.tmp"), join(dir, "key.pem"));
      await writeFile(join(dir, "csr.pem"), e.csrPem);
      print(
        o.json,
        { key: join(dir, "key.pem"), csr: join(dir, "csr.pem") },
        `send ${join(dir, "csr.pem")} to a project admin; keep key.pem here`,
      );
    });

  program
    .command("approve")
    .description(
      "sign an enrolment request with the project CA and write the participant's kit (without its key)",
    )
    .requiredOption("--ca <dir>", "the project CA directory (from enclave provision)")
    .requiredOption("--csr <file>", "the participant's csr.pem")
    .requiredOption("--out <dir>", "where the kit files go (copy them next to the participant's key.pem)")
    .option("--kit <dir>", ADMIN_KIT_HELP)
    .option("--json", "print the result as JSON")
    .action(async (o: { ca: string; csr: string; out: string; kit?: string; json?: boolean }) => {
      const caDir = resolve(o.ca);
      const ca = await loadCa(caDir);
      const actor = await actingAdmin(o.kit, caDir, ca);
      const request = await readEnrolment(await readSmall(o.csr, "--csr"));
      const credential = await approveEnrolment(ca, request);
      await writeKit(resolve(o.out), ca, credential, {
        participant: request.name,
        role: request.role,
        coordinator: ca.coordinator,
      });
      const serial = new X509Certificate(credential.certPem).serialNumber.toLowerCase();
      const log = join(caDir, ADMIN_ACTIONS);
      appendAdminAction(log, ca, {
        action: "approve",
        serial,
        participant: request.name,
        role: request.role,
        actor,
        at: new Date().toISOString(),
      });
      print(
        o.json,
        { participant: request.name, role: request.role, serial, dir: resolve(o.out), actor, log },
        `approved ${request.role} ${request.name} (serial ${serial}) as ${actor}; give ${log} to the coordinator (--admin-actions) so its audit chain records it`,
      );
    });

  program
    .command("revoke")
    .description("revoke a participant's certificate: the coordinator refuses it at the next handshake")
    .requiredOption("--ca <dir>", "the project CA directory")
    .option("--cert <file>", "the certificate to revoke (cert.pem of its kit)")
    .option("--serial <hex>", "or its serial number")
    .option("--kit <dir>", ADMIN_KIT_HELP)
    .option("--json", "print the result as JSON")
    .action(async (o: { ca: string; cert?: string; serial?: string; kit?: string; json?: boolean }) => {
      if ((o.cert === undefined) === (o.serial === undefined))
        throw new IdentityError("IDENTITY_INVALID", "give exactly one of --cert and --serial");
      const serial = o.cert
        ? new X509Certificate(await readSmall(o.cert, "--cert")).serialNumber.toLowerCase()
        : o.serial!.toLowerCase();
      if (!/^[0-9a-f]{1,64}$/.test(serial))
        throw new IdentityError("IDENTITY_INVALID", "--serial: must be hex");
      const dir = resolve(o.ca);
      const ca = await loadCa(dir);
      const actor = await actingAdmin(o.kit, dir, ca);
      const path = join(dir, CA_FILES.revoked);
      const log = join(dir, ADMIN_ACTIONS);
      // The record first: a coordinator that reads both files audits the revocation with its admin.
      appendAdminAction(log, ca, { action: "revoke", serial, actor, at: new Date().toISOString() });
      const all = revokeSerials(path, ca, [serial]);
      print(
        o.json,
        { revoked: serial, list: path, serials: all.length, actor, log },
        `revoked ${serial} as ${actor}; give ${path} (--revocations) and ${log} (--admin-actions) to the coordinator`,
      );
    });
}
