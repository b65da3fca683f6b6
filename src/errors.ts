/**
 * Typed errors with stable codes. Callers branch on `code`, never on message text,
 * and messages never carry data values (only field names, rules and sizes).
 *
 * Each module keeps its own code table (a string-literal union next to its error class) and
 * `ErrorCode` unions them. An error crosses a thread or RPC boundary as a `WireError` and comes
 * back through `EnclaveError.fromWire` as the same subclass with the same code.
 */
import type { AgentErrorCode } from "./agent/errors.js";
import type { AttestationErrorCode } from "./attestation/errors.js";
import type { CoordinatorErrorCode } from "./coordinator/errors.js";
import type { HostErrorCode } from "./host/errors.js";
import type { IdentityErrorCode } from "./identity/errors.js";
import type { InferenceErrorCode } from "./inference/errors.js";
import type { ProtocolErrorCode } from "./federation/errors.js";
import type { SimulationErrorCode } from "./simulation/errors.js";
import type { PocErrorCode } from "./poc/errors.js";
import type { SdkErrorCode } from "./sdk/errors.js";
import type { StorageErrorCode } from "./storage/errors.js";
import type { AggregationErrorCode } from "./strategies/errors.js";

/** This module's own codes. */
export type CoreErrorCode = "VALIDATION_FAILED" | "WIRE_ERROR_INVALID";

/**
 * Every code of a module with a typed table. Modules without one yet throw free-form codes
 * (EnclaveError's default type parameter) and join this union when they get a table.
 */
export type ErrorCode =
  | CoreErrorCode
  | AgentErrorCode
  | AttestationErrorCode
  | CoordinatorErrorCode
  | HostErrorCode
  | IdentityErrorCode
  | InferenceErrorCode
  | ProtocolErrorCode
  | SimulationErrorCode
  | PocErrorCode
  | SdkErrorCode
  | StorageErrorCode
  | AggregationErrorCode;

/** An error as plain data for a boundary: no stack, no cause. */
export interface WireError {
  name: string;
  code: string;
  message: string;
  /** The subclass's own data fields (e.g. ValidationError.issues): names and rules, never values. */
  details?: Record<string, unknown>;
}

const WIRE_NAME = /^[A-Z][A-Za-z0-9]{0,63}$/;
const WIRE_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
const MAX_WIRE_MESSAGE = 4096;
const MAX_WIRE_DETAILS = 16 * 1024;
/** Own properties that are the error's identity, not its details (and keys never copied in). */
const RESERVED = new Set([
  "name",
  "code",
  "message",
  "stack",
  "cause",
  "__proto__",
  "constructor",
  "prototype",
]);

type ErrorClass = abstract new (...args: never[]) => EnclaveError;

export class EnclaveError<C extends string = string> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** Subclasses `fromWire` rebuilds, by class name. */
  private static readonly known = new Map<string, object>([["EnclaveError", EnclaveError.prototype]]);

  /** Let `fromWire` rebuild these subclasses (by their class name). */
  static register(...classes: ErrorClass[]): void {
    for (const c of classes) EnclaveError.known.set(c.name, c.prototype);
  }

  /** Plain data for a boundary. Details are the subclass's JSON-safe own fields. */
  toWire(): WireError {
    const details: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this)) if (!RESERVED.has(k)) details[k] = v;
    let json: string | undefined;
    try {
      json = JSON.stringify(details);
    } catch {
      json = undefined;
    }
    const wire: WireError = { name: this.name, code: this.code, message: this.message };
    if (json !== undefined && json !== "{}" && json.length <= MAX_WIRE_DETAILS)
      wire.details = JSON.parse(json) as Record<string, unknown>;
    return wire;
  }

  /**
   * Rebuild an error that crossed a boundary: the registered subclass of that name (EnclaveError
   * otherwise) with the same code, message and details. The input is a peer's, so it is checked:
   * anything malformed becomes a WIRE_ERROR_INVALID error that names the field.
   */
  static fromWire(input: unknown): EnclaveError {
    const w = (typeof input === "object" && input !== null ? input : {}) as Partial<
      Record<keyof WireError, unknown>
    >;
    const bad = (field: string) =>
      new EnclaveError("WIRE_ERROR_INVALID", `an error from a peer was malformed (${field})`);
    if (typeof w.name !== "string" || !WIRE_NAME.test(w.name)) return bad("name");
    if (typeof w.code !== "string" || !WIRE_CODE.test(w.code)) return bad("code");
    if (typeof w.message !== "string" || w.message.length > MAX_WIRE_MESSAGE) return bad("message");
    if (
      w.details !== undefined &&
      (typeof w.details !== "object" || w.details === null || Array.isArray(w.details))
    )
      return bad("details");
    const proto = EnclaveError.known.get(w.name);
    const e = Object.create(proto ?? EnclaveError.prototype) as EnclaveError & Record<string, unknown>;
    Object.defineProperty(e, "message", { value: w.message, writable: true, configurable: true });
    for (const [k, v] of Object.entries((w.details ?? {}) as Record<string, unknown>)) {
      if (!RESERVED.has(k)) e[k] = v;
    }
    Object.assign(e, { code: w.code, name: proto ? w.name : "EnclaveError" });
    e.stack = `${e.name}: ${w.message}\n    at (across a boundary)`;
    return e;
  }
}

export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `privacy.target_epsilon`. */
  path: string;
  /** The rule that was broken, phrased for a person. */
  rule: string;
}

/** Input crossing a boundary did not match its contract. */
export class ValidationError extends EnclaveError<CoreErrorCode> {
  readonly issues: FieldIssue[];
  constructor(what: string, issues: FieldIssue[]) {
    super(
      "VALIDATION_FAILED",
      `invalid ${what}: ` + issues.map((i) => `${i.path || "(root)"}: ${i.rule}`).join("; "),
    );
    this.issues = issues;
  }
}
