import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseTrustPolicy } from "../attestation/policy/load.js";
import { SimulatedProvider } from "../attestation/providers/software.js";
import type { Logger } from "../logging/logger.js";
import type { TrustPolicy } from "../schemas/trust-policy.js";
import { ConfidentialClient, type ChatOptions, type ChatSummary } from "./client.js";
import { InferenceError } from "./errors.js";
import type { Prediction } from "./predictor.js";
import { Predictor } from "./predictor.js";
import type { ChatMessage, CredentialsPlaintext } from "./protocol.js";
import { InferenceServer } from "./server.js";
import { netTransport, type Endpoint } from "./transport.js";
import type { ChatUpstream } from "./upstream.js";

/**
 * What a host application calls, whatever runs the enclave: `mock` (the same server in this
 * process, simulated evidence) or `nitro` (a Nitro Enclave on this instance, over vsock). The
 * code that calls it does not change between the two; `ENCLAVE_MODE` picks.
 */
export interface EnclaveClient {
  readonly mode: EnclaveMode;
  predict(rowsCsv: string): Promise<Prediction[]>;
  chatStream(messages: ChatMessage[], options?: ChatOptions): AsyncGenerator<string, ChatSummary>;
  setCredentials(credentials: CredentialsPlaintext): Promise<{ expiresAt: Date }>;
  health(): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export const ENCLAVE_MODES = ["mock", "nitro"] as const;
export type EnclaveMode = (typeof ENCLAVE_MODES)[number];

/** Default vsock port an enclave serves on. */
export const DEFAULT_VSOCK_PORT = 5005;

/** Runs a command; the Nitro CID discovery's seam for tests. */
export type CommandRunner = (
  cmd: string,
  args: string[],
) => Promise<{ code: number | string; stdout: string }>;

export interface EnclaveClientOptions {
  /** Default: `ENCLAVE_MODE` from the environment, else "mock". */
  mode?: EnclaveMode;
  env?: NodeJS.ProcessEnv;
  /** Trust policy for the enclave's evidence (nitro: the default policy; mock: simulated allowed). */
  policy?: TrustPolicy;
  timeoutMs?: number;
  /** nitro: the enclave's CID (0 or absent: `ENCLAVE_CID`, else discover with nitro-cli). */
  cid?: number;
  /** nitro: the vsock port (default `ENCLAVE_PORT`, else 5005). */
  port?: number;
  /** mock: the model file to serve (default `ENCLAVE_MODEL`), and an optional chat upstream. */
  model?: string;
  chat?: ChatUpstream;
  logger?: Logger;
  runCommand?: CommandRunner;
}

const runCommand: CommandRunner = (cmd, args) =>
  new Promise((resolve) => {
    execFile(cmd, args, { timeout: 10_000, maxBuffer: 1024 * 1024 }, (err, stdout) => {
      const code = err ? ((err as { code?: number | string }).code ?? -1) : 0;
      resolve({ code, stdout: String(stdout ?? "") });
    });
  });

function modeOf(options: EnclaveClientOptions, env: NodeJS.ProcessEnv): EnclaveMode {
  const mode = options.mode ?? env.ENCLAVE_MODE ?? "mock";
  if (!(ENCLAVE_MODES as readonly string[]).includes(mode)) {
    throw new InferenceError("ENDPOINT_INVALID", `ENCLAVE_MODE must be one of ${ENCLAVE_MODES.join(", ")}`);
  }
  return mode as EnclaveMode;
}

function intOf(value: string | undefined, name: string, max: number): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (!/^\d+$/.test(value) || Number(value) > max) {
    throw new InferenceError("ENDPOINT_INVALID", `${name} must be an integer in 0..${max}`);
  }
  return Number(value);
}

/**
 * The CID of the running Nitro Enclave, from `nitro-cli describe-enclaves` (a JSON array whose
 * entries carry `EnclaveCID` and `State`). A clear error when nitro-cli is absent or no enclave runs.
 */
export async function discoverEnclaveCid(run: CommandRunner = runCommand): Promise<number> {
  const r = await run("nitro-cli", ["describe-enclaves"]);
  if (r.code === "ENOENT") {
    throw new InferenceError(
      "TRANSPORT_UNAVAILABLE",
      "nitro-cli is not installed: install the AWS Nitro Enclaves CLI on the parent instance, or give the enclave's CID (ENCLAVE_CID)",
    );
  }
  if (r.code !== 0) {
    throw new InferenceError(
      "TRANSPORT_UNAVAILABLE",
      `nitro-cli describe-enclaves failed (exit ${String(r.code)})`,
    );
  }
  let list: unknown;
  try {
    list = JSON.parse(r.stdout);
  } catch {
    throw new InferenceError("TRANSPORT_UNAVAILABLE", "nitro-cli describe-enclaves did not print JSON");
  }
  const running = (Array.isArray(list) ? list : []).filter(
    (e): e is { EnclaveCID: number; State?: string } =>
      typeof e === "object" &&
      e !== null &&
      Number.isInteger((e as { EnclaveCID?: unknown }).EnclaveCID) &&
      (e as { State?: unknown }).State !== "TERMINATING",
  );
  if (running.length === 0) {
    throw new InferenceError(
      "CONNECTION_REFUSED",
      "no Nitro Enclave is running on this instance (nitro-cli describe-enclaves lists none)",
    );
  }
  if (running.length > 1) {
    throw new InferenceError(
      "ENDPOINT_INVALID",
      `${running.length} Nitro Enclaves are running: give the one to use as ENCLAVE_CID`,
    );
  }
  return running[0].EnclaveCID;
}

function wrap(mode: EnclaveMode, client: ConfidentialClient, onClose: () => Promise<void>): EnclaveClient {
  return {
    mode,
    predict: (rows) => client.predict(rows),
    chatStream: (messages, options) => client.chatStream(messages, options),
    setCredentials: (c) => client.setCredentials(c),
    health: async () => ({ ...(await client.health()), client_mode: mode }),
    close: async () => {
      client.close();
      await onClose();
    },
  };
}

/** Build the client `ENCLAVE_MODE` (or `options.mode`) asks for. */
export async function createEnclaveClient(options: EnclaveClientOptions = {}): Promise<EnclaveClient> {
  const env = options.env ?? process.env;
  const mode = modeOf(options, env);
  if (mode === "nitro") {
    let cid = options.cid ?? intOf(env.ENCLAVE_CID, "ENCLAVE_CID", 0xffffffff) ?? 0;
    const port = options.port ?? intOf(env.ENCLAVE_PORT, "ENCLAVE_PORT", 0xffffffff) ?? DEFAULT_VSOCK_PORT;
    if (cid === 0) cid = await discoverEnclaveCid(options.runCommand);
    const endpoint: Endpoint = { kind: "vsock", cid, port };
    const client = await ConfidentialClient.connect(endpoint, {
      policy: options.policy,
      timeoutMs: options.timeoutMs,
    });
    return wrap(mode, client, async () => undefined);
  }
  const modelPath = options.model ?? env.ENCLAVE_MODEL;
  const server = await InferenceServer.create({
    provider: new SimulatedProvider(),
    predictor: modelPath ? await Predictor.load(modelPath) : undefined,
    chat: options.chat,
    mode: "mock",
    logger: options.logger,
  });
  const dir = mkdtempSync(join(tmpdir(), "enclave-mock-"));
  const listener = await netTransport.listen(
    { kind: "unix", path: join(dir, "enclave.sock") },
    (s) => void server.handle(s),
  );
  try {
    const client = await ConfidentialClient.connect(listener.endpoint, {
      policy: options.policy ?? parseTrustPolicy({ allow_simulated: true }),
      timeoutMs: options.timeoutMs,
      transport: netTransport,
    });
    return wrap(mode, client, async () => {
      server.closeAll();
      await listener.close();
      rmSync(dir, { recursive: true, force: true });
    });
  } catch (err) {
    await listener.close();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
