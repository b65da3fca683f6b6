import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import {
  issueCertificate,
  ROLES,
  type Credential,
  type ProjectCa,
  type Role,
  checkName,
  pem,
} from "./certificates.js";
import { IdentityError } from "./errors.js";

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/**
 * Distributed enrolment, site side: a fresh key that never leaves the site, and a certificate
 * signing request naming the participant and the role it asks for.
 */
export async function createEnrolment(name: string, role: Role): Promise<{ keyPem: string; csrPem: string }> {
  checkName(name, "name");
  if (!(ROLES as readonly string[]).includes(role))
    throw new IdentityError("IDENTITY_INVALID", `role: must be one of ${ROLES.join(", ")}`);
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${name}, OU=${role}`,
    keys,
    signingAlgorithm: ALG,
  });
  return {
    keyPem: pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", keys.privateKey)),
    csrPem: csr.toString("pem") + "\n",
  };
}

/** What an approver reads from a CSR before signing it. */
export interface EnrolmentRequest {
  name: string;
  /** Enrolment issues site and admin certificates only (a coordinator's comes from provision). */
  role: Exclude<Role, "coordinator">;
  publicKeyPem: string;
}

/** Parse a CSR and check its self-signature (proof of the key) and the identity it asks for. */
export async function readEnrolment(csrPem: string): Promise<EnrolmentRequest> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch {
    throw new IdentityError("CSR_INVALID", "the request is not a PEM certificate signing request");
  }
  if (!(await csr.verify()))
    throw new IdentityError("CSR_INVALID", "the request's signature does not verify");
  const cn = csr.subjectName.getField("CN");
  const ou = csr.subjectName.getField("OU");
  if (cn.length !== 1 || ou.length !== 1)
    throw new IdentityError("CSR_INVALID", "subject: must hold one CN and one OU");
  checkName(cn[0], "subject CN");
  if (ou[0] !== "site" && ou[0] !== "admin")
    throw new IdentityError("CSR_INVALID", "subject OU: enrolment issues site and admin certificates only");
  return { name: cn[0], role: ou[0], publicKeyPem: csr.publicKey.toString("pem") };
}

/** Approve an enrolment: the project CA's certificate for the request's key (no key is returned). */
export async function approveEnrolment(ca: ProjectCa, request: EnrolmentRequest): Promise<Credential> {
  return issueCertificate(ca, { name: request.name, role: request.role, publicKeyPem: request.publicKeyPem });
}
