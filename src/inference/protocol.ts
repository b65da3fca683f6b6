import { z } from "zod";
import { issuesOf } from "../schemas/contract.js";
import type { Evidence } from "../attestation/evidence.js";
import { InferenceError } from "./errors.js";

/**
 * The messages of the enclave protocol (one JSON object per frame, see framing.ts). Binary fields
 * are base64. Everything the client wants kept from the host travels in `sealed` fields; what is
 * in the clear (commands, sizes, token counts, error codes) is what a relay needs to do its job.
 */
export const COMMANDS = ["GET_PUBLIC_KEY", "HEALTH", "PREDICT", "CHAT_STREAM", "SET_CREDENTIALS"] as const;
export type Command = (typeof COMMANDS)[number];

/** Sealed commands bind their name as HPKE associated data: a PREDICT body cannot be replayed as a chat. */
export type SealedCommand = "PREDICT" | "CHAT_STREAM" | "SET_CREDENTIALS";

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const b64 = (maxBytes: number) =>
  z
    .string()
    .max(Math.ceil(maxBytes / 3) * 4, `must encode at most ${maxBytes} bytes`)
    .regex(BASE64, "must be base64");
const key32 = b64(32).refine((s) => Buffer.from(s, "base64").length === 32, "must encode 32 bytes");

export const MAX_SEALED_BYTES = 64 * 1024 * 1024;

export const GetPublicKeyRequest = z.object({ command: z.literal("GET_PUBLIC_KEY"), nonce: key32 }).strict();
export const HealthRequest = z.object({ command: z.literal("HEALTH") }).strict();
export const SealedRequest = z
  .object({
    command: z.enum(["PREDICT", "CHAT_STREAM", "SET_CREDENTIALS"]),
    sealed: b64(MAX_SEALED_BYTES),
  })
  .strict();

/** PREDICT, opened: CSV rows in the model's dataset schema, and the key to seal the answer to. */
export const PredictPlaintext = z
  .object({ reply_key: key32, rows_csv: z.string().min(1, "must not be empty") })
  .strict();

export const ChatMessage = z
  .object({
    role: z.enum(["user", "assistant"]),
    content: z.string().min(1, "must not be empty").max(1_000_000, "must be at most 1000000 characters"),
  })
  .strict();
export type ChatMessage = z.output<typeof ChatMessage>;

/** CHAT_STREAM, opened. Storage copies are sealed to `storage_key` (default: the reply key). */
export const ChatPlaintext = z
  .object({
    reply_key: key32,
    storage_key: key32.optional(),
    system: z.string().max(100_000, "must be at most 100000 characters").optional(),
    messages: z
      .array(ChatMessage)
      .min(1, "must hold at least one message")
      .max(1000, "must hold at most 1000 messages"),
    max_tokens: z
      .number()
      .int("must be an integer")
      .min(1, "must be >= 1")
      .max(100_000, "must be <= 100000")
      .optional(),
  })
  .strict()
  .refine((c) => c.messages[c.messages.length - 1].role === "user", {
    path: ["messages"],
    message: "the last message must be the user's",
  });
export type ChatPlaintext = z.output<typeof ChatPlaintext>;

/** SET_CREDENTIALS, opened: short-lived cloud credentials and when they stop working. */
export const CredentialsPlaintext = z
  .object({
    access_key_id: z.string().min(1, "must not be empty").max(256, "must be at most 256 characters"),
    secret_access_key: z.string().min(1, "must not be empty").max(1024, "must be at most 1024 characters"),
    session_token: z.string().max(8192, "must be at most 8192 characters").optional(),
    expiration: z.iso.datetime({ offset: true, message: "must be an ISO 8601 date-time" }),
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be an AWS region name such as us-east-1")
      .optional(),
  })
  .strict();
export type CredentialsPlaintext = z.output<typeof CredentialsPlaintext>;

/** What a sealed PREDICT answer opens to: predictions, or an error meant for the client only. */
export const PredictAnswer = z.union([
  z
    .object({
      predictions: z.array(z.object({ label: z.string(), probabilities: z.array(z.number()) }).strict()),
    })
    .strict(),
  z.object({ error: z.object({ code: z.string(), message: z.string() }).strict() }).strict(),
]);

/** Validate a message or an opened plaintext; MESSAGE_INVALID (or the given code) names the fields. */
export function parseMessage<S extends z.ZodType>(
  schema: S,
  input: unknown,
  what: string,
  code: "MESSAGE_INVALID" | "PAYLOAD_INVALID" = "MESSAGE_INVALID",
): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const issues = issuesOf(result.error).map((i) => `${i.path || "(root)"}: ${i.rule}`);
    throw new InferenceError(code, `invalid ${what}: ${issues.slice(0, 10).join("; ")}`);
  }
  return result.data;
}

/** A command name as the client wrote it, made safe to echo in an error: printable and short. */
export function describeCommand(value: unknown): string {
  if (typeof value !== "string") return `(${value === undefined ? "missing" : typeof value})`;
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(value)) return "(not a command name)";
  return `"${value}"`;
}

export const b64encode = (b: Uint8Array) =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
export const b64decode = (s: string) => new Uint8Array(Buffer.from(s, "base64"));

const EVIDENCE_KINDS = ["snp", "tdx", "sgx", "nitro", "nvidia", "simulated", "insecure"] as const;
const CERT_ROLES = ["VCEK", "VLEK", "ASK", "ARK", "CRL", "GPU_CHAIN", "OTHER"] as const;

/** Evidence as GET_PUBLIC_KEY carries it. The client re-derives kind and label from the bytes. */
export const EvidenceWire = z
  .object({
    kind: z.enum(EVIDENCE_KINDS),
    label: z.enum(["HARDWARE", "SIMULATED", "INSECURE"]),
    bytes: b64(1024 * 1024),
    collected_at: z.iso.datetime({ offset: true }),
    certificates: z
      .array(
        z
          .object({ role: z.enum(CERT_ROLES), der: b64(64 * 1024), guid: z.string().max(64).optional() })
          .strict(),
      )
      .max(16)
      .optional(),
  })
  .strict();

export const PublicKeyResponse = z
  .object({ ok: z.literal(true), suite: z.string(), public_key: key32, evidence: EvidenceWire })
  .strict();

export function evidenceToWire(e: Evidence): z.input<typeof EvidenceWire> {
  return {
    kind: e.kind,
    label: e.label,
    bytes: b64encode(e.bytes),
    collected_at: e.collectedAt.toISOString(),
    ...(e.certificates
      ? {
          certificates: e.certificates.map((c) => ({
            role: c.role,
            der: b64encode(c.der),
            ...(c.guid ? { guid: c.guid } : {}),
          })),
        }
      : {}),
  };
}

export function evidenceFromWire(w: z.output<typeof EvidenceWire>): Evidence {
  return {
    kind: w.kind,
    label: w.label,
    bytes: b64decode(w.bytes),
    collectedAt: new Date(w.collected_at),
    ...(w.certificates
      ? { certificates: w.certificates.map((c) => ({ role: c.role, der: b64decode(c.der), guid: c.guid })) }
      : {}),
  };
}
