/**
 * Model management: what Ollama has installed and loaded, and the operations
 * on it (create, copy, delete, load, unload, pull). Plain functions over
 * Ollama's REST API with fetch; the routes in api/routes/models.ts call them.
 *
 * Ollama errors become API errors: unreachable or 5xx → 503
 * SERVICE_UNAVAILABLE, 404 → NOT_FOUND, 400 → VALIDATION_FAILED. A pull is a
 * job (model.pull), deduplicated per model while one is queued or running.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { JobLifecycle } from '../../platform/jobs/index.ts';
import {
  modelPull, normalizeModelName,
  type CopyModelBody, type CreateModelBody, type KeepAlive, type LoadModelBody, type ModelDetails, type ModelList, type ModelLoadState,
  type ModelSummary, type PullModelAccepted, type PullModelBody, type RunningModel, type RunningModels,
} from '../../shared/index.ts';
import type { Audit, AuditAction } from '../auth/audit.ts';
import type { Actor } from '../auth/permissions.ts';
import { AppError } from '../http/app-error.ts';
import { links, refusal } from './jobs.ts';

export interface ModelDeps {
  /** Ollama's base URL. */
  host: string;
  /** Configured models, which delete refuses to remove. */
  chatModel: string;
  embedModel: string;
  /** keep_alive of a load when the request names none. */
  loadKeepAlive: string;
  redis: Redis;
  prefix: string;
  jobs: JobLifecycle;
  audit?: Audit;
  /** Quick reads (tags, show, ps, copy, delete). @defaultValue 10 s */
  timeoutMs?: number;
  /** Create and load, which read or map a model's weights. @defaultValue 120 s */
  slowTimeoutMs?: number;
}

export interface RequestMeta {
  ip?: string;
  userAgent?: string;
}

interface TagModel {
  name: string;
  model?: string;
  modified_at: string;
  size: number;
  digest: string;
  details?: { parent_model?: string; format?: string; family?: string; families?: string[] | null; parameter_size?: string; quantization_level?: string };
}
interface ShowResponse {
  modelfile?: string;
  parameters?: string;
  template?: string;
  system?: string;
  details?: TagModel['details'];
  model_info?: Record<string, unknown>;
  capabilities?: string[];
  modified_at?: string;
}
interface PsModel {
  name: string;
  model?: string;
  size: number;
  digest: string;
  details?: TagModel['details'];
  expires_at?: string;
  size_vram?: number;
  context_length?: number;
}

class OllamaHttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function call<T>(deps: Pick<ModelDeps, 'host' | 'timeoutMs'>, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, timeoutMs = deps.timeoutMs ?? 10_000): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${deps.host}${path}`, {
      method,
      headers: body === undefined ? undefined : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (cause) {
    throw new AppError('SERVICE_UNAVAILABLE', { detail: `Ollama did not answer ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, cause });
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = {};
  }
  const error = (json as { error?: string }).error;
  if (!res.ok || error) throw new OllamaHttpError(res.status, error ?? (text || `HTTP ${res.status}`));
  return json as T;
}

/** Ollama's error as ours: 404 → NOT_FOUND, 4xx → VALIDATION_FAILED, the rest → SERVICE_UNAVAILABLE. */
function asAppError(err: unknown, what: string): unknown {
  if (!(err instanceof OllamaHttpError)) return err;
  if (err.status === 404) return new AppError('NOT_FOUND', { detail: `${what}: ${err.message}` });
  if (err.status >= 400 && err.status < 500) return new AppError('VALIDATION_FAILED', { detail: `${what}: ${err.message}`, cause: err });
  return new AppError('SERVICE_UNAVAILABLE', { detail: `${what}: Ollama answered ${err.status}: ${err.message}`, cause: err });
}

async function show(deps: ModelDeps, name: string): Promise<ShowResponse | undefined> {
  try {
    return await call<ShowResponse>(deps, 'POST', '/api/show', { model: name });
  } catch (err) {
    if (err instanceof OllamaHttpError && err.status === 404) return undefined;
    throw asAppError(err, `show ${name}`);
  }
}

async function tags(deps: ModelDeps): Promise<TagModel[]> {
  try {
    return (await call<{ models?: TagModel[] }>(deps, 'GET', '/api/tags')).models ?? [];
  } catch (err) {
    throw asAppError(err, 'list models');
  }
}

async function ps(deps: ModelDeps): Promise<PsModel[]> {
  try {
    return (await call<{ models?: PsModel[] }>(deps, 'GET', '/api/ps')).models ?? [];
  } catch (err) {
    throw asAppError(err, 'list running models');
  }
}

function isLoaded(running: PsModel[], name: string, digest: string | undefined): boolean {
  const n = normalizeModelName(name);
  // A copy shares its source's digest and runner, so either match means the model answers from memory.
  return running.some((r) => normalizeModelName(r.name) === n || (digest !== undefined && r.digest === digest));
}

function summary(tag: TagModel, info: ShowResponse | undefined, running: PsModel[]): ModelSummary {
  const d: NonNullable<TagModel['details']> = info?.details ?? tag.details ?? {};
  const arch = info?.model_info?.['general.architecture'];
  const ctx = typeof arch === 'string' ? info?.model_info?.[`${arch}.context_length`] : undefined;
  return {
    name: tag.name,
    digest: tag.digest,
    sizeBytes: tag.size,
    modifiedAt: tag.modified_at,
    format: d.format || null,
    family: d.family || null,
    families: d.families ?? [],
    parameterSize: d.parameter_size || null,
    quantization: d.quantization_level || null,
    contextLength: typeof ctx === 'number' ? ctx : null,
    capabilities: info?.capabilities ?? [],
    loaded: isLoaded(running, tag.name, tag.digest),
    // Ollama records the source name for models made with `from`, a blob path for models made from files.
    parent: d.parent_model && !d.parent_model.startsWith('/') ? d.parent_model : null,
  };
}

/** Modelfile PARAMETER lines ("stop    \"<|im_end|>\"") as JSON; a repeated key becomes an array. */
export function parseParameters(text: string | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const line of (text ?? '').split('\n')) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, key, raw] = m as unknown as [string, string, string];
    let value: unknown = raw;
    if (/^".*"$/.test(raw)) {
      try {
        value = JSON.parse(raw);
      } catch {
        value = raw.slice(1, -1);
      }
    } else if (/^-?\d+(\.\d+)?(e[-+]?\d+)?$/i.test(raw)) value = Number(raw);
    else if (raw === 'true' || raw === 'false') value = raw === 'true';
    const prev = out[key];
    out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

export async function listModels(deps: ModelDeps): Promise<ModelList> {
  const [installed, running] = await Promise.all([tags(deps), ps(deps)]);
  const infos = await Promise.all(installed.map((t) => show(deps, t.name)));
  return { items: installed.map((t, i) => summary(t, infos[i], running)).sort((a, b) => a.name.localeCompare(b.name)) };
}

export async function getModel(deps: ModelDeps, name: string): Promise<ModelDetails> {
  const [info, installed, running] = await Promise.all([show(deps, name), tags(deps), ps(deps)]);
  const n = normalizeModelName(name);
  const tag = installed.find((t) => normalizeModelName(t.name) === n);
  if (!info || !tag) throw new AppError('NOT_FOUND', { detail: `No installed model "${name}"` });
  const arch = info.model_info?.['general.architecture'];
  const count = info.model_info?.['general.parameter_count'];
  return {
    ...summary(tag, info, running),
    architecture: typeof arch === 'string' ? arch : null,
    parameterCount: typeof count === 'number' ? count : null,
    template: info.template ?? null,
    system: info.system ?? null,
    parameters: parseParameters(info.parameters),
  };
}

function running(m: PsModel): RunningModel {
  return {
    name: m.name,
    digest: m.digest,
    sizeBytes: m.size,
    vramBytes: m.size_vram ?? 0,
    contextLength: m.context_length ?? null,
    expiresAt: m.expires_at ?? null,
    family: m.details?.family || null,
    parameterSize: m.details?.parameter_size || null,
    quantization: m.details?.quantization_level || null,
  };
}

export async function runningModels(deps: ModelDeps): Promise<RunningModels> {
  return { items: (await ps(deps)).map(running) };
}

/**
 * Installed model names (normalised), cached for `ttlMs`; undefined when
 * Ollama cannot say. Admission uses it to tell "not allowed" from "not installed".
 */
export function installedModelNames(deps: Pick<ModelDeps, 'host' | 'timeoutMs'>, ttlMs = 10_000): () => Promise<Set<string> | undefined> {
  let cached: { at: number; names: Set<string> } | undefined;
  return async () => {
    if (cached && Date.now() - cached.at < ttlMs) return cached.names;
    try {
      const models = (await call<{ models?: TagModel[] }>({ host: deps.host, timeoutMs: Math.min(deps.timeoutMs ?? 2000, 2000) }, 'GET', '/api/tags')).models ?? [];
      cached = { at: Date.now(), names: new Set(models.map((m) => normalizeModelName(m.name))) };
      return cached.names;
    } catch {
      return undefined;
    }
  };
}

async function audited<T>(deps: ModelDeps, actor: Actor, meta: RequestMeta, action: AuditAction, target: string, details: Record<string, unknown>, fn: () => Promise<T>): Promise<T> {
  const record = (outcome: 'success' | 'failure', extra: Record<string, unknown> = {}) =>
    deps.audit?.({ action, outcome, actorId: actor.userId, actorName: actor.username, ip: meta.ip, userAgent: meta.userAgent, targetType: 'model', targetId: target, details: { ...details, ...extra } });
  try {
    const out = await fn();
    await record('success');
    return out;
  } catch (err) {
    await record('failure', { error: err instanceof Error ? err.message : String(err) });
    throw err;
  }
}

async function mustNotExist(deps: ModelDeps, name: string, what: string): Promise<void> {
  if (await show(deps, name)) throw new AppError('INVALID_STATE', { detail: `${what} "${name}" already exists; delete it first (admin) or choose another name` });
}

/**
 * Creates a model from an installed one. Refuses an existing name: Ollama
 * would overwrite it silently, and overwriting is as destructive as a delete,
 * which only admins may do. Never pulls: `from` must be installed.
 */
export async function createModel(deps: ModelDeps, actor: Actor, body: CreateModelBody, meta: RequestMeta = {}): Promise<ModelDetails> {
  return audited(deps, actor, meta, 'model.create', body.name, { from: body.from }, async () => {
    if (!(await show(deps, body.from))) {
      throw new AppError('VALIDATION_FAILED', { detail: `"${body.from}" is not an installed model (create never pulls; pull it first)`, errors: [{ path: 'from', message: 'not an installed model' }] });
    }
    await mustNotExist(deps, body.name, 'A model');
    try {
      await call(deps, 'POST', '/api/create', { model: body.name, from: body.from, system: body.system, template: body.template, parameters: body.parameters, quantize: body.quantize, stream: false }, deps.slowTimeoutMs ?? 120_000);
    } catch (err) {
      throw asAppError(err, `create ${body.name}`);
    }
    return getModel(deps, body.name);
  });
}

/** Copies a model under a new name (admin). The destination must not exist, for the same reason as create. */
export async function copyModel(deps: ModelDeps, actor: Actor, name: string, body: CopyModelBody, meta: RequestMeta = {}): Promise<ModelDetails> {
  return audited(deps, actor, meta, 'model.copy', name, { destination: body.destination }, async () => {
    if (!(await show(deps, name))) throw new AppError('NOT_FOUND', { detail: `No installed model "${name}"` });
    await mustNotExist(deps, body.destination, 'The destination');
    try {
      await call(deps, 'POST', '/api/copy', { source: name, destination: body.destination });
    } catch (err) {
      throw asAppError(err, `copy ${name}`);
    }
    return getModel(deps, body.destination);
  });
}

/** Deletes a model (admin). The configured chat and embedding models are refused: every job depends on them. */
export async function deleteModel(deps: ModelDeps, actor: Actor, name: string, meta: RequestMeta = {}): Promise<void> {
  await audited(deps, actor, meta, 'model.delete', name, {}, async () => {
    const n = normalizeModelName(name);
    if (n === normalizeModelName(deps.chatModel) || n === normalizeModelName(deps.embedModel)) {
      throw new AppError('INVALID_STATE', { detail: `"${name}" is a configured model (PARLEY_CHAT_MODEL / PARLEY_EMBED_MODEL); change the configuration first` });
    }
    try {
      await call(deps, 'DELETE', '/api/delete', { model: name });
    } catch (err) {
      throw asAppError(err, `delete ${name}`);
    }
  });
}

/**
 * Loads a model into memory for `keep_alive`, or unloads it (keep_alive 0).
 * A completion model goes through /api/generate with no prompt, an
 * embedding-only model through /api/embed with no input: Ollama loads (or
 * expires) the runner and generates nothing.
 */
async function setResidency(deps: ModelDeps, name: string, keepAlive: KeepAlive): Promise<void> {
  const info = await show(deps, name);
  if (!info) throw new AppError('NOT_FOUND', { detail: `No installed model "${name}"` });
  const completion = (info.capabilities ?? ['completion']).includes('completion');
  try {
    if (completion) await call(deps, 'POST', '/api/generate', { model: name, keep_alive: keepAlive, stream: false }, deps.slowTimeoutMs ?? 120_000);
    else await call(deps, 'POST', '/api/embed', { model: name, input: [], keep_alive: keepAlive }, deps.slowTimeoutMs ?? 120_000);
  } catch (err) {
    throw asAppError(err, `${keepAlive === 0 ? 'unload' : 'load'} ${name}`);
  }
}

async function loadState(deps: ModelDeps, name: string): Promise<ModelLoadState> {
  const n = normalizeModelName(name);
  const r = (await ps(deps)).find((m) => normalizeModelName(m.name) === n);
  return { name, loaded: r !== undefined, expiresAt: r?.expires_at ?? null };
}

export async function loadModel(deps: ModelDeps, actor: Actor, name: string, body: LoadModelBody, meta: RequestMeta = {}): Promise<ModelLoadState> {
  const keepAlive = body.keep_alive ?? deps.loadKeepAlive;
  return audited(deps, actor, meta, 'model.load', name, { keepAlive }, async () => {
    await setResidency(deps, name, keepAlive);
    return loadState(deps, name);
  });
}

export async function unloadModel(deps: ModelDeps, actor: Actor, name: string, meta: RequestMeta = {}): Promise<ModelLoadState> {
  return audited(deps, actor, meta, 'model.unload', name, {}, async () => {
    // Asking an unloaded embedding model to expire would load it first.
    if (!(await loadState(deps, name)).loaded) {
      if (!(await show(deps, name))) throw new AppError('NOT_FOUND', { detail: `No installed model "${name}"` });
      return { name, loaded: false, expiresAt: null };
    }
    await setResidency(deps, name, 0);
    // Ollama stops the runner just after it answers; wait briefly so the answer reflects it.
    const deadline = Date.now() + 5000;
    let state = await loadState(deps, name);
    while (state.loaded && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      state = await loadState(deps, name);
    }
    return state;
  });
}

/** Compare-and-delete: release the pull lock only if we still hold it. KEYS[1] lock, ARGV[1] token; returns 1 if deleted. */
const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Enqueues a model.pull job, or returns the one already queued or running
 * for the same model. Submitters for one model are serialised by a short
 * Redis lock ({prefix}:models:pull-lock:{model}, SET NX PX 10 s) around
 * "look in Postgres for a non-terminal pull, else insert and enqueue", so
 * Postgres stays the record and the lock only orders the check.
 */
export async function pullModel(deps: ModelDeps, actor: Actor, body: PullModelBody, meta: RequestMeta = {}): Promise<PullModelAccepted> {
  const model = normalizeModelName(body.model);
  const lockKey = `${deps.prefix}:models:pull-lock:${model}`;
  const token = randomUUID();
  const deadline = Date.now() + 5000;
  while ((await deps.redis.set(lockKey, token, 'PX', 10_000, 'NX')) !== 'OK') {
    if (Date.now() > deadline) throw new AppError('SERVICE_UNAVAILABLE', { detail: `Another pull request for ${model} is being recorded; retry` });
    await new Promise((r) => setTimeout(r, 25));
  }
  try {
    const existing = (await deps.jobs.activeByInput(modelPull.kind, 'model', model)) as { id: string; state: 'queued' | 'active' } | undefined;
    if (existing) {
      await deps.audit?.({ action: 'model.pull', outcome: 'success', actorId: actor.userId, actorName: actor.username, ip: meta.ip, userAgent: meta.userAgent, targetType: 'model', targetId: model, details: { jobId: existing.id, deduplicated: true } });
      return { id: existing.id, kind: modelPull.kind, state: existing.state, links: links(existing.id), model, deduplicated: true };
    }
    const input = modelPull.input.parse({ model, insecure: body.insecure ?? false });
    let id: string;
    try {
      id = (await deps.jobs.accept({ def: modelPull, input, ownerId: actor.userId, priority: modelPull.defaults.priority })).row.id;
    } catch (err) {
      throw refusal(err, 'The queue could not take the pull; nothing was accepted. Retry later.');
    }
    await deps.audit?.({ action: 'model.pull', outcome: 'success', actorId: actor.userId, actorName: actor.username, ip: meta.ip, userAgent: meta.userAgent, targetType: 'model', targetId: model, details: { jobId: id, deduplicated: false } });
    return { id, kind: modelPull.kind, state: 'queued', links: links(id), model, deduplicated: false };
  } finally {
    await deps.redis.eval(RELEASE_LOCK, 1, lockKey, token).catch(() => {});
  }
}
