import { PinnedRootError } from "./errors.js";
import { parseCertificate, type ParsedCertificate } from "./certificate.js";
import { pemToDerList } from "./pem.js";

/**
 * A vendor root compiled into the code, checked against its pinned SHA-256 fingerprint and parsed
 * once, on first use. An embedded PEM that drifted from its pin refuses to load.
 */
export function pinnedRoot(name: string, pem: string, sha256: string): () => ParsedCertificate {
  let cached: ParsedCertificate | undefined;
  return () => {
    if (!cached) {
      const cert = parseCertificate(pemToDerList(pem)[0]);
      if (cert.fingerprint256 !== sha256) {
        throw new PinnedRootError(name);
      }
      cached = cert;
    }
    return cached;
  };
}
