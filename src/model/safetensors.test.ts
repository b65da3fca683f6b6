import { describe, expect, it } from "vitest";
import { tensor, type TensorMap } from "../tensor/tensor.js";
import { parseSafetensors, serializeSafetensors, weightsHash } from "./safetensors.js";

function sample(): TensorMap {
  return new Map([
    ["layers.0.weight", tensor([2, 3], Float32Array.from([1, -2, 3.5, 0, 1e-8, -0]))],
    ["layers.0.bias", tensor([2], Float32Array.from([0.25, -0.5]))],
  ]);
}

describe("safetensors", () => {
  it("writes the documented byte layout (checked by hand)", () => {
    const bytes = serializeSafetensors(new Map([["a", tensor([2], Float32Array.from([1, -2]))]]));
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(header.trimEnd()).toBe('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}');
    expect(n % 8).toBe(0);
    // 1.0f = 0x3f800000, -2.0f = 0xc0000000, little-endian
    expect([...bytes.subarray(8 + n)]).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]);
  });

  it("round-trips and is deterministic regardless of insertion order", () => {
    const a = sample();
    const b: TensorMap = new Map([...a.entries()].reverse());
    expect(serializeSafetensors(a)).toEqual(serializeSafetensors(b));
    expect(weightsHash(a)).toBe(weightsHash(b));
    const back = parseSafetensors(serializeSafetensors(a, { format: "pt" }));
    expect(back.metadata).toEqual({ format: "pt" });
    expect([...back.tensors.get("layers.0.weight")!.data]).toEqual([...a.get("layers.0.weight")!.data]);
    expect(back.tensors.get("layers.0.weight")!.shape).toEqual([2, 3]);
  });

  it("hash changes when one weight changes by one ulp", () => {
    const a = sample();
    const h = weightsHash(a);
    const buf = new Uint32Array(a.get("layers.0.bias")!.data.buffer);
    buf[0] += 1;
    expect(weightsHash(a)).not.toBe(h);
  });

  it.each([
    ["truncated", (b: Uint8Array) => b.subarray(0, b.length - 1), /data section/],
    [
      "huge header length",
      (b: Uint8Array) => (new DataView(b.buffer).setBigUint64(0, 1n << 40n, true), b),
      /header length/,
    ],
    ["short file", () => new Uint8Array(3), /shorter/],
    [
      "wrong dtype",
      (b: Uint8Array) => {
        const at = Buffer.from(b).indexOf('"F32"');
        b.set(new TextEncoder().encode('"I64"'), at);
        return b;
      },
      /dtype must be F32, F16, BF16 or F64/,
    ],
  ])("rejects a %s file", (_n, mutate, err) => {
    const bytes = serializeSafetensors(sample());
    expect(() => parseSafetensors(mutate(Uint8Array.from(bytes)))).toThrow(err);
  });
});
