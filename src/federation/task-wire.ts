import { z } from "zod";
import { METRIC_WHITELIST } from "../airlock/airlock.js";
import { ValidationError } from "../errors.js";
import { FederationJob } from "../schemas/federation.js";
import { ModelSpec } from "../schemas/model.js";
import { parseContract } from "../schemas/contract.js";
import type { TensorMap } from "../tensor/tensor.js";
import { ProtocolError } from "./errors.js";
import type { BudgetProbe, TaskOutcome, TrainTask } from "./task.js";

/**
 * Tasks and outcomes on the network session: their JSON (no tensors) and the tensor maps that
 * travel beside it as chunked parts ("weights", "control"). Both ends validate what they receive:
 * the agent the task (job, model, plan: the job contract and the model contract), the coordinator
 * the outcome (status, counts and only whitelisted, finite metrics).
 */

/** The tensor maps of a task or outcome, by part name. */
export type Parts = Map<string, TensorMap>;

const Plan = z
  .object({
    epochs: z.number().int().min(1).max(1000),
    batchSize: z
      .number()
      .int()
      .min(1)
      .max(1 << 20),
    learningRate: z.number().positive().finite(),
    momentum: z.number().min(0).lt(1),
  })
  .strict();

const TaskJson = z
  .object({
    job: z.unknown(),
    round: z.number().int().min(1),
    model: z.unknown(),
    plan: Plan,
    parts: z.array(z.enum(["weights", "control"])).max(2),
  })
  .strict();

const finite = z.number().finite();

const OutcomeJson = z
  .object({
    status: z.enum(["ok", "budget_exhausted"]),
    numExamples: z.number().int().min(0),
    metrics: z.partialRecord(z.enum(METRIC_WHITELIST), finite),
    dropped: z.number().int().min(0),
    parts: z
      .array(z.enum(["weights", "control"]))
      .min(1)
      .max(2),
  })
  .strict();

const Probe = z
  .object({
    epsilon: finite.min(0),
    nextEpsilon: finite.min(0),
    limit: finite.min(0),
    examples: z.number().int().min(0),
  })
  .strict();

function invalid(what: string, err: unknown): never {
  if (err instanceof ValidationError) throw new ProtocolError("TASK_INVALID", err.message);
  throw new ProtocolError("TASK_INVALID", `${what} is not JSON`);
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    return invalid(what, err);
  }
}

/**
 * A task as its JSON and its tensor parts (the global model, SCAFFOLD's server control variate);
 * a probe's (`tensors` false) announces none and carries none.
 */
export function encodeTask(task: TrainTask, tensors = true): { json: string; parts: Parts } {
  const parts: Parts = new Map();
  if (tensors) parts.set("weights", task.global);
  if (tensors && task.serverControl) parts.set("control", task.serverControl);
  const json = JSON.stringify({
    job: task.job,
    round: task.round,
    model: task.model,
    plan: task.plan,
    parts: [...parts.keys()],
  });
  return { json, parts };
}

/** The parts a task's JSON announces (checked before any chunk is taken). */
export function taskParts(json: string): string[] {
  try {
    return parseContract(TaskJson, parseJson(json, "task_json"), "task").parts;
  } catch (err) {
    return invalid("task_json", err);
  }
}

/**
 * The agent's side: a task from the coordinator, every field checked against its contract. A
 * probe carries no tensors; its `global` is an empty map (the probe reads only the job and plan).
 */
export function decodeTask(json: string, parts: Parts): TrainTask {
  try {
    const t = parseContract(TaskJson, parseJson(json, "task_json"), "task");
    const job = parseContract(FederationJob, t.job, "task.job");
    const model = parseContract(ModelSpec, t.model, "task.model");
    for (const p of t.parts)
      if (!parts.has(p)) throw new ProtocolError("TASK_INVALID", `task part ${p} did not arrive`);
    return {
      job,
      round: t.round,
      model,
      plan: t.plan,
      global: parts.get("weights") ?? new Map(),
      ...(parts.has("control") ? { serverControl: parts.get("control") } : {}),
    };
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    return invalid("task_json", err);
  }
}

/** An outcome as its JSON and its tensor parts (weights, SCAFFOLD's control delta). */
export function encodeOutcome(out: TaskOutcome): { json: string; parts: Parts } {
  const parts: Parts = new Map([["weights", out.weights]]);
  if (out.controlDelta) parts.set("control", out.controlDelta);
  const json = JSON.stringify({
    status: out.status,
    numExamples: out.numExamples,
    metrics: out.metrics,
    dropped: out.dropped,
    parts: [...parts.keys()],
  });
  return { json, parts };
}

/** The parts an outcome's JSON announces. */
export function outcomeParts(json: string): string[] {
  try {
    return parseContract(OutcomeJson, parseJson(json, "outcome_json"), "outcome").parts;
  } catch (err) {
    return invalid("outcome_json", err);
  }
}

/**
 * The coordinator's side: an agent's outcome, checked (status, counts, whitelisted finite
 * metrics); its client id is the session's node id, whatever the agent might claim.
 */
export function decodeOutcome(clientId: string, json: string, parts: Parts): TaskOutcome {
  try {
    const o = parseContract(OutcomeJson, parseJson(json, "outcome_json"), "outcome");
    for (const p of o.parts)
      if (!parts.has(p)) throw new ProtocolError("TASK_INVALID", `outcome part ${p} did not arrive`);
    return {
      clientId,
      status: o.status,
      weights: parts.get("weights")!,
      ...(parts.has("control") ? { controlDelta: parts.get("control") } : {}),
      numExamples: o.numExamples,
      metrics: o.metrics,
      dropped: o.dropped,
    };
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    return invalid("outcome_json", err);
  }
}

/** A budget probe's numbers, checked. */
export function checkProbe(p: BudgetProbe): BudgetProbe {
  try {
    return parseContract(Probe, p, "probe");
  } catch (err) {
    return invalid("probe", err);
  }
}
