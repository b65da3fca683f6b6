import { describe, expect, it } from "vitest";
import { cli } from "../../test/support/cli.js";

describe("enclave: usage errors", () => {
  it("print the error and one line pointing at --help, not the whole help", async () => {
    for (const args of [["budget", "--steps", "10"], ["simulate", "--clients", "zero"], ["no-such-verb"]]) {
      const r = await cli(...args);
      expect(r.code, args.join(" ")).not.toBe(0);
      const lines = r.err.trim().split("\n");
      expect(lines[0], args.join(" ")).toMatch(/^error: /);
      expect(lines.at(-1)).toBe("(run with --help for usage)");
      expect(lines.length, args.join(" ")).toBeLessThanOrEqual(3);
      expect(r.err).not.toContain("Options:");
    }
  });

  it("still prints the whole help when asked", async () => {
    const r = await cli("simulate", "--help");
    expect(r.code).toBe(0);
    expect(r.out).toContain("Options:");
  });
});
