import { resolve } from "node:path";
import type { Command } from "commander";
import { loadTrustPolicy } from "../../attestation/policy/load.js";
import { selectProvider } from "../../attestation/select-provider.js";
import { EnclaveError } from "../../errors.js";
import { readRegularFile } from "../../storage/regular-file.js";
import { agentMode } from "../../agent/agent-process.js";
import { ConfidentialClient } from "../../inference/client.js";
import { Predictor, type Prediction } from "../../inference/predictor.js";
import { InferenceServer } from "../../inference/server.js";
import type { ChatUpstream } from "../../inference/upstream.js";
import { BedrockUpstream } from "../../inference/upstreams/bedrock.js";
import { LocalModelUpstream } from "../../inference/upstreams/local-model.js";
import { formatEndpoint, parseEndpoint, type Endpoint } from "../../inference/transport.js";
import { transportFor, VMADDR_CID_ANY } from "../../inference/vsock-transport.js";
import { createLogger, type LogLevel } from "../../logging/logger.js";
import { choiceFlag, numberFlag } from "../flags.js";
import { untilSignal } from "../signals.js";
import { DETECT_ROOT_ENV } from "./agent.js";

/** The largest rows file `infer` / `predict` read. */
export const MAX_INPUT_BYTES = 64 * 1024 * 1024;

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

async function readInput(path: string): Promise<string> {
  return (await readRegularFile(path, "--input", MAX_INPUT_BYTES)).toString("utf8");
}

/** `{"predictions": [...]}` with --json, else one line per row: label and class probabilities. */
function printPredictions(predictions: Prediction[], classes: readonly string[] | null, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify({ predictions }) + "\n");
    return;
  }
  const header = classes
    ? `row\tlabel\t${classes.map((c) => `p(${c})`).join("\t")}`
    : "row\tlabel\tprobabilities";
  const lines = predictions.map(
    (p, i) => `${i + 1}\t${p.label}\t${p.probabilities.map((v) => v.toFixed(6)).join("\t")}`,
  );
  process.stdout.write([header, ...lines].join("\n") + "\n");
}

interface ServeFlags {
  model: string;
  chat?: string;
  bedrockEndpoint?: string;
  region?: string;
  socket?: string;
  vsock?: number;
  port?: number;
  simulation: boolean;
  insecure: boolean;
  logLevel?: LogLevel;
}

function listenEndpoint(f: ServeFlags): Endpoint {
  const given = [f.socket !== undefined, f.vsock !== undefined, f.port !== undefined].filter(Boolean).length;
  if (given !== 1) {
    throw new EnclaveError("FLAGS_INVALID", "give exactly one of --socket PATH, --vsock PORT or --port P");
  }
  if (f.socket !== undefined) return { kind: "unix", path: resolve(f.socket) };
  if (f.vsock !== undefined) return { kind: "vsock", cid: VMADDR_CID_ANY, port: f.vsock };
  return { kind: "tcp", host: "127.0.0.1", port: f.port! };
}

function chatUpstream(f: ServeFlags, predictor: Predictor): ChatUpstream | undefined {
  if (f.chat === undefined) return undefined;
  if (f.chat === "local") return new LocalModelUpstream(predictor);
  if (f.chat.startsWith("bedrock:") && f.chat.length > "bedrock:".length) {
    return new BedrockUpstream({
      modelId: f.chat.slice("bedrock:".length),
      region: f.region,
      endpoint: f.bedrockEndpoint,
    });
  }
  throw new EnclaveError("FLAGS_INVALID", "--chat must be bedrock:MODEL_ID or local");
}

function registerServe(program: Command): void {
  program
    .command("serve")
    .description(
      "serve confidential inference: an in-memory HPKE key bound into fresh attestation evidence; clients seal rows to it",
    )
    .requiredOption("--model <file>", "model file written by `enclave train` (safetensors with its schema)")
    .option("--socket <path>", "listen on a Unix socket")
    .option(
      "--vsock <port>",
      "listen on AF_VSOCK (Nitro Enclaves)",
      numberFlag({ integer: true, min: 0, max: 0xfffffffe }),
    )
    .option(
      "--port <p>",
      "listen on loopback TCP 127.0.0.1 (0: any free port)",
      numberFlag({ integer: true, min: 0, max: 65535 }),
    )
    .option(
      "--chat <upstream>",
      "CHAT_STREAM upstream: bedrock:MODEL_ID (credentials via SET_CREDENTIALS) or local (the --model, offline)",
    )
    .option("--region <r>", "Bedrock region when the pushed credentials name none")
    .option("--bedrock-endpoint <url>", "Bedrock Runtime endpoint override (e.g. a VPC endpoint)")
    .option("--simulation", "no TEE needed: simulated attestation (no hardware protection)", false)
    .option(
      "--insecure",
      "run without TEE hardware: INSECURE evidence (rejected by the default trust policy)",
      false,
    )
    .option("--log-level <level>", "structured log level on stderr (default info)", choiceFlag(LOG_LEVELS))
    .action(async (f: ServeFlags) => {
      const mode = agentMode(f);
      const endpoint = listenEndpoint(f);
      const logger = createLogger({ level: f.logLevel, name: "enclave-serve" });
      const detectRoot = process.env[DETECT_ROOT_ENV];
      const { provider, reason } = await selectProvider({
        simulation: mode === "SIMULATED",
        insecure: mode === "INSECURE",
        detect: detectRoot ? { root: resolve(detectRoot), runCommand: null } : undefined,
      });
      const predictor = await Predictor.load(resolve(f.model));
      const server = await InferenceServer.create({
        provider,
        predictor,
        chat: chatUpstream(f, predictor),
        mode: mode === "HARDWARE" ? provider.kind : mode.toLowerCase(),
        logger,
      });
      const stop = untilSignal();
      const listener = await transportFor(endpoint).listen(endpoint, (s) => void server.handle(s));
      logger.info(
        { endpoint: formatEndpoint(listener.endpoint), evidence: provider.kind, reason },
        "serving",
      );
      process.stdout.write(
        JSON.stringify({
          listening: formatEndpoint(listener.endpoint),
          evidence_kind: provider.kind,
          evidence_label: provider.label,
          model_sha256: predictor.modelSha256,
        }) + "\n",
      );
      const signal = await stop;
      logger.info({ signal }, "shutting down");
      server.closeAll();
      await listener.close();
    });
}

interface InferFlags {
  endpoint: string;
  input: string;
  policy: string;
  json: boolean;
  timeout: number;
}

function registerInfer(program: Command): void {
  program
    .command("infer")
    .description(
      "predict on rows sealed to an enclave's attested key: verifies the evidence against --policy before sending anything",
    )
    .requiredOption("--endpoint <e>", "unix:PATH | vsock:CID:PORT | tcp:HOST:PORT")
    .requiredOption(
      "--input <rows.csv>",
      "CSV rows in the model's dataset schema (a label column is ignored)",
    )
    .requiredOption("--policy <file>", "trust policy the enclave's evidence must pass (JSON or YAML)")
    .option(
      "--timeout <ms>",
      "per-request timeout",
      numberFlag({ integer: true, min: 1, max: 3_600_000 }),
      30_000,
    )
    .option("--json", 'print {"predictions": [{"label", "probabilities"}]}', false)
    .action(async (f: InferFlags) => {
      const endpoint = parseEndpoint(f.endpoint);
      const policy = await loadTrustPolicy(resolve(f.policy));
      const rows = await readInput(resolve(f.input));
      const client = await ConfidentialClient.connect(endpoint, { policy, timeoutMs: f.timeout });
      try {
        printPredictions(await client.predict(rows), null, f.json);
      } finally {
        client.close();
      }
    });
}

function registerPredict(program: Command): void {
  program
    .command("predict")
    .description("predict locally with a model file (the plain counterpart of `infer`, for comparison)")
    .requiredOption("--model <file>", "model file written by `enclave train`")
    .requiredOption(
      "--input <rows.csv>",
      "CSV rows in the model's dataset schema (a label column is ignored)",
    )
    .option("--json", 'print {"predictions": [{"label", "probabilities"}]}', false)
    .action(async (f: { model: string; input: string; json: boolean }) => {
      const predictor = await Predictor.load(resolve(f.model));
      const rows = await readInput(resolve(f.input));
      printPredictions(await predictor.predictCsv(Buffer.from(rows)), predictor.classes, f.json);
    });
}

/** `enclave serve`, `enclave infer`, `enclave predict`. */
export function registerInferenceCommands(program: Command): void {
  registerServe(program);
  registerInfer(program);
  registerPredict(program);
}
