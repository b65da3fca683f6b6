import { join } from "node:path";
import { existsSync } from "node:fs";
import { writeCa } from "./ca-files.js";
import { createProjectCa, issueCertificate, type Role } from "./certificates.js";
import { IdentityError } from "./errors.js";
import { writeKit } from "./kit.js";
import type { ProjectConfig } from "./project.js";

export interface ProvisionResult {
  ca_dir: string;
  kits: { participant: string; role: Role; dir: string }[];
}

/**
 * `enclave provision`: a project CA (`<out>/ca`) and one startup kit per participant
 * (`<out>/kits/<name>`): the coordinator (its certificate names its host), each site, each admin.
 * Refuses to overwrite an existing project.
 */
export async function provisionProject(project: ProjectConfig, out: string): Promise<ProvisionResult> {
  if (existsSync(join(out, "ca")))
    throw new IdentityError(
      "IDENTITY_INVALID",
      "--out already holds a project CA (ca/); choose an empty directory",
    );
  const ca = await createProjectCa(project.name);
  const coordinator = {
    host: project.coordinator.host,
    port: project.coordinator.port,
    name: project.coordinator.name,
  };
  await writeCa(join(out, "ca"), ca, coordinator);
  const participants: { name: string; role: Role }[] = [
    { name: project.coordinator.name, role: "coordinator" },
    ...project.sites.map((name) => ({ name, role: "site" as const })),
    ...project.admins.map((name) => ({ name, role: "admin" as const })),
  ];
  const kits: ProvisionResult["kits"] = [];
  for (const p of participants) {
    const hosts =
      p.role === "coordinator" ? [...new Set([project.coordinator.host, "localhost", "127.0.0.1"])] : [];
    const credential = await issueCertificate(ca, { ...p, hosts });
    const dir = join(out, "kits", p.name);
    await writeKit(dir, ca, credential, { participant: p.name, role: p.role, coordinator });
    kits.push({ participant: p.name, role: p.role, dir });
  }
  return { ca_dir: join(out, "ca"), kits };
}
