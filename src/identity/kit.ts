import { createHash, createPrivateKey, createPublicKey, sign, verify, X509Certificate } from "node:crypto";
import { mkdir, readFile, writeFile, rename, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { z } from "zod";
import { parseContract } from "../schemas/contract.js";
import { peerIdentity, ROLES, type Credential, type Identity, type ProjectCa } from "./certificates.js";
import { IdentityError } from "./errors.js";

/** A startup kit's files. */
export const KIT_FILES = {
  ca: "ca.pem",
  cert: "cert.pem",
  key: "key.pem",
  config: "kit.json",
  signature: "kit.sig",
} as const;

/** kit.json: who this participant is, where the coordinator is, and the hashes of its certificates. */
export const KitConfig = z
  .object({
    format: z.literal("coreason-enclave-kit/1"),
    project: z.string().min(1),
    participant: z.string().min(1),
    role: z.enum(ROLES),
    coordinator: z
      .object({ host: z.string().min(1), port: z.number().int().min(1).max(65535), name: z.string().min(1) })
      .strict(),
    issued_at: z.string().min(1),
    /** SHA-256 (hex) of ca.pem and cert.pem as written: a swapped certificate breaks the signature. */
    sha256: z
      .object({
        "ca.pem": z.string().regex(/^[0-9a-f]{64}$/),
        "cert.pem": z.string().regex(/^[0-9a-f]{64}$/),
      })
      .strict(),
  })
  .strict();
export type KitConfig = z.output<typeof KitConfig>;

/** A verified startup kit: its config, credential and the project CA it trusts. */
export interface Kit {
  dir: string;
  config: KitConfig;
  credential: Credential;
  caPem: string;
  identity: Identity;
}

const MAX_KIT_FILE = 64 * 1024;
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** The CA's signature over the exact bytes of kit.json (ECDSA P-256, SHA-256, base64). */
function signConfig(ca: ProjectCa, configText: string): string {
  return sign("sha256", Buffer.from(configText), createPrivateKey(ca.keyPem)).toString("base64") + "\n";
}

async function writePrivate(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}

/**
 * Write a participant's startup kit to `dir`: the CA certificate, its certificate (and key, unless
 * it enrolled and keeps its own), and kit.json signed by the project CA (kit.sig).
 */
export async function writeKit(
  dir: string,
  ca: ProjectCa,
  credential: Credential,
  o: Pick<KitConfig, "participant" | "role" | "coordinator">,
): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const config: KitConfig = {
    format: "coreason-enclave-kit/1",
    project: ca.project,
    participant: o.participant,
    role: o.role,
    coordinator: o.coordinator,
    issued_at: new Date().toISOString(),
    sha256: { "ca.pem": sha256(ca.certPem), "cert.pem": sha256(credential.certPem) },
  };
  const text = JSON.stringify(config, null, 2) + "\n";
  await writeFile(join(dir, KIT_FILES.ca), ca.certPem);
  await writeFile(join(dir, KIT_FILES.cert), credential.certPem);
  if (credential.keyPem) await writePrivate(join(dir, KIT_FILES.key), credential.keyPem);
  await writeFile(join(dir, KIT_FILES.config), text);
  await writeFile(join(dir, KIT_FILES.signature), signConfig(ca, text));
}

async function readKitFile(dir: string, name: string): Promise<string> {
  const path = join(dir, name);
  try {
    if ((await stat(path)).size > MAX_KIT_FILE) throw Object.assign(new Error(), { code: "E2BIG" });
    return await readFile(path, "utf8");
  } catch (err) {
    throw new IdentityError(
      "KIT_INVALID",
      `startup kit: ${name} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
}

const refused = (why: string) => new IdentityError("KIT_INVALID", `startup kit refused: ${why}`);

/** True when `keyPem` is the private key of `cert` (false for anything unreadable). */
function keyMatches(keyPem: string, cert: X509Certificate): boolean {
  try {
    return createPublicKey(createPrivateKey(keyPem))
      .export({ type: "spki", format: "der" })
      .equals(cert.publicKey.export({ type: "spki", format: "der" }));
  } catch {
    return false;
  }
}

/**
 * Load and verify a startup kit: kit.json must carry the project CA's signature over its exact
 * bytes, ca.pem and cert.pem must be the files it names by hash, and the certificate must be
 * the CA's and name the kit's participant and role. An edited kit is refused, naming what.
 */
export async function loadKit(dir: string): Promise<Kit> {
  const [caPem, certPem, text, sig] = await Promise.all(
    [KIT_FILES.ca, KIT_FILES.cert, KIT_FILES.config, KIT_FILES.signature].map((f) => readKitFile(dir, f)),
  );
  let caCert: X509Certificate;
  try {
    caCert = new X509Certificate(caPem);
  } catch {
    throw refused(`${KIT_FILES.ca} is not a certificate`);
  }
  const signed = verify("sha256", Buffer.from(text), caCert.publicKey, Buffer.from(sig.trim(), "base64"));
  if (!signed)
    throw refused(
      `${KIT_FILES.config} was changed after the project CA signed it (${KIT_FILES.signature} does not verify)`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw refused(`${KIT_FILES.config} is not JSON`);
  }
  const config = parseContract(KitConfig, raw, "startup kit config");
  if (sha256(caPem) !== config.sha256["ca.pem"])
    throw refused(`${KIT_FILES.ca} is not the file the kit was issued with`);
  if (sha256(certPem) !== config.sha256["cert.pem"])
    throw refused(`${KIT_FILES.cert} is not the file the kit was issued with`);
  const cert = new X509Certificate(certPem);
  if (!cert.verify(caCert.publicKey)) throw refused(`${KIT_FILES.cert} is not signed by the project CA`);
  const identity = peerIdentity({
    subject: Object.fromEntries(cert.subject.split("\n").map((l) => l.split("=", 2))) as never,
  });
  if (!identity || identity.name !== config.participant || identity.role !== config.role)
    throw refused(`${KIT_FILES.cert} does not name the kit's participant and role`);
  const keyPem = await readKitFile(dir, KIT_FILES.key);
  if (!keyMatches(keyPem, cert)) throw refused(`${KIT_FILES.key} is not the key of ${KIT_FILES.cert}`);
  return { dir, config, credential: { certPem, keyPem }, caPem, identity };
}

const article = (role: string) => (role === "admin" ? `an ${role}` : `a ${role}`);

/** A kit (a directory to load, or one loaded) that must be `role`'s: the CLI's `--kit` and the SDK's `kit`. */
export async function loadKitAs(kit: string | Kit, role: Kit["identity"]["role"]): Promise<Kit> {
  const k = typeof kit === "string" ? await loadKit(resolve(kit)) : kit;
  if (k.identity.role !== role)
    throw new IdentityError(
      "KIT_INVALID",
      `--kit: this is ${article(k.identity.role)} kit; this command needs ${article(role)} kit`,
    );
  return k;
}
