// Registers every typed error class with EnclaveError.fromWire, so an error thrown behind a
// transport comes back as the same subclass. Imported by the transports.
import { AgentError, AttestationRefusedError, ClientLevelDpRefusedError } from "../agent/errors.js";
import { ProviderError } from "../attestation/providers/provider.js";
import { CertificateFormatError } from "../attestation/pki/errors.js";
import { NoTeeError } from "../attestation/select-provider.js";
import { AttestationError, EvidenceFormatError } from "../attestation/types.js";
import { CoordinatorError } from "../coordinator/errors.js";
import { DatasetError } from "../data/dataset-error.js";
import { EnclaveError, ValidationError } from "../errors.js";
import { InferenceError } from "../inference/errors.js";
import { HostError } from "../host/errors.js";
import { IdentityError } from "../identity/errors.js";
import { SafetensorsError } from "../model/safetensors.js";
import { RuntimeError } from "../runtime/errors.js";
import { AccountantError } from "../privacy/accountant/accountant.js";
import { PrivacyBudgetExhaustedError } from "../privacy/guard.js";
import { SimulationError } from "../simulation/errors.js";
import { StorageError } from "../storage/errors.js";
import { AggregationError } from "../strategies/errors.js";
import { StrategyArgumentError } from "../strategies/trainable.js";
import { KernelBackendError } from "../tensor/backend.js";
import { KernelArgumentError } from "../tensor/kernel-args.js";
import { TensorLayoutError } from "../tensor/tensor-math.js";
import { ProtocolError } from "./errors.js";

EnclaveError.register(
  ValidationError,
  AgentError,
  AttestationRefusedError,
  ClientLevelDpRefusedError,
  CoordinatorError,
  ProtocolError,
  SimulationError,
  StorageError,
  InferenceError,
  HostError,
  IdentityError,
  AggregationError,
  StrategyArgumentError,
  PrivacyBudgetExhaustedError,
  AccountantError,
  DatasetError,
  SafetensorsError,
  AttestationError,
  EvidenceFormatError,
  CertificateFormatError,
  ProviderError,
  NoTeeError,
  KernelBackendError,
  KernelArgumentError,
  TensorLayoutError,
  RuntimeError,
);
