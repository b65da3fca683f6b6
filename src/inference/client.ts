import { appraiseEvidence, type Appraisal } from "../attestation/appraise.js";
import { NonceIssuer } from "../attestation/nonce.js";
import type { TrustPolicy } from "../schemas/trust-policy.js";
import { InferenceError } from "./errors.js";
import { FramedConnection, type FramedOptions } from "./framing.js";
import type { Prediction } from "./predictor.js";
import {
  b64decode,
  b64encode,
  evidenceFromWire,
  parseMessage,
  PredictAnswer,
  PublicKeyResponse,
  type ChatMessage,
  type CredentialsPlaintext,
  type SealedCommand,
} from "./protocol.js";
import { HpkeKeyPair, seal, type StreamOpener } from "./sealing.js";
import { parseEndpoint, type Endpoint, type Transport } from "./transport.js";
import { transportFor } from "./vsock-transport.js";

export interface ConnectOptions {
  /** The trust policy the enclave's evidence must pass (the strict default policy when omitted). */
  policy?: TrustPolicy;
  /** Per request (and for connecting). Default 30 s. */
  timeoutMs?: number;
  /** Override the transport (tests, the in-process mock). */
  transport?: Transport;
  framing?: FramedOptions;
}

export interface ChatOptions {
  system?: string;
  maxTokens?: number;
  /** Seal the storage copies to this key instead of this request's reply key. */
  storageKey?: Uint8Array;
}

/** What `chatStream` leaves once the stream ended: the sealed storage copies and the token counts. */
export interface ChatSummary {
  text: string;
  chunks: number;
  stopReason: string;
  usage: { input_tokens: number; output_tokens: number };
  storage: { user: Uint8Array; assistant: Uint8Array };
  /** The reply key pair of this request: it opens the storage copies when no storageKey was given. */
  replyKey: HpkeKeyPair;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

function failedChecks(a: Appraisal): string {
  return a.result.checks
    .filter((c) => c.status === "fail")
    .map((c) => `${c.name}: ${c.detail}`)
    .join("; ");
}

/**
 * The client of an enclave. `connect` asks for the key with a fresh nonce, verifies the evidence
 * against the trust policy and checks that it binds exactly the served key to that nonce, all
 * BEFORE anything is sealed; only then do `predict` and `chatStream` seal to that key. Every
 * request has a timeout; refusals and malformed answers are InferenceErrors with stable codes.
 */
export class ConfidentialClient {
  private busy: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly conn: FramedConnection,
    /** The verified enclave key. */
    readonly enclaveKey: Uint8Array,
    /** The appraisal that admitted the enclave (kind, checks, claims). */
    readonly appraisal: Appraisal,
    private readonly timeoutMs: number,
  ) {}

  static async connect(
    endpoint: string | Endpoint,
    options: ConnectOptions = {},
  ): Promise<ConfidentialClient> {
    const ep = typeof endpoint === "string" ? parseEndpoint(endpoint) : endpoint;
    const timeoutMs = options.timeoutMs ?? 30_000;
    const transport = options.transport ?? transportFor(ep);
    const socket = await transport.dial(ep, { timeoutMs });
    const conn = new FramedConnection(socket, options.framing);
    try {
      const nonces = new NonceIssuer({ ttlMs: Math.max(timeoutMs, 1000) });
      const { nonce } = nonces.issue();
      const reply = await withTimeout(
        conn.send({ command: "GET_PUBLIC_KEY", nonce: b64encode(nonce) }).then(() => conn.next()),
        timeoutMs,
        "GET_PUBLIC_KEY",
        conn,
      );
      const res = parseMessage(
        PublicKeyResponse,
        okOrThrow(reply, "GET_PUBLIC_KEY"),
        "GET_PUBLIC_KEY response",
      );
      const publicKey = b64decode(res.public_key);
      const appraisal = await appraiseEvidence(evidenceFromWire(res.evidence), {
        policy: options.policy,
        binding: { nonce, publicKey },
        nonceIssuer: nonces,
      });
      if (!appraisal.trusted) {
        const binding = appraisal.result.checks.find((c) => c.name === "policy.binding");
        if (binding?.status === "fail") {
          throw new InferenceError(
            "KEY_MISMATCH",
            `refused before sealing anything: the served key is not the key bound into fresh evidence for this connection's nonce (a man in the middle, or replayed evidence): ${binding.detail}`,
          );
        }
        throw new InferenceError(
          "EVIDENCE_UNTRUSTED",
          `refused before sealing anything: the enclave's ${appraisal.kind} evidence fails the trust policy: ${failedChecks(appraisal)}`,
        );
      }
      return new ConfidentialClient(conn, publicKey, appraisal, timeoutMs);
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  /** Seal CSV rows (the model's dataset schema) and return the enclave's predictions, in row order. */
  predict(rowsCsv: string): Promise<Prediction[]> {
    return this.exclusive(async () => {
      const replyKey = await HpkeKeyPair.generate();
      const plaintext = JSON.stringify({ reply_key: b64encode(replyKey.publicKey), rows_csv: rowsCsv });
      const res = await this.request("PREDICT", plaintext);
      const sealed = typeof res.sealed === "string" ? b64decode(res.sealed) : new Uint8Array();
      const opened = await replyKey.open("response", sealed, "PREDICT");
      const answer = parseMessage(PredictAnswer, parseJson(opened, "PREDICT answer"), "PREDICT answer");
      if ("error" in answer)
        throw new InferenceError("PAYLOAD_INVALID", `[${answer.error.code}] ${answer.error.message}`);
      return answer.predictions;
    });
  }

  /** Push credentials sealed to the enclave key (the parent's refresher does this). */
  setCredentials(credentials: CredentialsPlaintext): Promise<{ expiresAt: Date }> {
    return this.exclusive(async () => {
      const res = await this.request("SET_CREDENTIALS", JSON.stringify(credentials));
      return { expiresAt: new Date(String(res.expires_at)) };
    });
  }

  /** The health probe of the enclave (not sealed: it carries no client data). */
  health(): Promise<Record<string, unknown>> {
    return this.exclusive(async () => {
      await this.conn.send({ command: "HEALTH" });
      return okOrThrow(await this.receive("HEALTH"), "HEALTH");
    });
  }

  /**
   * Seal a conversation and yield the opened answer chunk by chunk. The iterator's return value
   * (`for await` drops it; use `.next()` or `chat()`) is the summary with the storage copies.
   */
  chatStream(messages: ChatMessage[], options: ChatOptions = {}): AsyncGenerator<string, ChatSummary> {
    let release!: () => void;
    const prior = this.busy;
    this.busy = new Promise<void>((r) => (release = r));
    return this.chatAfter(prior, release, messages, options);
  }

  /** Holds the connection from the first `next()` until the stream ends or the caller returns. */
  private async *chatAfter(
    prior: Promise<unknown>,
    release: () => void,
    messages: ChatMessage[],
    options: ChatOptions,
  ): AsyncGenerator<string, ChatSummary> {
    try {
      await prior;
      return yield* this.chatEvents(messages, options);
    } finally {
      release();
    }
  }

  /** Run a whole chat and return the summary (text included). */
  async chat(messages: ChatMessage[], options: ChatOptions = {}): Promise<ChatSummary> {
    const it = this.chatStream(messages, options);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  close(): void {
    this.conn.close();
  }

  private async *chatEvents(
    messages: ChatMessage[],
    options: ChatOptions,
  ): AsyncGenerator<string, ChatSummary> {
    const replyKey = await HpkeKeyPair.generate();
    const plaintext = JSON.stringify({
      reply_key: b64encode(replyKey.publicKey),
      ...(options.storageKey ? { storage_key: b64encode(options.storageKey) } : {}),
      ...(options.system !== undefined ? { system: options.system } : {}),
      ...(options.maxTokens !== undefined ? { max_tokens: options.maxTokens } : {}),
      messages,
    });
    await this.send("CHAT_STREAM", plaintext);
    let opener: StreamOpener | null = null;
    let chunks = 0;
    let text = "";
    for (;;) {
      const ev = await this.receive("CHAT_STREAM");
      if (ev.event === "error") throw InferenceError.fromWire(ev);
      if (!opener) {
        if (typeof ev.enc !== "string") throw malformed("CHAT_STREAM", "first event carries no enc");
        opener = await replyKey.openStream("response", b64decode(ev.enc));
      }
      if (typeof ev.sealed !== "string") throw malformed("CHAT_STREAM", "event carries no sealed field");
      if (ev.event === "chunk") {
        const piece = fromUtf8.decode(await opener.open(b64decode(ev.sealed), `chunk:${chunks}`));
        chunks++;
        text += piece;
        yield piece;
        continue;
      }
      if (ev.event !== "done") throw malformed("CHAT_STREAM", "unknown event");
      const trailer = parseJson(await opener.open(b64decode(ev.sealed), "done"), "CHAT_STREAM trailer") as {
        chunks?: unknown;
        stop_reason?: unknown;
      };
      if (trailer.chunks !== chunks) {
        throw new InferenceError(
          "DECRYPTION_FAILED",
          `CHAT_STREAM: the enclave sealed ${String(trailer.chunks)} chunks, ${chunks} arrived`,
        );
      }
      const storage = ev.storage as { user?: unknown; assistant?: unknown } | undefined;
      const usage = ev.usage as { input_tokens?: unknown; output_tokens?: unknown } | undefined;
      if (typeof storage?.user !== "string" || typeof storage.assistant !== "string") {
        throw malformed("CHAT_STREAM", "done event carries no storage copies");
      }
      return {
        text,
        chunks,
        stopReason: String(trailer.stop_reason),
        usage: {
          input_tokens: Number(usage?.input_tokens ?? 0),
          output_tokens: Number(usage?.output_tokens ?? 0),
        },
        storage: { user: b64decode(storage.user), assistant: b64decode(storage.assistant) },
        replyKey,
      };
    }
  }

  private async send(command: SealedCommand, plaintext: string): Promise<void> {
    const context = command === "SET_CREDENTIALS" ? "credentials" : "request";
    const sealed = await seal(this.enclaveKey, context, utf8.encode(plaintext), command);
    await this.conn.send({ command, sealed: b64encode(sealed) });
  }

  private async request(command: SealedCommand, plaintext: string): Promise<Record<string, unknown>> {
    await this.send(command, plaintext);
    return okOrThrow(await this.receive(command), command);
  }

  private async receive(what: string): Promise<Record<string, unknown>> {
    const msg = await withTimeout(this.conn.next(), this.timeoutMs, what, this.conn);
    if (msg === null)
      throw new InferenceError("CONNECTION_CLOSED", `${what}: the enclave closed the connection`);
    return msg;
  }

  /** One request at a time per connection: answers come back in order, unlabelled. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn, fn);
    this.busy = run.catch(() => undefined);
    return run;
  }
}

function okOrThrow(msg: Record<string, unknown> | null, what: string): Record<string, unknown> {
  if (msg === null)
    throw new InferenceError("CONNECTION_CLOSED", `${what}: the enclave closed the connection`);
  if (msg.ok === true) return msg;
  if (msg.ok === false && typeof msg.error === "object" && msg.error !== null) {
    throw InferenceError.fromWire(msg.error as Record<string, unknown>);
  }
  throw malformed(what, "answer is neither ok nor an error");
}

function malformed(what: string, rule: string): InferenceError {
  return new InferenceError("MESSAGE_INVALID", `${what}: malformed answer: ${rule}`);
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(fromUtf8.decode(bytes));
  } catch {
    throw malformed(what, "opened payload is not JSON");
  }
}

/** Reject with TIMEOUT (and drop the connection, whose answers would now be out of step). */
function withTimeout<T>(p: Promise<T>, ms: number, what: string, conn: FramedConnection): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      conn.destroy();
      reject(new InferenceError("TIMEOUT", `${what}: no answer within ${ms} ms`));
    }, ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
