import type { ConverseStreamOutput, Message } from "@aws-sdk/client-bedrock-runtime";
import { InferenceError } from "../errors.js";
import type { ChatEvent, ChatRequest, ChatUpstream, CloudCredentials } from "../upstream.js";

export interface BedrockUpstreamOptions {
  /** Bedrock model id, e.g. "anthropic.claude-3-5-sonnet-20240620-v1:0". */
  modelId: string;
  /** Used when the pushed credentials name no region. */
  region?: string;
  /** Override the service endpoint (tests: a loopback server speaking the event-stream wire). */
  endpoint?: string;
  /** Per-call deadline. Default 120 s. */
  timeoutMs?: number;
}

/** The exception members of a ConverseStream event union; their names are safe to report, their text is not. */
const EXCEPTIONS = [
  "internalServerException",
  "modelStreamErrorException",
  "validationException",
  "throttlingException",
  "serviceUnavailableException",
] as const;

/** An AWS error reduced to its name and HTTP status: AWS messages can quote the request. */
function upstreamFailed(err: unknown): InferenceError {
  if (err instanceof InferenceError) return err;
  const e = err as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
  const name = typeof e?.name === "string" && /^[A-Za-z0-9_.]{1,64}$/.test(e.name) ? e.name : "error";
  const status =
    typeof e?.$metadata?.httpStatusCode === "number" ? `, HTTP ${e.$metadata.httpStatusCode}` : "";
  if (name === "AbortError")
    return new InferenceError("TIMEOUT", "Bedrock ConverseStream did not finish in time");
  return new InferenceError("UPSTREAM_FAILED", `Bedrock ConverseStream failed (${name}${status})`);
}

/**
 * CHAT_STREAM upstream: Amazon Bedrock ConverseStream through the AWS SDK. The response's AWS
 * event-stream frames are decoded and CRC-checked by the SDK (@smithy/eventstream-codec); a frame
 * that fails its CRC ends the stream with UPSTREAM_FAILED. Credentials are only ever the ones the
 * parent pushed with SET_CREDENTIALS: the SDK's default chain (environment, files, IMDS) is never
 * consulted, because a client is built per call with those credentials given explicitly.
 */
export class BedrockUpstream implements ChatUpstream {
  readonly name = "bedrock";
  readonly needsCredentials = true;

  constructor(private readonly o: BedrockUpstreamOptions) {
    if (typeof o.modelId !== "string" || o.modelId.length === 0 || o.modelId.length > 256) {
      throw new InferenceError("PAYLOAD_INVALID", "bedrock modelId must be 1..256 characters");
    }
  }

  async *converse(
    request: ChatRequest,
    credentials: CloudCredentials | null,
    signal: AbortSignal,
  ): AsyncIterable<ChatEvent> {
    if (!credentials)
      throw new InferenceError("NO_CREDENTIALS", "Bedrock needs credentials (SET_CREDENTIALS)");
    const region = credentials.region ?? this.o.region;
    if (!region)
      throw new InferenceError(
        "NO_CREDENTIALS",
        "Bedrock needs a region (in the credentials or the server's options)",
      );
    // Loaded on first use: the SDK is large, and only an enclave with a Bedrock upstream needs it.
    const { BedrockRuntimeClient, ConverseStreamCommand } = await import("@aws-sdk/client-bedrock-runtime");
    const client = new BedrockRuntimeClient({
      region,
      endpoint: this.o.endpoint,
      credentials: {
        accessKeyId: credentials.accessKeyId,
        secretAccessKey: credentials.secretAccessKey,
        sessionToken: credentials.sessionToken,
        expiration: credentials.expiration,
      },
      maxAttempts: 1,
    });
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(this.o.timeoutMs ?? 120_000)]);
    try {
      const messages: Message[] = request.messages.map((m) => ({
        role: m.role,
        content: [{ text: m.content }],
      }));
      let stream: AsyncIterable<ConverseStreamOutput> | undefined;
      try {
        const res = await client.send(
          new ConverseStreamCommand({
            modelId: this.o.modelId,
            messages,
            ...(request.system ? { system: [{ text: request.system }] } : {}),
            ...(request.maxTokens ? { inferenceConfig: { maxTokens: request.maxTokens } } : {}),
          }),
          { abortSignal: deadline },
        );
        stream = res.stream;
      } catch (err) {
        throw upstreamFailed(err);
      }
      if (!stream) throw new InferenceError("UPSTREAM_FAILED", "Bedrock ConverseStream returned no stream");
      try {
        for await (const ev of stream) yield* toChatEvents(ev);
      } catch (err) {
        throw upstreamFailed(err);
      }
    } finally {
      client.destroy();
    }
  }
}

function* toChatEvents(ev: ConverseStreamOutput): Iterable<ChatEvent> {
  for (const name of EXCEPTIONS) {
    if ((ev as unknown as Record<string, unknown>)[name] !== undefined) {
      throw new InferenceError("UPSTREAM_FAILED", `Bedrock ConverseStream sent ${name}`);
    }
  }
  const text = ev.contentBlockDelta?.delta?.text;
  if (typeof text === "string") yield { type: "text", text };
  if (ev.messageStop) yield { type: "stop", reason: String(ev.messageStop.stopReason ?? "unknown") };
  const usage = ev.metadata?.usage;
  if (usage)
    yield { type: "usage", inputTokens: usage.inputTokens ?? 0, outputTokens: usage.outputTokens ?? 0 };
}
