import { createHash } from "node:crypto";
import { parseSafetensors, serializeSafetensors } from "../model/safetensors.js";
import type { TensorMap } from "../tensor/tensor.js";
import { ProtocolError } from "./errors.js";

/** Chunks of 1 MiB: well below the host API's message limit, whatever the model's size. */
export const DEFAULT_CHUNK_BYTES = 1 << 20;

/** One piece of a tensor map's safetensors bytes (agent.v1.ModelChunk). */
export interface ModelChunk {
  transferId: string;
  /** Which tensor map of the transfer: "weights" or "control". */
  part: string;
  offset: number;
  data: Uint8Array;
  last: boolean;
  /** With the first chunk: the part's size in bytes. */
  totalBytes?: number;
  /** With the last chunk: SHA-256 (hex) of the part's complete bytes. */
  sha256?: string;
}

/**
 * A tensor map as a sequence of chunks: its safetensors bytes (no metadata) cut at `chunkBytes`,
 * the size on the first chunk and the SHA-256 of the whole on the last.
 */
export function* chunkTensorMap(
  transferId: string,
  part: string,
  tensors: TensorMap,
  chunkBytes = DEFAULT_CHUNK_BYTES,
): Generator<ModelChunk> {
  if (!(Number.isSafeInteger(chunkBytes) && chunkBytes > 0))
    throw new ProtocolError("TRANSFER_INVALID", "chunkBytes must be a positive integer");
  const bytes = serializeSafetensors(tensors);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  for (let offset = 0; offset === 0 || offset < bytes.length; offset += chunkBytes) {
    const end = Math.min(bytes.length, offset + chunkBytes);
    const last = end === bytes.length;
    yield {
      transferId,
      part,
      offset,
      data: bytes.subarray(offset, end),
      last,
      ...(offset === 0 ? { totalBytes: bytes.length } : {}),
      ...(last ? { sha256 } : {}),
    };
  }
}

/**
 * Reassembles one part of a transfer from a peer. It takes chunks strictly in order, refuses a
 * declared size above `maxBytes` before allocating anything, and yields the tensor map only when
 * the last chunk's SHA-256 matches the bytes received. Memory: one buffer of the part's size.
 */
export class ChunkAssembler {
  private buffer: Uint8Array | null = null;
  private received = 0;
  private done = false;
  private readonly hash = createHash("sha256");

  constructor(
    private readonly transferId: string,
    private readonly part: string,
    private readonly maxBytes: number,
  ) {}

  /** Take the next chunk; returns the tensor map after the last one, null before. */
  add(chunk: ModelChunk): TensorMap | null {
    const refuse = (why: string) => new ProtocolError("TRANSFER_INVALID", `model transfer refused: ${why}`);
    if (this.done) throw refuse("a chunk arrived after the last one");
    if (chunk.transferId !== this.transferId || chunk.part !== this.part)
      throw refuse("a chunk of another transfer or part");
    if (chunk.offset !== this.received)
      throw refuse(`chunk at offset ${chunk.offset}, expected ${this.received}`);
    if (this.buffer === null) {
      const total = chunk.totalBytes;
      if (!(typeof total === "number" && Number.isSafeInteger(total) && total > 0))
        throw refuse("the first chunk must declare totalBytes");
      if (total > this.maxBytes) throw refuse(`declared size ${total} exceeds the limit ${this.maxBytes}`);
      this.buffer = new Uint8Array(total);
    }
    if (this.received + chunk.data.length > this.buffer.length)
      throw refuse("more bytes than the declared size");
    this.buffer.set(chunk.data, this.received);
    this.hash.update(chunk.data);
    this.received += chunk.data.length;
    if (!chunk.last) return null;
    this.done = true;
    if (this.received !== this.buffer.length) throw refuse("the transfer ended before its declared size");
    if (chunk.sha256 !== this.hash.digest("hex"))
      throw new ProtocolError(
        "TRANSFER_HASH_MISMATCH",
        "model transfer refused: SHA-256 of the received bytes does not match",
      );
    return parseSafetensors(this.buffer).tensors;
  }
}

/**
 * Receives the named parts of one transfer, in the announced order, each through its own
 * ChunkAssembler; yields them all once the last part's hash checks.
 */
export class TransferReceiver {
  private readonly received = new Map<string, TensorMap>();
  private current: ChunkAssembler | null = null;

  constructor(
    readonly transferId: string,
    private readonly parts: readonly string[],
    private readonly maxBytes: number,
  ) {
    if (parts.length === 0) throw new ProtocolError("TRANSFER_INVALID", "a transfer needs at least one part");
  }

  /** Take the next chunk; returns every part after the last chunk of the last part, null before. */
  add(chunk: ModelChunk): Map<string, TensorMap> | null {
    const part = this.parts[this.received.size];
    if (part === undefined)
      throw new ProtocolError("TRANSFER_INVALID", "model transfer refused: a chunk after the last part");
    this.current ??= new ChunkAssembler(this.transferId, part, this.maxBytes);
    const tensors = this.current.add(chunk);
    if (tensors === null) return null;
    this.received.set(part, tensors);
    this.current = null;
    return this.received.size === this.parts.length ? this.received : null;
  }
}

/** Send each part of a transfer as chunks, in order, waiting on `send` (backpressure). */
export async function sendTransfer(
  transferId: string,
  parts: ReadonlyMap<string, TensorMap>,
  send: (chunk: ModelChunk) => Promise<void>,
  chunkBytes = DEFAULT_CHUNK_BYTES,
): Promise<void> {
  for (const [part, tensors] of parts)
    for (const chunk of chunkTensorMap(transferId, part, tensors, chunkBytes)) await send(chunk);
}
