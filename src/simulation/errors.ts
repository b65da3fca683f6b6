import { EnclaveError } from "../errors.js";

/** Codes of the simulation harness's own errors. */
export type SimulationErrorCode =
  /** The simulation partitions CSV datasets only. */
  "SIMULATION_UNSUPPORTED";

export class SimulationError extends EnclaveError<SimulationErrorCode> {}
