// NVIDIA H100 GPU attestation: SPDM 1.1 GET_MEASUREMENTS evidence, device chain, FWID, RIM values.
export { parseNvidiaEvidence, MAX_EVIDENCE_BYTES, type NvidiaEvidence } from "./evidence.js";
export { verifyNvidiaGpuEvidence, type NvidiaVerifyOptions, type NvidiaClaims } from "./verify.js";
export {
  compareMeasurements,
  NVDEC_MEASUREMENT_INDEX,
  type NvidiaReferenceMeasurement,
  type NvidiaReferenceMeasurements,
} from "./reference.js";
export { fwidFromCertificate, TCG_DICE_TCBINFO_OID } from "./fwid.js";
export { formatVbiosVersion, OPAQUE_FIELD, type NvidiaOpaqueData } from "./opaque.js";
export { MAX_TRAILING_BYTES } from "./spdm.js";
export type { MeasurementBlock, SpdmMeasurementsRequest, SpdmMeasurementsResponse } from "./spdm.js";
export { NVIDIA_DEVICE_ROOT_PEM, NVIDIA_DEVICE_ROOT_SHA256 } from "./device-root.js";
export {
  parseNvidiaRim,
  verifyNvidiaRim,
  NVIDIA_RIM_ROOT_PEM,
  NVIDIA_RIM_ROOT_SHA256,
  type NvidiaRim,
  type NvidiaRimVerification,
} from "./rim.js";
