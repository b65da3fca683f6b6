import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { measureBuild } from "../build-measurement.js";
import type { Evidence } from "../evidence.js";
import { encodeSoftwareEvidence, rawEd25519PublicKey, type SoftwareLabel } from "../simulated-evidence.js";
import { checkReportData, ProviderError, type EvidenceProvider } from "./provider.js";

export interface SoftwareProviderOptions {
  /** The node's Ed25519 key pair; a fresh one per provider when omitted. */
  privateKey?: KeyObject;
  now?: () => Date;
  /** Measurement override (48 bytes); defaults to SHA-384 of the running build. */
  measurement?: Uint8Array;
  /** Package root to measure (defaults to this package). */
  buildRoot?: string;
}

abstract class SoftwareProvider implements EvidenceProvider {
  abstract readonly kind: "simulated" | "insecure";
  abstract readonly label: SoftwareLabel;
  abstract readonly description: string;
  private readonly privateKey: KeyObject;
  /** Raw Ed25519 public key of the node (32 bytes). */
  readonly publicKey: Uint8Array;
  private readonly options: SoftwareProviderOptions;

  constructor(options: SoftwareProviderOptions = {}) {
    this.options = options;
    this.privateKey = options.privateKey ?? generateKeyPairSync("ed25519").privateKey;
    if (this.privateKey.asymmetricKeyType !== "ed25519" || this.privateKey.type !== "private") {
      throw new ProviderError(
        "PROVIDER_FAILED",
        "software provider",
        "node key must be an Ed25519 private key",
      );
    }
    this.publicKey = rawEd25519PublicKey(this.privateKey);
  }

  async collect(reportData: Uint8Array): Promise<Evidence> {
    checkReportData(this.description, reportData);
    const measurement =
      this.options.measurement ?? Buffer.from((await measureBuild(this.options.buildRoot)).digest, "hex");
    const now = (this.options.now ?? (() => new Date()))();
    const bytes = encodeSoftwareEvidence(
      { label: this.label, timestamp: now, measurement, reportData, nodePublicKey: this.publicKey },
      (signed) => new Uint8Array(sign(null, signed, this.privateKey)),
    );
    return { kind: this.kind, bytes, collectedAt: now, label: this.label };
  }
}

/** Development evidence: Ed25519-signed by the node key, labelled SIMULATED inside the signature. */
export class SimulatedProvider extends SoftwareProvider {
  readonly kind = "simulated" as const;
  readonly label = "SIMULATED" as const;
  readonly description = "simulated (software Ed25519 key, no TEE)";
}

/** Evidence that declares no hardware protection at all (`--insecure`); labelled INSECURE when signed. */
export class InsecureProvider extends SoftwareProvider {
  readonly kind = "insecure" as const;
  readonly label = "INSECURE" as const;
  readonly description = "insecure (no hardware protection)";
}
