/**
 * The HTTP shapes of the model management API (/v1/models), shared by the
 * API, its OpenAPI document and the SDK. Management acts on every Ollama
 * host: lists say which host has what, changes answer per host.
 */
import { z } from 'zod';
import { SubmittedJob } from './job-api.ts';
import { ModelName } from './model-name.ts';
import { KeepAlive, OllamaOptions } from './ollama-options.ts';

/** Whether an Ollama host answered a request that asked every host. */
export const HostReach = z.object({
  host: z.string(),
  up: z.boolean(),
  /** Why it did not answer (or why part of the answer is missing). */
  error: z.string().nullable(),
});
export type HostReach = z.infer<typeof HostReach>;

/** One host that has a model installed. */
export const ModelOnHost = z.object({
  host: z.string(),
  /** The digest there: hosts can hold different builds under one name. */
  digest: z.string(),
  loaded: z.boolean(),
});
export type ModelOnHost = z.infer<typeof ModelOnHost>;

/** What a change did on one host. */
export const HostResult = z.object({
  host: z.string(),
  /**
   * `applied`: done there; `skipped`: nothing to do there (e.g. the source is not installed on
   * that host, or the model is not); `failed`: Ollama refused or failed; `unreachable`: the host did not answer.
   */
  outcome: z.enum(['applied', 'skipped', 'failed', 'unreachable']),
  detail: z.string().nullable(),
});
export type HostResult = z.infer<typeof HostResult>;

/** Per-host results of a change to every host. */
const HostResults = {
  results: z.array(HostResult),
  /** False when some host failed or did not answer: it may still be in the old state. */
  complete: z.boolean(),
};

export const ModelSummary = z.object({
  name: z.string(),
  digest: z.string(),
  sizeBytes: z.number().int(),
  modifiedAt: z.string(),
  format: z.string().nullable(),
  family: z.string().nullable(),
  families: z.array(z.string()),
  /** As Ollama reports it, e.g. "134.52M". */
  parameterSize: z.string().nullable(),
  /** e.g. "Q4_1", "F16". */
  quantization: z.string().nullable(),
  /** The context the model was trained for (`<arch>.context_length`), not the num_ctx it runs with. */
  contextLength: z.number().int().nullable(),
  /** Ollama's capabilities: completion, embedding, tools, insert, vision, thinking. */
  capabilities: z.array(z.string()),
  /** Loaded in memory now on some host (listed by its /api/ps). */
  loaded: z.boolean(),
  /** The model this one was created from, when Ollama recorded one. */
  parent: z.string().nullable(),
  /** Every host that has it installed, in configuration order; the fields above are the first one's. */
  hosts: z.array(ModelOnHost),
});
export type ModelSummary = z.infer<typeof ModelSummary>;

export const ModelList = z.object({
  /** Every model some host has, once, by canonical name. */
  items: z.array(ModelSummary),
  /** Every configured host: a host that did not answer is listed here, not left out silently. */
  hosts: z.array(HostReach),
});
export type ModelList = z.infer<typeof ModelList>;

export const ModelDetails = ModelSummary.extend({
  architecture: z.string().nullable(),
  parameterCount: z.number().nullable(),
  template: z.string().nullable(),
  system: z.string().nullable(),
  /** The model's default parameters (Modelfile PARAMETER lines); repeated keys such as `stop` become arrays. */
  parameters: z.record(z.string(), z.unknown()),
});
export type ModelDetails = z.infer<typeof ModelDetails>;

export const RunningModel = z.object({
  name: z.string(),
  /** The Ollama host it is loaded on: a model loaded on two hosts is listed twice. */
  host: z.string(),
  digest: z.string(),
  /** Memory the loaded model takes, in all. */
  sizeBytes: z.number().int(),
  /** The part of it in GPU memory. */
  vramBytes: z.number().int(),
  /** The num_ctx it was loaded with. */
  contextLength: z.number().int().nullable(),
  /** When Ollama unloads it unless it is used again. */
  expiresAt: z.string().nullable(),
  family: z.string().nullable(),
  parameterSize: z.string().nullable(),
  quantization: z.string().nullable(),
});
export type RunningModel = z.infer<typeof RunningModel>;

export const RunningModels = z.object({ items: z.array(RunningModel), hosts: z.array(HostReach) });
export type RunningModels = z.infer<typeof RunningModels>;

/** A Modelfile as JSON: a new model from an installed one, with its own system prompt, template or parameters. */
export const CreateModelBody = z
  .object({
    name: ModelName,
    /** An installed model; create never pulls. */
    from: ModelName,
    system: z.string().max(32_000).optional(),
    template: z.string().max(32_000).optional(),
    /** Default options, in Ollama's names and with the same ranges requests accept. */
    parameters: OllamaOptions.optional(),
    /** Quantize the weights (only from an F16 or F32 model): a smaller model with its own weights file. */
    quantize: z.enum(['q4_K_M', 'q4_K_S', 'q8_0']).optional(),
  })
  .strict();
export type CreateModelBody = z.infer<typeof CreateModelBody>;

export const CopyModelBody = z.object({ destination: ModelName }).strict();
export type CopyModelBody = z.infer<typeof CopyModelBody>;

export const LoadModelBody = z
  .object({
    /** How long the model stays loaded when idle. @defaultValue PARLEY_MODEL_LOAD_KEEP_ALIVE (30m) */
    keep_alive: KeepAlive.optional(),
  })
  .strict();
export type LoadModelBody = z.infer<typeof LoadModelBody>;

/** A created or copied model, and what happened on each host. */
export const ModelChange = ModelDetails.extend(HostResults);
export type ModelChange = z.infer<typeof ModelChange>;

export const DeletedModel = z.object({ name: z.string(), ...HostResults });
export type DeletedModel = z.infer<typeof DeletedModel>;

export const ModelLoadState = z.object({
  name: z.string(),
  /** Loaded on at least one host. */
  loaded: z.boolean(),
  /** The latest unload time over the hosts where it is loaded. */
  expiresAt: z.string().nullable(),
  /** Every host that has it installed, and whether it is loaded there now. */
  hosts: z.array(z.object({ host: z.string(), loaded: z.boolean(), expiresAt: z.string().nullable() })),
  ...HostResults,
});
export type ModelLoadState = z.infer<typeof ModelLoadState>;

export const PullModelBody = z
  .object({
    model: ModelName,
    /**
     * Allow a registry over plain HTTP or with an unverified certificate: only for a registry host on
     * PARLEY_MODEL_PULL_INSECURE_REGISTRIES. A name with a registry host of its own needs that host
     * on PARLEY_MODEL_PULL_REGISTRIES.
     */
    insecure: z.boolean().optional(),
  })
  .strict();
export type PullModelBody = z.infer<typeof PullModelBody>;

/** A pull is a job: follow it at `links.self` / `links.events`. */
export const PullModelAccepted = SubmittedJob.extend({
  model: z.string(),
  /** True when a pull of the same model was already queued or running: this is that job. */
  deduplicated: z.boolean(),
});
export type PullModelAccepted = z.infer<typeof PullModelAccepted>;

/** GET /v1/models/status: what the status poller knows of every Ollama host and each model on it. */
export const HostModelStatus = z.object({
  host: z.string(),
  installed: z.boolean(),
  loaded: z.boolean(),
  digest: z.string().nullable(),
  /** Size on disk (from /api/tags). */
  diskBytes: z.number().nullable(),
  /** Memory while loaded, and the part of it in VRAM (from /api/ps). */
  memoryBytes: z.number().nullable(),
  vramBytes: z.number().nullable(),
  /** When Ollama will unload it (keep_alive), if loaded. */
  expiresAt: z.string().nullable(),
});
export type HostModelStatus = z.infer<typeof HostModelStatus>;

export const ModelAvailability = z.object({
  /** The canonical name (shared/model-name.ts): `all-minilm` is reported as `all-minilm:latest`. */
  model: z.string(),
  /** Installed on at least one host that is not down. */
  installed: z.boolean(),
  /** Loaded on at least one host that is not down. */
  loaded: z.boolean(),
  hosts: z.array(HostModelStatus),
});
export type ModelAvailability = z.infer<typeof ModelAvailability>;

export const OllamaHostStatus = z.object({
  host: z.string(),
  /** null until the first poll answered or failed. */
  up: z.boolean().nullable(),
  version: z.string().nullable(),
  checkedAt: z.string().nullable(),
  /** When `up` last changed (or was first observed). */
  since: z.string().nullable(),
  error: z.string().nullable(),
  installed: z.array(z.string()),
  loaded: z.array(z.string()),
});
export type OllamaHostStatus = z.infer<typeof OllamaHostStatus>;

export const ModelStatusReport = z.object({ hosts: z.array(OllamaHostStatus), models: z.array(ModelAvailability) });
export type ModelStatusReport = z.infer<typeof ModelStatusReport>;
