// safetensors as the reference implementation (and PyTorch) reads it: a strict header, and the
// float dtypes PyTorch users save every day (F16, BF16, F64) read and converted to float32, with the
// conversion reported. Expected values computed with numpy (astype(float32) of the same bytes).
import { describe, expect, it } from "vitest";
import { parseSafetensors } from "./safetensors.js";

/** A file from a raw header text and data bytes (the header padded with spaces to 8 bytes). */
function file(headerText: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const padded = headerText + " ".repeat((8 - (headerText.length % 8)) % 8);
  const h = new TextEncoder().encode(padded);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}
const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const f32 = (n: number) => new Uint8Array(new Float32Array(n).buffer);

describe("safetensors: a strict header", () => {
  it("refuses a tensor name given twice (JSON.parse would keep the last)", () => {
    const text =
      '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    expect(() => parseSafetensors(file(text, f32(1)))).toThrow(/header names "w" twice/);
  });

  it("refuses a header that does not start with '{'", () => {
    expect(() =>
      parseSafetensors(file(' {"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32(1))),
    ).toThrow(/must start with '\{'/);
  });

  it.each(["[4.0]", "[4e0]", "[-0]", "[0.5e1]"])("refuses a non-integer shape %s", (shape) => {
    const text = `{"w":{"dtype":"F32","shape":${shape},"data_offsets":[0,16]}}`;
    expect(() => parseSafetensors(file(text, f32(4)))).toThrow(/non-negative integers/);
  });

  it("refuses non-integer data offsets and keeps strings (names, metadata) out of the number check", () => {
    expect(() =>
      parseSafetensors(file('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}', f32(1))),
    ).toThrow(/non-negative integers/);
    const ok = parseSafetensors(
      file(
        '{"__metadata__":{"lr":"1.5e-3","{\\"x":"4.0"},"w.0":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
        f32(1),
      ),
    );
    expect(ok.metadata).toEqual({ lr: "1.5e-3", '{"x': "4.0" });
    expect(ok.converted).toEqual([]);
  });

  it("still refuses dtypes it cannot represent as floats, naming the ones it reads", () => {
    expect(() =>
      parseSafetensors(file('{"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}', new Uint8Array(8))),
    ).toThrow(/dtype must be F32, F16, BF16 or F64/);
  });
});

describe("safetensors: F16, BF16 and F64 read as float32, and reported", () => {
  it("converts each dtype to the values numpy gives", () => {
    const f16 = hex("003c00c0662eff7b010055350080");
    const bf16 = hex("803f494020be4971");
    const f64 = hex("182d4454fb21094059f3f8c21f6ea50100000000000004c0");
    const data = new Uint8Array([...f16, ...bf16, ...f64]);
    const text = JSON.stringify({
      a: { dtype: "F16", shape: [7], data_offsets: [0, 14] },
      b: { dtype: "BF16", shape: [2, 2], data_offsets: [14, 22] },
      c: { dtype: "F64", shape: [3], data_offsets: [22, 46] },
    });
    const r = parseSafetensors(file(text, data));
    expect([...r.tensors.get("a")!.data]).toEqual([
      1, -2, 0.0999755859375, 65504, 5.960464477539063e-8, 0.333251953125, -0,
    ]);
    expect(Object.is(r.tensors.get("a")!.data[6], -0)).toBe(true);
    expect(r.tensors.get("b")!.shape).toEqual([2, 2]);
    expect([...r.tensors.get("b")!.data]).toEqual([1, 3.140625, -0.15625, 9.953037915854457e29]);
    expect([...r.tensors.get("c")!.data]).toEqual([3.1415927410125732, 0, -2.5]);
    expect(r.converted).toEqual([
      { name: "a", dtype: "F16" },
      { name: "b", dtype: "BF16" },
      { name: "c", dtype: "F64" },
    ]);
  });

  it("F16 infinities and NaN come through as such", () => {
    const r = parseSafetensors(
      file(JSON.stringify({ x: { dtype: "F16", shape: [3], data_offsets: [0, 6] } }), hex("007c00fc007e")),
    );
    const [pinf, ninf, nan] = r.tensors.get("x")!.data;
    expect(pinf).toBe(Infinity);
    expect(ninf).toBe(-Infinity);
    expect(nan).toBeNaN();
  });

  it("checks offsets against the dtype's width", () => {
    const text = JSON.stringify({ x: { dtype: "F16", shape: [2], data_offsets: [0, 8] } });
    expect(() => parseSafetensors(file(text, new Uint8Array(8)))).toThrow(/do not match its shape/);
  });
});
