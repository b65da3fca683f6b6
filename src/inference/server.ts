import type { Duplex } from "node:stream";
import { bindReportData } from "../attestation/binding.js";
import type { EvidenceProvider } from "../attestation/providers/provider.js";
import { EnclaveError } from "../errors.js";
import { silentLogger, type Logger } from "../logging/logger.js";
import { CredentialStore } from "./credential-store.js";
import { InferenceError } from "./errors.js";
import { FramedConnection, type FramedOptions } from "./framing.js";
import type { Predictor } from "./predictor.js";
import {
  b64decode,
  b64encode,
  ChatPlaintext,
  COMMANDS,
  CredentialsPlaintext,
  describeCommand,
  evidenceToWire,
  GetPublicKeyRequest,
  HealthRequest,
  parseMessage,
  PredictPlaintext,
  SealedRequest,
  type SealedCommand,
} from "./protocol.js";
import { HpkeKeyPair, seal, StreamSealer } from "./sealing.js";
import type { ChatUpstream } from "./upstream.js";

export const HPKE_SUITE = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM";

export interface InferenceServerOptions {
  /** Collects evidence binding the served key (hardware, or labelled simulated/insecure). */
  provider: EvidenceProvider;
  /** The model PREDICT answers with; PREDICT is refused when absent. */
  predictor?: Predictor;
  /** The model CHAT_STREAM forwards to; CHAT_STREAM is refused when absent. */
  chat?: ChatUpstream;
  /** A name for the health probe (e.g. "nitro", "mock", "simulation"). */
  mode: string;
  logger?: Logger;
  framing?: FramedOptions;
  now?: () => number;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

function openedJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(fromUtf8.decode(bytes));
  } catch {
    throw new InferenceError("PAYLOAD_INVALID", `${what}: the opened payload is not UTF-8 JSON`);
  }
}

/** Reduce any failure to what may cross the wire: a typed code and a value-free message. */
function wireError(err: unknown): { code: string; message: string } {
  if (err instanceof InferenceError) return err.toWire();
  if (err instanceof EnclaveError)
    return { code: "PAYLOAD_INVALID", message: `[${err.code}] ${err.message}` };
  return { code: "INTERNAL", message: "internal error (see the enclave's log for its code)" };
}

/**
 * The enclave side of confidential inference. It makes its HPKE key pair at start (in memory,
 * never written), binds the public key into fresh evidence for each client's nonce, and answers
 * the protocol's commands on any duplex byte stream a transport hands it. One connection carries
 * requests one after another; a bad request gets a typed error and the connection (and the
 * server) carry on, except after a framing error, after which the stream cannot be trusted to be
 * in step and is closed.
 */
export class InferenceServer {
  readonly credentials: CredentialStore;
  private readonly log: Logger;
  private readonly startedAt: number;
  private readonly now: () => number;
  private readonly connections = new Set<FramedConnection>();

  private constructor(
    private readonly key: HpkeKeyPair,
    private readonly o: InferenceServerOptions,
  ) {
    this.now = o.now ?? Date.now;
    this.credentials = new CredentialStore(this.now);
    this.log = (o.logger ?? silentLogger).child({ component: "inference-server" });
    this.startedAt = this.now();
  }

  static async create(options: InferenceServerOptions): Promise<InferenceServer> {
    return new InferenceServer(await HpkeKeyPair.generate(), options);
  }

  /** The served HPKE public key (raw X25519). */
  get publicKey(): Uint8Array {
    return this.key.publicKey;
  }

  /** Serve one connection until the peer closes it; never rejects. */
  async handle(socket: Duplex): Promise<void> {
    const conn = new FramedConnection(socket, this.o.framing);
    this.connections.add(conn);
    try {
      for (;;) {
        let msg: Record<string, unknown> | null;
        try {
          msg = await conn.next();
        } catch (err) {
          const wire = wireError(err);
          this.log.warn({ code: wire.code }, "connection dropped: unreadable frame");
          if (wire.code !== "FRAME_TRUNCATED" && wire.code !== "CONNECTION_CLOSED") {
            await conn.send({ ok: false, error: wire }).catch(() => undefined);
          }
          conn.close();
          return;
        }
        if (msg === null) return;
        await this.dispatch(conn, msg);
      }
    } finally {
      this.connections.delete(conn);
      conn.close();
    }
  }

  /** Close every open connection (for shutdown). */
  closeAll(): void {
    for (const c of this.connections) c.destroy();
  }

  private async dispatch(conn: FramedConnection, msg: Record<string, unknown>): Promise<void> {
    const command = msg.command;
    const t0 = performance.now();
    try {
      switch (command) {
        case "GET_PUBLIC_KEY":
          return await conn.send(await this.getPublicKey(msg));
        case "HEALTH":
          parseMessage(HealthRequest, msg, "HEALTH request");
          return await conn.send({ ok: true, ...this.health() });
        case "PREDICT":
          return await conn.send(await this.predict(msg));
        case "CHAT_STREAM":
          return await this.chatStream(conn, msg);
        case "SET_CREDENTIALS":
          return await conn.send(await this.setCredentials(msg));
        default:
          throw new InferenceError(
            "UNKNOWN_COMMAND",
            `unknown command ${describeCommand(command)}; known: ${COMMANDS.join(", ")}`,
          );
      }
    } catch (err) {
      const wire = wireError(err);
      this.log.info(
        { command: typeof command === "string" ? command.slice(0, 32) : null, code: wire.code },
        "request refused",
      );
      if (wire.code === "INTERNAL") this.log.error({ err }, "internal error");
      await conn
        .send(command === "CHAT_STREAM" ? { event: "error", ...wire } : { ok: false, error: wire })
        .catch(() => undefined);
    } finally {
      this.log.debug(
        { command: typeof command === "string" ? command.slice(0, 32) : null, ms: performance.now() - t0 },
        "request done",
      );
    }
  }

  /** Health probe: status, mode, evidence kind, model identity, credentials presence. */
  health(): Record<string, unknown> {
    return {
      status: "ok",
      mode: this.o.mode,
      evidence_kind: this.o.provider.kind,
      evidence_label: this.o.provider.label,
      model: this.o.predictor
        ? { arch: this.o.predictor.model.spec.arch, sha256: this.o.predictor.modelSha256 }
        : null,
      chat_upstream: this.o.chat?.name ?? null,
      ...this.credentials.status(),
      uptime_seconds: Math.round((this.now() - this.startedAt) / 1000),
    };
  }

  private async getPublicKey(msg: Record<string, unknown>): Promise<object> {
    const req = parseMessage(GetPublicKeyRequest, msg, "GET_PUBLIC_KEY request");
    const evidence = await this.o.provider.collect(bindReportData(b64decode(req.nonce), this.key.publicKey));
    return {
      ok: true,
      suite: HPKE_SUITE,
      public_key: b64encode(this.key.publicKey),
      evidence: evidenceToWire(evidence),
    };
  }

  private async open(msg: Record<string, unknown>, command: SealedCommand): Promise<unknown> {
    const req = parseMessage(SealedRequest, msg, `${command} request`);
    const context = command === "SET_CREDENTIALS" ? "credentials" : "request";
    return openedJson(await this.key.open(context, b64decode(req.sealed), command), command);
  }

  private async predict(msg: Record<string, unknown>): Promise<object> {
    if (!this.o.predictor)
      throw new InferenceError("UNKNOWN_COMMAND", "PREDICT: this enclave serves no model");
    const req = parseMessage(
      PredictPlaintext,
      await this.open(msg, "PREDICT"),
      "PREDICT payload",
      "PAYLOAD_INVALID",
    );
    let answer: object;
    try {
      answer = { predictions: await this.o.predictor.predictCsv(utf8.encode(req.rows_csv)) };
      this.log.info(
        { command: "PREDICT", rows: (answer as { predictions: unknown[] }).predictions.length },
        "predicted",
      );
    } catch (err) {
      // Which row or column failed is about the client's data: it goes back sealed, not in the clear.
      if (!(err instanceof EnclaveError)) throw err;
      answer = { error: { code: err.code, message: err.message } };
      this.log.info({ command: "PREDICT", code: err.code }, "rows refused (detail sealed to the client)");
    }
    const sealed = await seal(
      b64decode(req.reply_key),
      "response",
      utf8.encode(JSON.stringify(answer)),
      "PREDICT",
    );
    return { ok: true, sealed: b64encode(sealed) };
  }

  private async setCredentials(msg: Record<string, unknown>): Promise<object> {
    const c = parseMessage(
      CredentialsPlaintext,
      await this.open(msg, "SET_CREDENTIALS"),
      "SET_CREDENTIALS payload",
      "PAYLOAD_INVALID",
    );
    this.credentials.set({
      accessKeyId: c.access_key_id,
      secretAccessKey: c.secret_access_key,
      sessionToken: c.session_token,
      expiration: new Date(c.expiration),
      region: c.region,
    });
    this.log.info({ command: "SET_CREDENTIALS" }, "credentials replaced");
    return { ok: true, expires_at: new Date(c.expiration).toISOString() };
  }

  /**
   * CHAT_STREAM: `chunk` events (the first carries the stream's `enc`), each chunk sealed under one
   * HPKE context so the client notices a dropped or reordered one; then one `done` event with the
   * storage copies (sealed for their own contexts), token counts, and a sealed trailer giving the
   * chunk count. Any failure is one `error` event.
   */
  private async chatStream(conn: FramedConnection, msg: Record<string, unknown>): Promise<void> {
    const upstream = this.o.chat;
    if (!upstream)
      throw new InferenceError("UNKNOWN_COMMAND", "CHAT_STREAM: this enclave has no chat upstream");
    const req = parseMessage(
      ChatPlaintext,
      await this.open(msg, "CHAT_STREAM"),
      "CHAT_STREAM payload",
      "PAYLOAD_INVALID",
    );
    const credentials = upstream.needsCredentials ? this.credentials.current() : null;
    const replyKey = b64decode(req.reply_key);
    const storageKey = req.storage_key ? b64decode(req.storage_key) : replyKey;
    const sealer = await StreamSealer.to(replyKey, "response");
    const abort = new AbortController();
    const onClose = () => abort.abort();
    conn.socket.once("close", onClose);
    let chunks = 0;
    let answer = "";
    let stopReason = "unknown";
    let usage = { input_tokens: 0, output_tokens: 0 };
    const t0 = performance.now();
    try {
      for await (const ev of upstream.converse(
        { system: req.system, messages: req.messages, maxTokens: req.max_tokens },
        credentials,
        abort.signal,
      )) {
        if (ev.type === "text") {
          if (ev.text.length === 0) continue;
          answer += ev.text;
          const sealed = await sealer.seal(utf8.encode(ev.text), `chunk:${chunks}`);
          await conn.send({
            event: "chunk",
            ...(chunks === 0 ? { enc: b64encode(sealer.enc) } : {}),
            sealed: b64encode(sealed),
          });
          if (chunks === 0) this.log.debug({ ms: performance.now() - t0 }, "first chunk");
          chunks++;
        } else if (ev.type === "stop") {
          stopReason = ev.reason;
        } else {
          usage = { input_tokens: ev.inputTokens, output_tokens: ev.outputTokens };
        }
      }
    } finally {
      conn.socket.off("close", onClose);
      abort.abort();
    }
    const trailer = await sealer.seal(
      utf8.encode(JSON.stringify({ chunks, stop_reason: stopReason })),
      "done",
    );
    const storage = {
      user: b64encode(
        await seal(storageKey, "userStorage", utf8.encode(JSON.stringify(req.messages)), "CHAT_STREAM"),
      ),
      assistant: b64encode(await seal(storageKey, "assistantStorage", utf8.encode(answer), "CHAT_STREAM")),
    };
    await conn.send({
      event: "done",
      ...(chunks === 0 ? { enc: b64encode(sealer.enc) } : {}),
      sealed: b64encode(trailer),
      storage,
      usage,
    });
    this.log.info({ command: "CHAT_STREAM", chunks, ...usage }, "chat streamed");
  }
}
