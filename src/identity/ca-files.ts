import { readFile, mkdir, writeFile, rename } from "node:fs/promises";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import type { ProjectCa } from "./certificates.js";
import { IdentityError } from "./errors.js";

/** The project CA's directory (`<out>/ca`): keep it offline; it signs kits and revocations. */
export const CA_FILES = {
  cert: "ca.pem",
  key: "ca.key",
  revoked: "revoked.json",
  coordinator: "coordinator.json",
} as const;

/** Where kits say the coordinator is (kept with the CA so `enclave approve` can issue kits). */
export interface CoordinatorEndpoint {
  host: string;
  port: number;
  name: string;
}

export async function writeCa(dir: string, ca: ProjectCa, coordinator: CoordinatorEndpoint): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, CA_FILES.coordinator), JSON.stringify(coordinator, null, 2) + "\n");
  await writeFile(join(dir, CA_FILES.cert), ca.certPem);
  await writeFile(join(dir, `${CA_FILES.key}.tmp`), ca.keyPem, { mode: 0o600 });
  await rename(join(dir, `${CA_FILES.key}.tmp`), join(dir, CA_FILES.key));
}

export async function loadCa(dir: string): Promise<ProjectCa & { coordinator: CoordinatorEndpoint }> {
  let certPem: string;
  let keyPem: string;
  let endpoint: string;
  try {
    [certPem, keyPem, endpoint] = await Promise.all([
      readFile(join(dir, CA_FILES.cert), "utf8"),
      readFile(join(dir, CA_FILES.key), "utf8"),
      readFile(join(dir, CA_FILES.coordinator), "utf8"),
    ]);
  } catch (err) {
    throw new IdentityError(
      "IDENTITY_INVALID",
      `project CA directory cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  const o = /(?:^|\n)O=([^\n]+)/.exec(new X509Certificate(certPem).subject)?.[1];
  if (!o) throw new IdentityError("IDENTITY_INVALID", "ca.pem names no project (O=)");
  return { project: o, certPem, keyPem, coordinator: JSON.parse(endpoint) as CoordinatorEndpoint };
}
