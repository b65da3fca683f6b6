/**
 * Typed errors with stable codes. Callers branch on `code`, never on message text,
 * and messages never carry data values (only field names, rules and sizes).
 */
export class EnclaveError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

export interface FieldIssue {
  /** Dotted path of the offending field, e.g. `privacy.target_epsilon`. */
  path: string;
  /** The rule that was broken, phrased for a person. */
  rule: string;
}

/** Input crossing a boundary did not match its contract. */
export class ValidationError extends EnclaveError {
  readonly issues: FieldIssue[];
  constructor(what: string, issues: FieldIssue[]) {
    super(
      "VALIDATION_FAILED",
      `invalid ${what}: ` + issues.map((i) => `${i.path || "(root)"}: ${i.rule}`).join("; "),
    );
    this.issues = issues;
  }
}
