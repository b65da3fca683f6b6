// Confidential inference: the enclave's server, its client, the sealing and the framing they share.
export { InferenceError, InferenceErrorCode } from "./errors.js";
export { HpkeKeyPair, SEAL_CONTEXTS, seal, StreamSealer, StreamOpener, type SealContext } from "./sealing.js";
export {
  encodeFrame,
  FrameDecoder,
  FramedConnection,
  DEFAULT_MAX_FRAME_BYTES,
  type FramedOptions,
} from "./framing.js";
export { COMMANDS as INFERENCE_COMMANDS, type ChatMessage, type CredentialsPlaintext } from "./protocol.js";
export { Predictor, type Prediction } from "./predictor.js";
export { CredentialStore } from "./credential-store.js";
export type { ChatUpstream, ChatEvent, ChatRequest, CloudCredentials } from "./upstream.js";
export { InferenceServer, HPKE_SUITE, type InferenceServerOptions } from "./server.js";
export {
  parseEndpoint,
  formatEndpoint,
  netTransport,
  type Endpoint,
  type Listener,
  type Transport,
} from "./transport.js";
export { ConfidentialClient, type ConnectOptions, type ChatOptions, type ChatSummary } from "./client.js";
export {
  vsockTransport,
  transportFor,
  vsockUnavailableReason,
  localCid,
  VMADDR_CID_ANY,
} from "./vsock-transport.js";
export {
  createEnclaveClient,
  discoverEnclaveCid,
  ENCLAVE_MODES,
  DEFAULT_VSOCK_PORT,
  type EnclaveClient,
  type EnclaveClientOptions,
  type EnclaveMode,
} from "./enclave-client.js";
export { BedrockUpstream, type BedrockUpstreamOptions } from "./upstreams/bedrock.js";
export { LocalModelUpstream } from "./upstreams/local-model.js";
export {
  CredentialRefresher,
  ImdsCredentialSource,
  type CredentialSource,
  type ImdsOptions,
  type RefresherOptions,
  type RefresherHealth,
} from "./credential-refresher.js";
