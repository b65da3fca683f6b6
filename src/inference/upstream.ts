import type { ChatMessage } from "./protocol.js";

/** Cloud credentials as the enclave holds them (pushed sealed by the parent; never logged). */
export interface CloudCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration: Date;
  region?: string;
}

export interface ChatRequest {
  system?: string;
  messages: ChatMessage[];
  maxTokens?: number;
}

/** What an upstream model streams back, in order: text deltas, then a stop, then usage. */
export type ChatEvent =
  | { type: "text"; text: string }
  | { type: "stop"; reason: string }
  | { type: "usage"; inputTokens: number; outputTokens: number };

/**
 * A model the enclave forwards conversations to (Bedrock ConverseStream, or our own model offline).
 * It sees the opened conversation, so it runs inside the enclave; its errors must be InferenceErrors
 * whose messages carry no content.
 */
export interface ChatUpstream {
  readonly name: string;
  /** True when `converse` needs credentials pushed with SET_CREDENTIALS. */
  readonly needsCredentials: boolean;
  converse(
    request: ChatRequest,
    credentials: CloudCredentials | null,
    signal: AbortSignal,
  ): AsyncIterable<ChatEvent>;
}
