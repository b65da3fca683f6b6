import "reflect-metadata";
import { randomBytes, webcrypto, X509Certificate } from "node:crypto";
import type { PeerCertificate } from "node:tls";
import { isIP } from "node:net";
import * as x509 from "@peculiar/x509";
import { IdentityError } from "./errors.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** What a participant's certificate lets it call (carried as the subject's OU). */
export const ROLES = ["coordinator", "site", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** A certificate and its private key, PEM. */
export interface Credential {
  certPem: string;
  keyPem: string;
}

/** The participant a certificate names: its CN and its role (OU). */
export interface Identity {
  name: string;
  role: Role;
}

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const DAY_MS = 86_400_000;

/** Participant and project names: letters, digits, `.`, `_`, `-` (they become DN values and file names). */
export function checkName(name: string, field: string): void {
  if (!NAME.test(name))
    throw new IdentityError(
      "IDENTITY_INVALID",
      `${field}: must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
}

/** DER as PEM text with 64-character lines (RFC 7468). */
export function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString("base64")
    .replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  return pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", key));
}

function serial(): string {
  const b = randomBytes(16);
  b[0] &= 0x7f; // a positive INTEGER
  return b.toString("hex");
}

/** A project's certificate authority: it signs every participant's certificate and the kits. */
export interface ProjectCa extends Credential {
  project: string;
}

/** A new self-signed project CA (ECDSA P-256), valid for `days`. */
export async function createProjectCa(project: string, days = 3650, now = new Date()): Promise<ProjectCa> {
  checkName(project, "name");
  const keys = await keyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${project} project CA, O=${project}`,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + days * DAY_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { project, certPem: cert.toString("pem") + "\n", keyPem: await keyPem(keys.privateKey) };
}

export interface IssueOptions extends Identity {
  /** Coordinator only: the host names and addresses its server certificate is valid for. */
  hosts?: string[];
  days?: number;
  now?: Date;
}

/**
 * A participant's certificate from the project CA: CN = its name, OU = its role, O = the project.
 * Every certificate is a TLS client certificate; a coordinator's is also its server certificate.
 * With `publicKeyPem` (enrolment: the key never left the site) no private key is returned.
 */
export async function issueCertificate(
  ca: ProjectCa,
  o: IssueOptions & { publicKeyPem?: string },
): Promise<Credential> {
  checkName(o.name, "participant name");
  if (!(ROLES as readonly string[]).includes(o.role))
    throw new IdentityError("IDENTITY_INVALID", `role: must be one of ${ROLES.join(", ")}`);
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey(
    "pkcs8",
    Buffer.from(ca.keyPem.replace(/-----[^-]+-----|\s/g, ""), "base64"),
    ALG,
    false,
    ["sign"],
  );
  const keys = o.publicKeyPem ? undefined : await keyPair();
  const publicKey = keys ? keys.publicKey : await new x509.PublicKey(o.publicKeyPem!).export(ALG, ["verify"]);
  const now = o.now ?? new Date();
  const usages =
    o.role === "coordinator"
      ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
      : [x509.ExtendedKeyUsage.clientAuth];
  const hosts = o.role === "coordinator" ? (o.hosts ?? []) : [];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${o.name}, OU=${o.role}, O=${ca.project}`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + (o.days ?? 825) * DAY_MS),
    publicKey,
    signingKey: caKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(usages, false),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
      ...(hosts.length
        ? [
            new x509.SubjectAlternativeNameExtension(
              hosts.map((h) =>
                isIP(h) ? { type: "ip" as const, value: h } : { type: "dns" as const, value: h },
              ),
            ),
          ]
        : []),
    ],
  });
  return { certPem: cert.toString("pem") + "\n", keyPem: keys ? await keyPem(keys.privateKey) : "" };
}

/** The identity a verified TLS peer certificate carries, or null when it names no participant and role. */
export function peerIdentity(cert: Pick<PeerCertificate, "subject"> | undefined): Identity | null {
  const subject = cert?.subject as Record<string, string | string[] | undefined> | undefined;
  const cn = subject?.CN;
  const ou = subject?.OU;
  if (typeof cn !== "string" || typeof ou !== "string") return null;
  if (!NAME.test(cn) || !(ROLES as readonly string[]).includes(ou)) return null;
  return { name: cn, role: ou as Role };
}

/**
 * The public key of a certificate (PEM text or DER bytes) as SPKI DER: what an agent's evidence
 * binds over a network session, and what the coordinator reads from the TLS handshake.
 */
export function certificatePublicKey(cert: string | Uint8Array): Uint8Array {
  const x = new X509Certificate(typeof cert === "string" ? cert : Buffer.from(cert));
  return new Uint8Array(x.publicKey.export({ type: "spki", format: "der" }));
}
