import {
  Aes256Gcm,
  CipherSuite,
  DhkemX25519HkdfSha256,
  HkdfSha256,
  type RecipientContext,
  type SenderContext,
} from "@hpke/core";
import { InferenceError } from "./errors.js";

/**
 * HPKE (RFC 9180, base mode): DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM. A sealed
 * payload is `enc (32 bytes) || ciphertext`. Each direction and use has its own `info`, so a
 * payload sealed for one context cannot be opened in another even by the holder of the key.
 */
export const SEAL_CONTEXTS = {
  /** A client's request to the enclave. */
  request: "coreason-enclave/inference/v1 client->enclave",
  /** The enclave's answer to a client (predictions, chat chunks). */
  response: "coreason-enclave/inference/v1 enclave->client",
  /** Storage copy of the user's side of a conversation. */
  userStorage: "coreason-enclave/inference/v1 storage:user",
  /** Storage copy of the assistant's side of a conversation. */
  assistantStorage: "coreason-enclave/inference/v1 storage:assistant",
  /** Cloud credentials pushed by the parent. */
  credentials: "coreason-enclave/inference/v1 parent->enclave credentials",
} as const;
export type SealContext = keyof typeof SEAL_CONTEXTS;

export const HPKE_PUBLIC_KEY_BYTES = 32;
const ENC_BYTES = 32;
const TAG_BYTES = 16;
const utf8 = new TextEncoder();

const suite = new CipherSuite({
  kem: new DhkemX25519HkdfSha256(),
  kdf: new HkdfSha256(),
  aead: new Aes256Gcm(),
});

type KeyPair = Awaited<ReturnType<typeof suite.kem.generateKeyPair>>;
type PublicKey = KeyPair["publicKey"];

const info = (context: SealContext) => utf8.encode(SEAL_CONTEXTS[context]);
const aadOf = (aad: string | undefined) => (aad === undefined ? undefined : utf8.encode(aad));

function decryptionFailed(context: SealContext, cause?: unknown): InferenceError {
  return new InferenceError(
    "DECRYPTION_FAILED",
    `sealed ${context} payload does not open: tampered, sealed to another key, or for another context`,
    { cause },
  );
}

async function importPublicKey(raw: Uint8Array, what: string): Promise<PublicKey> {
  if (!(raw instanceof Uint8Array) || raw.length !== HPKE_PUBLIC_KEY_BYTES) {
    throw new InferenceError("PAYLOAD_INVALID", `${what} must be a ${HPKE_PUBLIC_KEY_BYTES}-byte X25519 key`);
  }
  try {
    return await suite.kem.deserializePublicKey(raw);
  } catch (cause) {
    throw new InferenceError("PAYLOAD_INVALID", `${what} is not a valid X25519 public key`, { cause });
  }
}

/** Seal `plaintext` to `recipient` (raw X25519 public key) for one context. */
export async function seal(
  recipient: Uint8Array,
  context: SealContext,
  plaintext: Uint8Array,
  aad?: string,
): Promise<Uint8Array> {
  const recipientPublicKey = await importPublicKey(recipient, "recipient key");
  const { enc, ct } = await suite.seal({ recipientPublicKey, info: info(context) }, plaintext, aadOf(aad));
  const out = new Uint8Array(enc.byteLength + ct.byteLength);
  out.set(new Uint8Array(enc), 0);
  out.set(new Uint8Array(ct), enc.byteLength);
  return out;
}

/**
 * A stream sealed under one HPKE context: `enc` once, then each chunk sealed with the context's
 * running sequence number, so chunks dropped, repeated or reordered by the relay do not open.
 */
export class StreamSealer {
  private constructor(
    readonly enc: Uint8Array,
    private readonly ctx: SenderContext,
  ) {}

  static async to(recipient: Uint8Array, context: SealContext): Promise<StreamSealer> {
    const recipientPublicKey = await importPublicKey(recipient, "recipient key");
    const ctx = await suite.createSenderContext({ recipientPublicKey, info: info(context) });
    return new StreamSealer(new Uint8Array(ctx.enc), ctx);
  }

  async seal(chunk: Uint8Array, aad?: string): Promise<Uint8Array> {
    return new Uint8Array(await this.ctx.seal(chunk, aadOf(aad)));
  }
}

export class StreamOpener {
  constructor(
    private readonly ctx: RecipientContext,
    private readonly context: SealContext,
  ) {}

  async open(chunk: Uint8Array, aad?: string): Promise<Uint8Array> {
    if (chunk.length < TAG_BYTES) throw decryptionFailed(this.context);
    try {
      return new Uint8Array(await this.ctx.open(chunk, aadOf(aad)));
    } catch (cause) {
      throw decryptionFailed(this.context, cause);
    }
  }
}

/**
 * An HPKE key pair that lives only in this process's memory: made fresh, never exported, never
 * written. The enclave holds one for its lifetime; a client makes one per request for the replies.
 */
export class HpkeKeyPair {
  readonly #pair: KeyPair;
  /** Raw X25519 public key (32 bytes). */
  readonly publicKey: Uint8Array;

  private constructor(pair: KeyPair, publicKey: Uint8Array) {
    this.#pair = pair;
    this.publicKey = publicKey;
  }

  static async generate(): Promise<HpkeKeyPair> {
    const pair = await suite.kem.generateKeyPair();
    const raw = new Uint8Array(await suite.kem.serializePublicKey(pair.publicKey));
    return new HpkeKeyPair(pair, raw);
  }

  /** Open a single-shot payload sealed to this key for `context`; DECRYPTION_FAILED otherwise. */
  async open(context: SealContext, sealed: Uint8Array, aad?: string): Promise<Uint8Array> {
    if (!(sealed instanceof Uint8Array) || sealed.length < ENC_BYTES + TAG_BYTES) {
      throw decryptionFailed(context);
    }
    try {
      const pt = await suite.open(
        { recipientKey: this.#pair, enc: sealed.subarray(0, ENC_BYTES), info: info(context) },
        sealed.subarray(ENC_BYTES),
        aadOf(aad),
      );
      return new Uint8Array(pt);
    } catch (cause) {
      throw decryptionFailed(context, cause);
    }
  }

  /** The receiving end of a {@link StreamSealer} whose `enc` is given. */
  async openStream(context: SealContext, enc: Uint8Array): Promise<StreamOpener> {
    if (!(enc instanceof Uint8Array) || enc.length !== ENC_BYTES) throw decryptionFailed(context);
    try {
      const ctx = await suite.createRecipientContext({ recipientKey: this.#pair, enc, info: info(context) });
      return new StreamOpener(ctx, context);
    } catch (cause) {
      throw decryptionFailed(context, cause);
    }
  }

  /** Never serialise the private half: JSON.stringify and util.inspect see only the public key. */
  toJSON(): { publicKey: string } {
    return { publicKey: Buffer.from(this.publicKey).toString("base64") };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return `HpkeKeyPair { publicKey: ${Buffer.from(this.publicKey).toString("hex")} }`;
  }
}
