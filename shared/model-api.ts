/**
 * The HTTP shapes of the model management API (/v1/models), shared by the
 * API, its OpenAPI document and the SDK.
 */
import { z } from 'zod';
import { SubmittedJob } from './job-api.ts';
import { KeepAlive, OllamaOptions } from './ollama-options.ts';

/**
 * An Ollama model name: `[host/][namespace/]model[:tag]`. In a URL path it
 * must be percent-encoded (`library%2Fllama3%3A8b`), since it may hold `/`.
 */
export const ModelName = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._\-/:]*$/, 'letters, digits and . _ - / : only, starting with a letter or digit');
export type ModelName = z.infer<typeof ModelName>;

/** Ollama's canonical form: a name without a tag means `:latest` (`all-minilm` is `all-minilm:latest`). */
export function normalizeModelName(name: string): string {
  const last = name.slice(name.lastIndexOf('/') + 1);
  return last.includes(':') ? name : `${name}:latest`;
}

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
  /** Loaded in memory now (listed by /api/ps). */
  loaded: z.boolean(),
  /** The model this one was created from, when Ollama recorded one. */
  parent: z.string().nullable(),
});
export type ModelSummary = z.infer<typeof ModelSummary>;

export const ModelList = z.object({ items: z.array(ModelSummary) });
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

export const RunningModels = z.object({ items: z.array(RunningModel) });
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

export const ModelLoadState = z.object({
  name: z.string(),
  loaded: z.boolean(),
  expiresAt: z.string().nullable(),
});
export type ModelLoadState = z.infer<typeof ModelLoadState>;

export const PullModelBody = z
  .object({
    model: ModelName,
    /** Allow a registry over plain HTTP or with an unverified certificate. */
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
