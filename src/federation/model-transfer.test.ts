import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { serializeSafetensors, weightsHash } from "../model/safetensors.js";
import { SeededRandom } from "../random.js";
import type { TensorMap } from "../tensor/tensor.js";
import { ChunkAssembler, chunkTensorMap, type ModelChunk } from "./model-transfer.js";

function model(params: number): TensorMap {
  const rng = new SeededRandom(7);
  const data = Float32Array.from({ length: params }, () => rng.uniform() - 0.5);
  return new Map([
    ["layer0.weight", { shape: [params - 10, 1], data: data.subarray(0, params - 10) }],
    ["layer0.bias", { shape: [10], data: data.subarray(params - 10) }],
  ]);
}

const assemble = (chunks: Iterable<ModelChunk>, max = 1 << 30) => {
  const a = new ChunkAssembler("t1", "weights", max);
  let out: TensorMap | null = null;
  for (const c of chunks) out = a.add(c);
  return out;
};

describe("model transfer in chunks with a SHA-256 per tensor map", () => {
  it("reassembles the same tensor map from chunks no larger than the chunk size", () => {
    const w = model(50_000);
    const chunks = [...chunkTensorMap("t1", "weights", w, 16_384)];
    expect(chunks.length).toBe(Math.ceil(serializeSafetensors(w).length / 16_384));
    expect(Math.max(...chunks.map((c) => c.data.length))).toBeLessThanOrEqual(16_384);
    expect(chunks[0].totalBytes).toBe(serializeSafetensors(w).length);
    expect(chunks.at(-1)!.sha256).toBe(createHash("sha256").update(serializeSafetensors(w)).digest("hex"));
    expect(chunks.filter((c) => c.last)).toHaveLength(1);
    expect(weightsHash(assemble(chunks)!)).toBe(weightsHash(w));
  });

  it("refuses a flipped byte, a missing, repeated or foreign chunk, and a transfer that stops short", () => {
    const chunks = [...chunkTensorMap("t1", "weights", model(20_000), 8192)];
    const flipped = chunks.map((c, i) =>
      i === 2 ? { ...c, data: Uint8Array.from(c.data, (b, j) => (j === 5 ? b ^ 1 : b)) } : c,
    );
    expect(() => assemble(flipped)).toThrow(expect.objectContaining({ code: "TRANSFER_HASH_MISMATCH" }));
    expect(() => assemble([chunks[0], chunks[2]])).toThrow(/offset 16384, expected 8192/);
    expect(() => assemble([chunks[0], chunks[0]])).toThrow(/offset 0, expected 8192/);
    expect(() => assemble([{ ...chunks[0], transferId: "t2" }])).toThrow(/another transfer/);
    expect(() => assemble([chunks[0], { ...chunks[1], last: true, sha256: chunks.at(-1)!.sha256 }])).toThrow(
      /ended before its declared size/,
    );
    expect(() => assemble([...chunks, chunks[0]])).toThrow(/after the last one/);
  });

  it("refuses a declared size above the limit before allocating anything", () => {
    const [first] = chunkTensorMap("t1", "weights", model(20_000), 8192);
    expect(() => assemble([first], 1000)).toThrow(/declared size \d+ exceeds the limit 1000/);
    expect(() => assemble([{ ...first, totalBytes: undefined }])).toThrow(/must declare totalBytes/);
    expect(() => assemble([{ ...first, totalBytes: 8192 }])).not.toThrow();
  });
});
