import { describe, expect, it } from "vitest";
import { EnclaveError } from "../errors.js";
import { allPassed, CheckList, fail, pass, skip, warn } from "./checks.js";
import { NVIDIA_DEVICE_ROOT_PEM } from "./nvidia/index.js";
import { pinnedRoot, PinnedRootError } from "./pki/index.js";

describe("CheckList", () => {
  it("trusts only when nothing failed and something passed; skips and warnings prove nothing", () => {
    expect(allPassed([])).toBe(false);
    expect(
      allPassed([
        { name: "a", ...skip("x") },
        { name: "b", ...warn("y") },
      ]),
    ).toBe(false);
    expect(
      allPassed([
        { name: "a", ...pass("x") },
        { name: "b", ...warn("y") },
      ]),
    ).toBe(true);
    expect(
      allPassed([
        { name: "a", ...pass("x") },
        { name: "b", ...fail("y") },
      ]),
    ).toBe(false);
  });

  it("records a check that throws as failed and keeps running the ones after it", () => {
    const list = new CheckList();
    list.run("typed", () => {
      throw new EnclaveError("SOME_CODE", "field x: broken");
    });
    list.run("untyped", () => {
      throw new TypeError("secret value 42");
    });
    list.run("after", () => pass("ran"));
    expect(list.checks).toEqual([
      { name: "typed", status: "fail", detail: "field x: broken" },
      { name: "untyped", status: "fail", detail: "check could not be evaluated" },
      { name: "after", status: "pass", detail: "ran" },
    ]);
    expect(list.trusted).toBe(false);
  });
});

describe("pinned roots", () => {
  it("a root that drifted from its pin fails with the one code PINNED_ROOT_MISMATCH", () => {
    const load = pinnedRoot("test root", NVIDIA_DEVICE_ROOT_PEM, "00".repeat(32));
    expect(load).toThrow(PinnedRootError);
    try {
      load();
    } catch (error) {
      expect((error as EnclaveError).code).toBe("PINNED_ROOT_MISMATCH");
    }
  });
});
