/**
 * The CLI's exit codes, one table for every verb (documented in README.md, "Exit codes"). Scripts
 * branch on them: they are a contract.
 */
export const ExitCode = {
  /** The verb did what was asked (verify: the evidence is trusted). */
  OK: 0,
  /** Refused or failed: invalid flags or input, unreadable files, untrusted evidence; nothing spent. */
  ERROR: 1,
  /** The privacy budget ended the run early: train wrote the last in-budget model; simulate's or poc's job ended privacy_budget_exhausted. */
  BUDGET_EXHAUSTED: 3,
  /** train: the budget left cannot pay for a meaningful run; refused before training, nothing written. */
  BUDGET_REFUSED: 4,
  /** simulate, poc: the job ended insufficient_clients (too few sites could train a round). */
  INSUFFICIENT_CLIENTS: 5,
} as const;
