/**
 * Model management on every Ollama host: what each has installed and
 * loaded, and the operations on them (create, copy, delete, load, unload,
 * pull). Plain functions over the Ollama client's `models`
 * (platform/ollama/models.ts); the routes in api/routes/models.ts call them.
 *
 * Reads merge the hosts' views by canonical name and say which host has
 * what; a host that did not answer is listed as such. Changes apply to every
 * host that has the model (create and copy: every host that has the source)
 * and answer per host (`results`, `complete`).
 *
 * Ollama's failures become API errors only when nothing was applied, the
 * caller's mistake first: an invalid name or request (Ollama's 400, or its
 * 500 "invalid model path") → 400 VALIDATION_FAILED; not installed → 404
 * NOT_FOUND; only when no host could answer → 503 SERVICE_UNAVAILABLE. A
 * pull is a job (model.pull), deduplicated per model while one is queued or
 * running.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RoleCap } from '../../platform/config.ts';
import type { JobLifecycle } from '../../platform/jobs/index.ts';
import type { HostFault, Inventory, ModelPlacement, OllamaClient, OnHost, ShowModel, TagModel } from '../../platform/ollama/index.ts';
import {
  canonicalModelName,
  modelPull,
  parseModelName,
  type CopyModelBody,
  type CreateModelBody,
  type DeletedModel,
  type HostReach,
  type HostResult,
  type KeepAlive,
  type LoadModelBody,
  type ModelChange,
  type ModelDetails,
  type ModelList,
  type ModelLoadState,
  type ModelSummary,
  type PullModelAccepted,
  type PullModelBody,
  type RunningModels,
} from '../../shared/index.ts';
import type { Audit, AuditAction } from '../auth/audit.ts';
import type { Actor, Role } from '../auth/permissions.ts';
import { AppError } from './errors.ts';
import { links, refusal } from './jobs.ts';
import { checkKeepAlive } from './model-policy.ts';

export interface ModelDeps {
  /** The one Ollama client: management on every host, and the status poller to refresh after a change. */
  ollama: Pick<OllamaClient, 'models' | 'status'>;
  /** Configured models, which delete refuses to remove. */
  chatModel: string;
  embedModel: string;
  /** keep_alive of a load when the request names none. */
  loadKeepAlive: string;
  /** A load's keep_alive is bounded by the role's `maxKeepAliveS`. */
  roleCaps: Record<Role, RoleCap>;
  /** Registry hosts a pull may name, and those it may reach with `insecure` (lower case). */
  pullRegistries: string[];
  pullInsecureRegistries: string[];
  redis: Redis;
  prefix: string;
  jobs: JobLifecycle;
  audit?: Audit;
}

export interface RequestMeta {
  ip?: string;
  userAgent?: string;
}

/** The error for a change that applied nowhere (or a read that found nothing): the caller's mistake before an outage. */
function upstreamError(faults: HostFault[], what: string): AppError {
  const list = faults.map((f) => `${f.host}: ${f.message}`).join('; ');
  const invalid = faults.find((f) => f.fault === 'invalid');
  if (invalid) return new AppError('VALIDATION_FAILED', { detail: `${what}: Ollama refused the request: ${invalid.message}` });
  if (faults.some((f) => f.fault === 'not-found')) return new AppError('NOT_FOUND', { detail: `${what}: ${list}` });
  return new AppError('SERVICE_UNAVAILABLE', { detail: `${what}: no Ollama host could do it: ${list}` });
}

function faultsOf(results: OnHost<unknown>[]): HostFault[] {
  return results.flatMap((r) => (r.ok ? [] : [{ host: r.host, fault: r.fault, status: r.status, message: r.message }]));
}

function reach(inv: Inventory): HostReach[] {
  return inv.hosts.map((h) => ({ host: h.host, up: h.up, error: h.error }));
}

function down(inv: Inventory): HostFault[] {
  return inv.hosts.filter((h) => !h.up).map((h) => ({ host: h.host, fault: 'unreachable' as const, message: h.error ?? 'did not answer' }));
}

/** Every host's tags and ps; 503 only when no host answered at all. */
async function inventory(deps: ModelDeps): Promise<Inventory> {
  const inv = await deps.ollama.models.inventory();
  if (!inv.hosts.some((h) => h.up)) throw upstreamError(down(inv), 'list models');
  return inv;
}

/** The installed model by any of its names, or 404 (saying which hosts could not be asked). */
function placed(inv: Inventory, name: string): ModelPlacement {
  const p = inv.models.get(canonicalModelName(name));
  if (p) return p;
  const missing = down(inv);
  const note = missing.length ? `; not asked: ${missing.map((f) => `${f.host} (${f.message})`).join(', ')}` : '';
  throw new AppError('NOT_FOUND', { detail: `No installed model "${name}" on any Ollama host that answered${note}` });
}

/** /api/show of a placed model, from the first host that answers it. */
async function show(deps: ModelDeps, p: ModelPlacement): Promise<ShowModel | undefined> {
  for (const o of p.on) {
    const r = await deps.ollama.models.show(o.host, o.tag.name);
    if (r.ok) return r.value;
  }
  return undefined;
}

function summary(p: ModelPlacement, info: ShowModel | undefined): ModelSummary {
  const tag: TagModel = p.on[0]!.tag;
  const d = info?.details ?? tag.details ?? {};
  const arch = info?.model_info?.['general.architecture'];
  const ctx = typeof arch === 'string' ? info?.model_info?.[`${arch}.context_length`] : undefined;
  return {
    name: p.name,
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
    loaded: p.on.some((o) => o.running !== undefined),
    // Ollama records the source name for models made with `from`, a blob path for models made from files.
    parent: d.parent_model && !d.parent_model.startsWith('/') ? d.parent_model : null,
    hosts: p.on.map((o) => ({ host: o.host, digest: o.tag.digest, loaded: o.running !== undefined })),
  };
}

function details(p: ModelPlacement, info: ShowModel): ModelDetails {
  const arch = info.model_info?.['general.architecture'];
  const count = info.model_info?.['general.parameter_count'];
  return {
    ...summary(p, info),
    architecture: typeof arch === 'string' ? arch : null,
    parameterCount: typeof count === 'number' ? count : null,
    template: info.template ?? null,
    system: info.system ?? null,
    parameters: parseParameters(info.parameters),
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
  const inv = await inventory(deps);
  const placements = [...inv.models.values()];
  const infos = await Promise.all(placements.map((p) => show(deps, p)));
  return { items: placements.map((p, i) => summary(p, infos[i])).sort((a, b) => a.name.localeCompare(b.name)), hosts: reach(inv) };
}

async function modelDetails(deps: ModelDeps, inv: Inventory, name: string): Promise<ModelDetails> {
  const p = placed(inv, name);
  const info = await show(deps, p);
  if (!info) throw new AppError('NOT_FOUND', { detail: `No installed model "${name}" (it went away while it was read)` });
  return details(p, info);
}

export async function getModel(deps: ModelDeps, name: string): Promise<ModelDetails> {
  return modelDetails(deps, await inventory(deps), name);
}

export async function runningModels(deps: ModelDeps): Promise<RunningModels> {
  const inv = await inventory(deps);
  const items = inv.hosts.flatMap((h) =>
    h.ps.map((m) => ({
      name: m.name,
      host: h.host,
      digest: m.digest,
      sizeBytes: m.size,
      vramBytes: m.size_vram ?? 0,
      contextLength: m.context_length ?? null,
      expiresAt: m.expires_at ?? null,
      family: m.details?.family || null,
      parameterSize: m.details?.parameter_size || null,
      quantization: m.details?.quantization_level || null,
    })),
  );
  return { items, hosts: reach(inv) };
}

async function audited<T>(
  deps: ModelDeps,
  actor: Actor,
  meta: RequestMeta,
  action: AuditAction,
  target: string,
  details: Record<string, unknown>,
  fn: () => Promise<T>,
): Promise<T> {
  const record = (outcome: 'success' | 'failure', extra: Record<string, unknown> = {}) =>
    deps.audit?.({
      action,
      outcome,
      actorId: actor.userId,
      actorName: actor.username,
      ip: meta.ip,
      userAgent: meta.userAgent,
      targetType: 'model',
      targetId: target,
      details: { ...details, ...extra },
    });
  try {
    const out = await fn();
    // Changes record what happened on each host.
    await record('success', out && typeof out === 'object' && 'results' in out ? { results: out.results } : {});
    return out;
  } catch (err) {
    await record('failure', { error: err instanceof Error ? err.message : String(err) });
    throw err;
  }
}

/** Per-host outcomes of a change: `targets` were asked; other live hosts are `skipped` with `why`; hosts that did not answer the inventory are `unreachable`. */
function results(inv: Inventory, done: OnHost<unknown>[], why: string): { results: HostResult[]; complete: boolean } {
  const out = inv.hosts.map((h): HostResult => {
    const r = done.find((d) => d.host === h.host);
    if (r)
      return r.ok
        ? { host: h.host, outcome: 'applied', detail: null }
        : { host: h.host, outcome: r.fault === 'unreachable' || r.fault === 'timeout' ? 'unreachable' : 'failed', detail: r.message };
    return h.up ? { host: h.host, outcome: 'skipped', detail: why } : { host: h.host, outcome: 'unreachable', detail: h.error };
  });
  return { results: out, complete: out.every((r) => r.outcome === 'applied' || r.outcome === 'skipped') };
}

/** After a change, every consumer of the status view (admission, routing, metric labels) sees it at once. */
async function refreshStatus(deps: ModelDeps): Promise<void> {
  await deps.ollama.status.refresh().catch(() => {});
}

/** Refuses a name some host already has: Ollama would overwrite it silently, which is as destructive as a delete (admin only). */
function mustNotExist(inv: Inventory, name: string, what: string, path: string): void {
  const p = inv.models.get(canonicalModelName(name));
  if (p) {
    throw new AppError('INVALID_STATE', {
      detail: `${what} "${name}" already exists on ${p.on.map((o) => o.host).join(', ')}; delete it first (admin) or choose another name`,
      errors: [{ path, message: 'already exists' }],
    });
  }
}

/**
 * Creates a model from an installed one, on every host that has the source
 * (the others are `skipped`). Refuses a name any host has. Never pulls:
 * `from` must be installed.
 */
export async function createModel(deps: ModelDeps, actor: Actor, body: CreateModelBody, meta: RequestMeta = {}): Promise<ModelChange> {
  return audited(deps, actor, meta, 'model.create', body.name, { from: body.from }, () =>
    withLock(deps, newNameLock(deps, body.name), `Another create or copy of "${body.name}" is in progress; retry`, () => createUnderLock(deps, body), 120_000),
  );
}

async function createUnderLock(deps: ModelDeps, body: CreateModelBody): Promise<ModelChange> {
  const inv = await inventory(deps);
  const source = inv.models.get(canonicalModelName(body.from));
  if (!source) {
    throw new AppError('VALIDATION_FAILED', {
      detail: `"${body.from}" is not an installed model on any Ollama host (create never pulls; pull it first)`,
      errors: [{ path: 'from', message: 'not an installed model' }],
    });
  }
  mustNotExist(inv, body.name, 'A model', 'name');
  // Ollama quantizes only from F16 or F32 weights, and says so with a 500 (which would read as our 503).
  if (body.quantize) {
    const levels = [...new Set(source.on.map((o) => (o.tag.details?.quantization_level ?? '').toUpperCase()).filter(Boolean))];
    if (levels.length && !levels.some((l) => l === 'F16' || l === 'F32'))
      throw new AppError('VALIDATION_FAILED', {
        detail: `"${body.from}" is ${levels.join(', ')}; quantize applies only to F16 or F32 weights`,
        errors: [{ path: 'quantize', message: `the source is ${levels.join(', ')}, not F16 or F32` }],
      });
  }
  const done = await Promise.all(
    source.on.map((o) =>
      deps.ollama.models.create(o.host, {
        model: body.name,
        from: o.tag.name,
        system: body.system,
        template: body.template,
        parameters: body.parameters,
        quantize: body.quantize,
      }),
    ),
  );
  if (!done.some((r) => r.ok)) throw upstreamError(faultsOf(done), `create ${body.name}`);
  await refreshStatus(deps);
  return {
    ...(await modelDetails(deps, await inventory(deps), body.name)),
    ...results(inv, done, `the source "${body.from}" is not installed on this host`),
  };
}

/** Copies a model under a new name (admin) on every host that has it. The destination must not exist, for the same reason as create. */
export async function copyModel(deps: ModelDeps, actor: Actor, name: string, body: CopyModelBody, meta: RequestMeta = {}): Promise<ModelChange> {
  return audited(deps, actor, meta, 'model.copy', name, { destination: body.destination }, () =>
    withLock(deps, newNameLock(deps, body.destination), `Another create or copy of "${body.destination}" is in progress; retry`, async () => {
      const inv = await inventory(deps);
      const source = placed(inv, name);
      mustNotExist(inv, body.destination, 'The destination', 'destination');
      const done = await Promise.all(source.on.map((o) => deps.ollama.models.copy(o.host, o.tag.name, body.destination)));
      if (!done.some((r) => r.ok)) throw upstreamError(faultsOf(done), `copy ${name}`);
      await refreshStatus(deps);
      return { ...(await modelDetails(deps, await inventory(deps), body.destination)), ...results(inv, done, `"${name}" is not installed on this host`) };
    }),
  );
}

/** Deletes a model (admin) from every host that has it. The configured chat and embedding models are refused: every job depends on them. */
export async function deleteModel(deps: ModelDeps, actor: Actor, name: string, meta: RequestMeta = {}): Promise<DeletedModel> {
  return audited(deps, actor, meta, 'model.delete', name, {}, async () => {
    const n = canonicalModelName(name);
    if (n === canonicalModelName(deps.chatModel) || n === canonicalModelName(deps.embedModel)) {
      throw new AppError('INVALID_STATE', {
        detail: `"${name}" is a configured model (PARLEY_CHAT_MODEL / PARLEY_EMBED_MODEL); change the configuration first`,
      });
    }
    const inv = await inventory(deps);
    const p = placed(inv, name);
    const done = await Promise.all(p.on.map((o) => deps.ollama.models.delete(o.host, o.tag.name)));
    if (!done.some((r) => r.ok)) throw upstreamError(faultsOf(done), `delete ${name}`);
    await refreshStatus(deps);
    return { name: p.name, ...results(inv, done, 'not installed on this host') };
  });
}

/** Where the model is loaded now, host by host. */
async function loadState(deps: ModelDeps, name: string): Promise<Omit<ModelLoadState, 'results' | 'complete'>> {
  const inv = await deps.ollama.models.inventory();
  const p = inv.models.get(canonicalModelName(name));
  const key = canonicalModelName(name);
  // By name only: a copy shares its source's runner, but it was not asked to load under this name.
  const hosts = (p?.on ?? []).map((o) => {
    const r = inv.hosts.find((h) => h.host === o.host)?.ps.find((m) => canonicalModelName(m.name) === key);
    return { host: o.host, loaded: r !== undefined, expiresAt: r?.expires_at ?? null };
  });
  const expiries = hosts.flatMap((h) => (h.expiresAt ? [h.expiresAt] : [])).sort();
  return { name: p?.name ?? name, loaded: hosts.some((h) => h.loaded), expiresAt: expiries.at(-1) ?? null, hosts };
}

function completion(info: ShowModel | undefined): boolean {
  return (info?.capabilities ?? ['completion']).includes('completion');
}

/** Loads a model into memory for `keep_alive` on every host that has it. The keep_alive is bounded by the role's `maxKeepAliveS`. */
export async function loadModel(deps: ModelDeps, actor: Actor, name: string, body: LoadModelBody, meta: RequestMeta = {}): Promise<ModelLoadState> {
  const keepAlive: KeepAlive = body.keep_alive ?? deps.loadKeepAlive;
  return audited(deps, actor, meta, 'model.load', name, { keepAlive }, async () => {
    checkKeepAlive(actor.role, deps.roleCaps[actor.role], body.keep_alive, 'keep_alive');
    const inv = await inventory(deps);
    const p = placed(inv, name);
    const kind = completion(await show(deps, p));
    const done = await Promise.all(p.on.map((o) => deps.ollama.models.residency(o.host, o.tag.name, keepAlive, kind)));
    if (!done.some((r) => r.ok)) throw upstreamError(faultsOf(done), `load ${name}`);
    await refreshStatus(deps);
    return { ...(await loadState(deps, name)), ...results(inv, done, 'not installed on this host') };
  });
}

/**
 * Unloads a model now (keep_alive 0) on every host where it is loaded;
 * hosts where it is not are `skipped` (asking an unloaded embedding model to
 * expire would load it first).
 */
export async function unloadModel(deps: ModelDeps, actor: Actor, name: string, meta: RequestMeta = {}): Promise<ModelLoadState> {
  return audited(deps, actor, meta, 'model.unload', name, {}, async () => {
    const inv = await inventory(deps);
    const p = placed(inv, name);
    const before = await loadState(deps, name);
    const loadedOn = p.on.filter((o) => before.hosts.some((h) => h.host === o.host && h.loaded));
    const kind = loadedOn.length ? completion(await show(deps, p)) : true;
    const done = await Promise.all(loadedOn.map((o) => deps.ollama.models.residency(o.host, o.tag.name, 0, kind)));
    if (loadedOn.length && !done.some((r) => r.ok)) throw upstreamError(faultsOf(done), `unload ${name}`);
    // Ollama stops the runner just after it answers; wait briefly so the answer reflects it.
    const deadline = Date.now() + 5000;
    let state = await loadState(deps, name);
    while (loadedOn.length && state.loaded && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      state = await loadState(deps, name);
    }
    await refreshStatus(deps);
    return { ...state, ...results(inv, done, 'not loaded on this host') };
  });
}

/**
 * The pull policy: a name without a registry host of its own pulls from
 * Ollama's default registry; any other host must be on
 * PARLEY_MODEL_PULL_REGISTRIES, and `insecure` needs the host on
 * PARLEY_MODEL_PULL_INSECURE_REGISTRIES. Otherwise an operator could make
 * every Ollama host fetch from an internal address.
 */
function checkPullPolicy(deps: ModelDeps, body: PullModelBody): void {
  const parsed = parseModelName(body.model)!;
  if (parsed.explicitHost && !deps.pullRegistries.includes(parsed.host)) {
    throw new AppError('FORBIDDEN', {
      detail: `Pulls from registry host "${parsed.host}" are not allowed; an admin can allow it with PARLEY_MODEL_PULL_REGISTRIES`,
      errors: [{ path: 'model', message: 'registry host not allowed' }],
    });
  }
  if (body.insecure && !(parsed.explicitHost && deps.pullInsecureRegistries.includes(parsed.host))) {
    throw new AppError('FORBIDDEN', {
      detail: `Insecure pulls from "${parsed.host}" are not allowed; an admin can allow a registry host with PARLEY_MODEL_PULL_INSECURE_REGISTRIES`,
      errors: [{ path: 'insecure', message: 'not allowed for this registry' }],
    });
  }
}

/** Compare-and-delete: release the pull lock only if we still hold it. KEYS[1] lock, ARGV[1] token; returns 1 if deleted. */
const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * Runs `fn` holding a short Redis lock (`key`, across API processes), waiting up to 5 s for it; answers
 * 503 `busy` when another holder keeps it longer. The lock expires by itself after `ttlMs`, should its
 * holder die.
 */
async function withLock<T>(deps: Pick<ModelDeps, 'redis'>, key: string, busy: string, fn: () => Promise<T>, ttlMs = 10_000): Promise<T> {
  const token = randomUUID();
  const deadline = Date.now() + 5000;
  while ((await deps.redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') {
    if (Date.now() > deadline) throw new AppError('SERVICE_UNAVAILABLE', { detail: busy });
    await new Promise((r) => setTimeout(r, 25));
  }
  try {
    return await fn();
  } finally {
    await deps.redis.eval(RELEASE_LOCK, 1, key, token).catch(() => {});
  }
}

/** Creates and copies of one new name take turns, so "must not exist" holds for each of them (not only for the first to check). */
const newNameLock = (deps: Pick<ModelDeps, 'prefix'>, name: string) => `${deps.prefix}:models:name-lock:${canonicalModelName(name)}`;

/**
 * Enqueues a model.pull job (which pulls into every host), or returns the
 * one already queued or running for the same model. Submitters for one
 * model are serialised by a short Redis lock ({prefix}:models:pull-lock:{model},
 * SET NX PX 10 s) around "look in Postgres for a non-terminal pull, else
 * insert and enqueue", so Postgres stays the record and the lock only orders
 * the check.
 */
export async function pullModel(deps: ModelDeps, actor: Actor, body: PullModelBody, meta: RequestMeta = {}): Promise<PullModelAccepted> {
  const model = canonicalModelName(body.model);
  const record = (outcome: 'success' | 'failure', details: Record<string, unknown>) =>
    deps.audit?.({
      action: 'model.pull',
      outcome,
      actorId: actor.userId,
      actorName: actor.username,
      ip: meta.ip,
      userAgent: meta.userAgent,
      targetType: 'model',
      targetId: model,
      details,
    });
  try {
    checkPullPolicy(deps, body);
  } catch (err) {
    await record('failure', { error: (err as Error).message, insecure: body.insecure ?? false });
    throw err;
  }
  return withLock(deps, `${deps.prefix}:models:pull-lock:${model}`, `Another pull request for ${model} is being recorded; retry`, async () => {
    const existing = (await deps.jobs.activeByInput(modelPull.kind, 'model', model)) as { id: string; state: 'queued' | 'active' } | undefined;
    if (existing) {
      await record('success', { jobId: existing.id, deduplicated: true });
      return { id: existing.id, kind: modelPull.kind, state: existing.state, links: links(existing.id), model, deduplicated: true };
    }
    const input = modelPull.input.parse({ model, insecure: body.insecure ?? false });
    let id: string;
    try {
      id = (await deps.jobs.accept({ def: modelPull, input, ownerId: actor.userId, priority: modelPull.defaults.priority })).row.id;
    } catch (err) {
      throw refusal(err, 'The queue could not take the pull; nothing was accepted. Retry later.');
    }
    await record('success', { jobId: id, deduplicated: false });
    return { id, kind: modelPull.kind, state: 'queued', links: links(id), model, deduplicated: false };
  });
}
