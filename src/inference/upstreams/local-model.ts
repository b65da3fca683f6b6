import { EnclaveError } from "../../errors.js";
import { InferenceError } from "../errors.js";
import type { Predictor } from "../predictor.js";
import type { ChatEvent, ChatRequest, ChatUpstream } from "../upstream.js";

/**
 * CHAT_STREAM upstream that runs our own trained model, offline: the last user message holds CSV
 * rows in the model's schema, and the answer streams one line per row ("row 1: benign (p = 0.97)").
 * No credentials, no network: story C with nothing but the enclave.
 */
export class LocalModelUpstream implements ChatUpstream {
  readonly name = "local-model";
  readonly needsCredentials = false;

  constructor(private readonly predictor: Predictor) {}

  async *converse(request: ChatRequest): AsyncIterable<ChatEvent> {
    const question = request.messages[request.messages.length - 1].content;
    let predictions;
    try {
      predictions = await this.predictor.predictCsv(new TextEncoder().encode(question), "chat rows");
    } catch (err) {
      // The error event travels in the clear: name the code only, not the row or column that failed.
      if (err instanceof EnclaveError) {
        throw new InferenceError(
          "UPSTREAM_FAILED",
          `local model: the last message is not rows in the model's schema (${err.code})`,
        );
      }
      throw err;
    }
    let words = 0;
    for (const [i, p] of predictions.entries()) {
      const best = Math.max(...p.probabilities);
      const line = `row ${i + 1}: ${p.label} (p = ${best.toFixed(4)})\n`;
      words += line.trim().split(/\s+/).length;
      yield { type: "text", text: line };
    }
    yield { type: "stop", reason: "end_turn" };
    yield {
      type: "usage",
      inputTokens: question.split(/[\s,]+/).filter(Boolean).length,
      outputTokens: words,
    };
  }
}
