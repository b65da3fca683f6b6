export {
  ACCOUNTANT_NAMES,
  AccountantError,
  MAX_NOISE_MULTIPLIER,
  isAccountantName,
  type Accountant,
  type AccountantName,
  type AccountantSegment,
} from "./accountant.js";
export { RdpAccountant } from "./rdp-accountant.js";
export { PrvAccountant, PRV_MAX_DOMAIN_SIZE, type PrvOptions } from "./prv-accountant.js";
export type { EpsilonBounds } from "./prv/discrete-prv.js";
export { DEFAULT_RDP_ORDERS, rdpOfOneStep, rdpToEpsilon, type PrivacySpent } from "./rdp-analysis.js";
export {
  computeEpsilon,
  createAccountant,
  getNoiseMultiplier,
  type ComputeEpsilonInput,
  type EpsilonResult,
  type NoiseMultiplierInput,
} from "./privacy-budget.js";
