import { describe, expect, it } from "vitest";
import { ClientLevelDpRefusedError } from "./agent/errors.js";
import { DatasetError, DatasetErrorCode } from "./data/dataset-error.js";
import { EnclaveError, ValidationError } from "./errors.js";
import "./federation/error-classes.js";
import { PrivacyBudgetExhaustedError } from "./privacy/guard.js";
import { AggregationError } from "./strategies/errors.js";

/** What a boundary does to a value: structured clone (a worker port) or JSON (an RPC). */
const across = (e: EnclaveError, via: "clone" | "json") =>
  EnclaveError.fromWire(
    via === "clone" ? structuredClone(e.toWire()) : JSON.parse(JSON.stringify(e.toWire())),
  );

describe("EnclaveError across a boundary (toWire / fromWire)", () => {
  for (const via of ["clone", "json"] as const) {
    it(`rebuilds the same subclass, code, message and fields (${via})`, () => {
      const v = across(new ValidationError("agent config", [{ path: "node_id", rule: "is required" }]), via);
      expect(v).toBeInstanceOf(ValidationError);
      expect(v).toBeInstanceOf(EnclaveError);
      expect(v).toBeInstanceOf(Error);
      expect(v).toMatchObject({ name: "ValidationError", code: "VALIDATION_FAILED" });
      expect(v.message).toBe("invalid agent config: node_id: is required");
      expect((v as ValidationError).issues).toEqual([{ path: "node_id", rule: "is required" }]);

      const a = across(
        new AggregationError("UPDATE_NOT_FINITE", "not finite", { clientId: "site-a", tensor: "w" }),
        via,
      );
      expect(a).toBeInstanceOf(AggregationError);
      expect(a).toMatchObject({ code: "UPDATE_NOT_FINITE", clientId: "site-a", tensor: "w" });

      const d = across(DatasetError.of(DatasetErrorCode.ID_INVALID, "x.csv", "is not a valid id"), via);
      expect(d).toBeInstanceOf(DatasetError);
      expect((d as DatasetError).dataset).toBe("x.csv");

      expect(across(new ClientLevelDpRefusedError(), via)).toBeInstanceOf(ClientLevelDpRefusedError);
    });
  }

  it("keeps the code of an error whose class this side does not know, as a plain EnclaveError", () => {
    const e = EnclaveError.fromWire({ name: "SomePeerError", code: "PEER_THING", message: "peer said no" });
    expect(e).toBeInstanceOf(EnclaveError);
    expect(e).toMatchObject({ name: "EnclaveError", code: "PEER_THING", message: "peer said no" });
  });

  it("never serialises a cause or a stack", () => {
    const e = new PrivacyBudgetExhaustedError(1, 2, 3) as EnclaveError;
    Object.defineProperty(e, "cause", { value: new Error("secret row 42"), enumerable: true });
    const wire = JSON.stringify(e.toWire());
    expect(wire).not.toMatch(/secret|stack|at /);
  });

  it("refuses a malformed wire error, naming the field (a hostile peer)", () => {
    const cases: [unknown, string][] = [
      [null, "name"],
      [{ name: "x", code: "A", message: "" }, "name"],
      [{ name: "EnclaveError", code: "lower", message: "" }, "code"],
      [{ name: "EnclaveError", code: "A", message: "m".repeat(5000) }, "message"],
      [{ name: "EnclaveError", code: "A", message: "", details: [1] }, "details"],
    ];
    for (const [input, field] of cases) {
      const e = EnclaveError.fromWire(input);
      expect(e.code).toBe("WIRE_ERROR_INVALID");
      expect(e.message).toContain(`(${field})`);
    }
    // Reserved keys in details cannot overwrite identity or reach the prototype.
    const e = EnclaveError.fromWire(
      JSON.parse(
        '{"name":"ValidationError","code":"VALIDATION_FAILED","message":"m","details":{"__proto__":{"polluted":1},"code":"OTHER","stack":"x"}}',
      ),
    );
    expect(e.code).toBe("VALIDATION_FAILED");
    expect(e).toBeInstanceOf(ValidationError);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((e as unknown as Record<string, unknown>).polluted).toBeUndefined();
  });
});
