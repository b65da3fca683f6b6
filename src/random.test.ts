import { describe, expect, it } from "vitest";
import { SeededRandom } from "./random.js";

/** Draw a mix of uniforms (from the pool) and direct words, as training does (sampling, noise). */
function draw(r: SeededRandom, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(r.uniform());
    const w = new Uint32Array(1 + (i % 37));
    r.fillUint32(w);
    out.push(...w);
  }
  return out;
}

describe("a seeded stream's state", () => {
  it("lets a copy draw exactly what the original would, and the original then continue where the copy stopped", () => {
    const original = SeededRandom.derive("s", "noise");
    const twin = SeededRandom.derive("s", "noise");
    draw(original, 10);
    draw(twin, 10);
    // An isolated task's copy draws past a pool refill (4096 words) and past block boundaries.
    const copy = SeededRandom.fromState(original.state());
    const inCopy = draw(copy, 3000);
    expect(inCopy).toEqual(draw(twin, 3000));
    original.seek(copy.position());
    expect(draw(original, 500)).toEqual(draw(twin, 500));
  });

  it("refuses a position it could not be at: backwards, a pool beyond what was drawn, or not integers", () => {
    const r = SeededRandom.derive("s", "x");
    draw(r, 5);
    const p = r.position();
    expect(() => r.seek({ ...p, drawn: p.drawn - 1 })).toThrow(RangeError);
    expect(() => r.seek({ ...p, poolAt: p.drawn })).toThrow(RangeError);
    expect(() => r.seek({ ...p, pos: 1.5 })).toThrow(RangeError);
    expect(() => r.seek({ drawn: 2 ** 60, poolAt: -1, pos: 4096 })).toThrow(RangeError);
    expect(() => SeededRandom.fromState({ ...r.state(), key: "zz" })).toThrow(RangeError);
  });
});
