/** `client.models`, `client.usage` and `client.auth`: what is installed, what you used, who you are. */
import type {
  KeepAlive,
  Me,
  ModelDetails,
  ModelList,
  ModelLoadState,
  ModelSummary,
  PullModelAccepted,
  RunningModel,
  RunningModels,
  UsageQuery,
  UsageReport,
} from '../../shared/index.ts';
import type { Session } from '../internal/auth.ts';
import type { ResourceContext } from '../internal/context.ts';
import type { CallOptions } from '../types.ts';

// Model names may hold '/' and ':': always percent-encoded in a path.
const modelPath = (name: string, rest = '') => `/v1/models/${encodeURIComponent(name)}${rest}`;

export function modelsResource({ http }: ResourceContext) {
  return {
    /** Installed models: family, size, quantization, context length, capabilities, loaded. */
    async list(opts: CallOptions = {}): Promise<ModelSummary[]> {
      return (await http.request<ModelList>({ method: 'GET', path: '/v1/models', signal: opts.signal })).data.items;
    },
    async get(name: string, opts: CallOptions = {}): Promise<ModelDetails> {
      return (await http.request<ModelDetails>({ method: 'GET', path: modelPath(name), signal: opts.signal })).data;
    },
    /** Models loaded in memory now. */
    async running(opts: CallOptions = {}): Promise<RunningModel[]> {
      return (await http.request<RunningModels>({ method: 'GET', path: '/v1/models/running', signal: opts.signal })).data.items;
    },
    /** Operators: pull a model, as a job (follow it with `client.jobs.stream(job.id)`). */
    async pull(model: string, opts: CallOptions & { insecure?: boolean } = {}): Promise<PullModelAccepted> {
      return (
        await http.request<PullModelAccepted>({
          method: 'POST',
          path: '/v1/models/pull',
          body: { model, ...(opts.insecure ? { insecure: true } : {}) },
          signal: opts.signal,
        })
      ).data;
    },
    /** Operators: load a model into memory for `keep_alive`. */
    async load(name: string, opts: CallOptions & { keepAlive?: KeepAlive } = {}): Promise<ModelLoadState> {
      return (
        await http.request<ModelLoadState>({
          method: 'POST',
          path: modelPath(name, '/load'),
          body: opts.keepAlive === undefined ? {} : { keep_alive: opts.keepAlive },
          signal: opts.signal,
        })
      ).data;
    },
    async unload(name: string, opts: CallOptions = {}): Promise<ModelLoadState> {
      return (await http.request<ModelLoadState>({ method: 'POST', path: modelPath(name, '/unload'), signal: opts.signal })).data;
    },
  };
}

export function usageResource({ http }: ResourceContext) {
  return {
    /** Your token usage per UTC day and model (default: the last 30 days), totals, and your budgets. */
    async get(query: UsageQuery = {}, opts: CallOptions = {}): Promise<UsageReport> {
      return (await http.request<UsageReport>({ method: 'GET', path: '/v1/usage', query: { ...query }, signal: opts.signal })).data;
    },
  };
}

export function authResource({ http }: ResourceContext) {
  return {
    /** Who the client's credential belongs to. */
    async me(opts: CallOptions = {}): Promise<Me> {
      return (await http.request<Me>({ method: 'GET', path: '/v1/auth/me', signal: opts.signal })).data;
    },
    /** The session of `{ username, password }` or `{ refreshToken }` auth (undefined before the first request). */
    session(): Session | undefined {
      return http.opts.credentials.session();
    },
    /** Ends the session on the server (its tokens stop working) and forgets it here. */
    async logout(opts: CallOptions = {}): Promise<void> {
      await http.request<void>({ method: 'POST', path: '/v1/auth/logout', signal: opts.signal, retry: false });
      http.opts.credentials.clear();
    },
  };
}
