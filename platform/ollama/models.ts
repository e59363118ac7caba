/**
 * Model management on every Ollama host: list, show, ps, create, copy,
 * delete, load, unload and pull, through the `ollama` package.
 *
 * Management is rare and not latency-critical, so it needs none of what the
 * hand-written transport gives chat and embed (the limiter, the breaker, a
 * connect clock apart from the first-token clock). Every call here has one
 * deadline and the caller's abort signal, both passed to the package through
 * its `fetch` option: the package itself only lets a streamed request be
 * aborted. The browser build of the package is used on purpose: the Node
 * build's `create` looks for a local file named like `from` relative to the
 * process's working directory, which would let a model name probe our disk.
 *
 * Nothing here throws for a host's failure: each call answers per host with
 * `OnHost` (a value, or a `ManageFault` with Ollama's message), so callers
 * report a host that is down instead of silently skipping it, and decide
 * themselves what a partial result means. Only the caller's own abort
 * rejects.
 */
import { Ollama, type ProgressResponse } from 'ollama/browser';
import { canonicalModelName, type KeepAlive } from '../../shared/index.ts';

/** What went wrong on one host, by what it means for the caller. */
export type ManageFault =
  /** Refused, reset, name lookup failed: the host did not answer. */
  | 'unreachable'
  /** No answer within the call's deadline (or, for a pull, no progress within its idle time). */
  | 'timeout'
  /** 404: the model is not on this host (for a pull: not in its registry). */
  | 'not-found'
  /** The request is wrong: a 4xx, or Ollama's 500 for a name it cannot parse ("invalid model path"). */
  | 'invalid'
  /** A pull: Ollama could not reach the registry (DNS, refused, TLS, timeout on its side). */
  | 'registry-unreachable'
  /** Any other failure Ollama reported. */
  | 'failed';

export interface HostFault {
  host: string;
  fault: ManageFault;
  /** Ollama's HTTP status, when it answered one. */
  status?: number;
  message: string;
}

export type OnHost<T> = ({ ok: true; value: T } | ({ ok: false } & Omit<HostFault, 'host'>)) & { host: string };

export interface ModelDetailsRaw {
  parent_model?: string;
  format?: string;
  family?: string;
  families?: string[] | null;
  parameter_size?: string;
  quantization_level?: string;
}
/** An entry of /api/tags. */
export interface TagModel {
  name: string;
  model?: string;
  modified_at: string;
  size: number;
  digest: string;
  details?: ModelDetailsRaw;
}
/** The answer of /api/show. */
export interface ShowModel {
  parameters?: string;
  template?: string;
  system?: string;
  details?: ModelDetailsRaw;
  model_info?: Record<string, unknown>;
  capabilities?: string[];
  modified_at?: string;
}
/** An entry of /api/ps. */
export interface PsModel {
  name: string;
  model?: string;
  size: number;
  digest: string;
  details?: ModelDetailsRaw;
  expires_at?: string;
  size_vram?: number;
  context_length?: number;
}

/** One host as an inventory saw it. `up` is whether it answered /api/tags. */
export interface HostInventory {
  host: string;
  up: boolean;
  error: string | null;
  tags: TagModel[];
  ps: PsModel[];
}

/** Where one installed model is: each host that has it, with its /api/tags entry and its /api/ps entry if loaded. */
export interface ModelPlacement {
  /** The canonical name (shared/model-name.ts). */
  key: string;
  /** The name as the first host that has it reports it. */
  name: string;
  on: { host: string; tag: TagModel; running: PsModel | undefined }[];
}

export interface Inventory {
  hosts: HostInventory[];
  /** Installed models by canonical name, hosts in configuration order. */
  models: Map<string, ModelPlacement>;
}

export interface CreateRequest {
  model: string;
  from: string;
  system?: string;
  template?: string;
  parameters?: Record<string, unknown>;
  quantize?: string;
}

export interface PullOptions {
  insecure: boolean;
  signal?: AbortSignal;
  /** Gives up after this long in all. */
  timeoutMs: number;
  /** Gives up when Ollama reports nothing for this long. */
  idleTimeoutMs: number;
  /** Each progress line of each host, as Ollama sends it. */
  onProgress?(host: string, line: ProgressResponse): void;
}

export interface ManageOptions {
  /** Quick calls: tags, ps, show, copy, delete. @defaultValue 10 000 ms */
  timeoutMs: number;
  /** Create and load, which read or map a model's weights. @defaultValue 120 000 ms */
  slowTimeoutMs: number;
}

export const defaultManageOptions: ManageOptions = { timeoutMs: 10_000, slowTimeoutMs: 120_000 };

// Ollama answers 500 for some names it cannot parse; those are the caller's mistake, not an outage.
const invalidName = /invalid model path|invalid model name|invalid name|is invalid/i;
// Go's net errors as Ollama relays them from its registry client.
const registryUnreachable =
  /dial tcp|no such host|lookup |connection refused|network is unreachable|i\/o timeout|tls: |certificate|context deadline exceeded|connection reset/i;
const notInRegistry = /file does not exist|manifest unknown|not found|pull access denied/i;

/** What an Ollama answer means, from its status and message. Exported for the unit test of the mapping. */
export function faultOf(status: number | undefined, message: string): ManageFault {
  if (status === 404) return 'not-found';
  if (status !== undefined && status >= 400 && status < 500) return 'invalid';
  if (invalidName.test(message)) return 'invalid';
  return 'failed';
}

/** A pull's failure, from the error Ollama reports (in an `{error}` line or a 500). */
export function pullFaultOf(status: number | undefined, message: string): ManageFault {
  if (registryUnreachable.test(message)) return 'registry-unreachable';
  if (status === 404 || notInRegistry.test(message)) return 'not-found';
  return faultOf(status, message);
}

function errCode(err: unknown): string | undefined {
  for (let e: unknown = err, i = 0; e && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

export class OllamaModels {
  readonly opts: ManageOptions;

  constructor(
    /** Base URLs, in configuration order. */
    readonly hosts: readonly string[],
    opts: Partial<ManageOptions> = {},
  ) {
    this.opts = { ...defaultManageOptions, ...opts };
  }

  /** /api/tags and /api/ps of every host, merged by canonical name. */
  async inventory(signal?: AbortSignal): Promise<Inventory> {
    const hosts = await Promise.all(
      this.hosts.map(async (host): Promise<HostInventory> => {
        const [tags, ps] = await Promise.all([this.list(host, signal), this.ps(host, signal)]);
        if (!tags.ok) return { host, up: false, error: tags.message, tags: [], ps: [] };
        return { host, up: true, error: ps.ok ? null : ps.message, tags: tags.value, ps: ps.ok ? ps.value : [] };
      }),
    );
    const models = new Map<string, ModelPlacement>();
    for (const h of hosts) {
      for (const tag of h.tags) {
        const key = canonicalModelName(tag.name);
        // A copy shares its source's digest and runner, so either match means the model answers from memory.
        const running = h.ps.find((r) => canonicalModelName(r.name) === key) ?? h.ps.find((r) => r.digest === tag.digest);
        const placement = models.get(key) ?? { key, name: tag.name, on: [] };
        placement.on.push({ host: h.host, tag, running });
        models.set(key, placement);
      }
    }
    return { hosts, models };
  }

  list(host: string, signal?: AbortSignal): Promise<OnHost<TagModel[]>> {
    return this.on(host, this.opts.timeoutMs, signal, async (api) => ((await api.list()) as unknown as { models?: TagModel[] }).models ?? []);
  }

  ps(host: string, signal?: AbortSignal): Promise<OnHost<PsModel[]>> {
    return this.on(host, this.opts.timeoutMs, signal, async (api) => ((await api.ps()) as unknown as { models?: PsModel[] }).models ?? []);
  }

  /** `verbose` adds the full tokenizer arrays to `model_info` (the vector store reads a model's vocabulary from them). */
  show(host: string, name: string, signal?: AbortSignal, opts: { verbose?: boolean } = {}): Promise<OnHost<ShowModel>> {
    return this.on(
      host,
      this.opts.timeoutMs,
      signal,
      async (api) => (await api.show({ model: name, ...(opts.verbose ? { verbose: true } : {}) })) as unknown as ShowModel,
    );
  }

  create(host: string, req: CreateRequest, signal?: AbortSignal): Promise<OnHost<void>> {
    return this.on(host, this.opts.slowTimeoutMs, signal, async (api) => {
      await api.create({ ...req, stream: false });
    });
  }

  copy(host: string, source: string, destination: string, signal?: AbortSignal): Promise<OnHost<void>> {
    return this.on(host, this.opts.timeoutMs, signal, async (api) => {
      await api.copy({ source, destination });
    });
  }

  delete(host: string, name: string, signal?: AbortSignal): Promise<OnHost<void>> {
    return this.on(host, this.opts.timeoutMs, signal, async (api) => {
      await api.delete({ model: name });
    });
  }

  /**
   * Loads a model for `keepAlive`, or unloads it (0). A completion model goes
   * through /api/generate without a prompt, an embedding-only model through
   * /api/embed without input: Ollama loads (or expires) the runner and
   * generates nothing.
   */
  residency(host: string, name: string, keepAlive: KeepAlive, completion: boolean, signal?: AbortSignal): Promise<OnHost<void>> {
    return this.on(host, this.opts.slowTimeoutMs, signal, async (api) => {
      if (completion) await api.generate({ model: name, prompt: '', keep_alive: keepAlive, stream: false });
      else await api.embed({ model: name, input: [], keep_alive: keepAlive });
    });
  }

  /**
   * Pulls a model into one host (/api/pull, streamed). Bounded twice: no
   * progress line for `idleTimeoutMs`, or `timeoutMs` in all, ends it with a
   * `timeout` fault; aborting `signal` stops the download (Ollama stops when
   * the connection closes) and rejects with the signal's reason.
   */
  async pull(host: string, name: string, opts: PullOptions): Promise<OnHost<{ status: string }>> {
    const idle = new AbortController();
    const overall = AbortSignal.timeout(opts.timeoutMs);
    const signal = AbortSignal.any([overall, idle.signal, ...(opts.signal ? [opts.signal] : [])]);
    let timer = setTimeout(() => idle.abort(), opts.idleTimeoutMs);
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => idle.abort(), opts.idleTimeoutMs);
    };
    const api = new Ollama({ host, fetch: boundFetch(signal) });
    let status = 'starting';
    try {
      const stream = await api.pull({ model: name, insecure: opts.insecure, stream: true });
      for await (const line of stream) {
        arm();
        if (line.status) status = line.status;
        opts.onProgress?.(host, line);
      }
      return { host, ok: true, value: { status } };
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      if (overall.aborted) return { host, ok: false, fault: 'timeout', message: `pull of ${name} took longer than ${opts.timeoutMs} ms` };
      if (idle.signal.aborted) return { host, ok: false, fault: 'timeout', message: `pull of ${name}: no progress from Ollama for ${opts.idleTimeoutMs} ms` };
      const f = this.fault(err);
      return { host, ok: false, ...f, fault: f.fault === 'unreachable' ? f.fault : pullFaultOf(f.status, f.message) };
    } finally {
      clearTimeout(timer);
      idle.abort();
    }
  }

  /** Runs one call on one host with a deadline, and turns every failure but the caller's abort into a fault. */
  private async on<T>(host: string, timeoutMs: number, signal: AbortSignal | undefined, call: (api: Ollama) => Promise<T>): Promise<OnHost<T>> {
    const deadline = AbortSignal.timeout(timeoutMs);
    const api = new Ollama({ host, fetch: boundFetch(signal ? AbortSignal.any([deadline, signal]) : deadline) });
    try {
      return { host, ok: true, value: await call(api) };
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (deadline.aborted) return { host, ok: false, fault: 'timeout', message: `no answer within ${timeoutMs} ms` };
      return { host, ok: false, ...this.fault(err) };
    }
  }

  private fault(err: unknown): Omit<HostFault, 'host'> {
    const status = (err as { status_code?: unknown }).status_code;
    const message = (err as { error?: unknown }).error ?? (err instanceof Error ? err.message : String(err));
    if (typeof status === 'number') return { fault: faultOf(status, String(message)), status, message: String(message) };
    // fetch failed before an answer: the host is not there (or dropped the connection).
    const code = errCode(err);
    if (code || (err instanceof TypeError && err.message === 'fetch failed')) {
      return { fault: 'unreachable', message: `${err instanceof Error ? err.message : String(err)}${code ? ` (${code})` : ''}` };
    }
    return { fault: faultOf(undefined, String(message)), message: String(message) };
  }
}

/** The package's `fetch` option: every request it makes carries `signal` as well as its own. */
function boundFetch(signal: AbortSignal): typeof fetch {
  return (input, init) => fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, signal]) : signal });
}
