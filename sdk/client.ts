/**
 * `createClient({ baseUrl, auth })`: the one entry point. One client holds
 * the credentials, the interceptors, the retry policy and (when used) one
 * Socket.IO connection, and exposes the resources.
 */
import { createCredentials, type AuthOption } from './internal/auth.ts';
import { defaultRetry, type RetryOptions } from './internal/backoff.ts';
import type { ResourceContext } from './internal/context.ts';
import { EventStream, sseConnection, type SeqEvent } from './internal/event-stream.ts';
import { Http, type Interceptors } from './internal/http.ts';
import { SocketLink } from './internal/socket.ts';
import { codeResource } from './resources/code.ts';
import { collectionsResource } from './resources/collections.ts';
import { agentsResource, discussionsResource } from './resources/discussions.ts';
import { jobsResource } from './resources/jobs.ts';
import { knowledgeResource } from './resources/knowledge.ts';
import { authResource, modelsResource, usageResource } from './resources/models.ts';
import type { StreamTransport } from './types.ts';

export interface ClientOptions {
  /** Where the API answers, e.g. `http://127.0.0.1:3000`; in the arena page, `location.origin`. */
  baseUrl: string;
  /** An access token or API key, `{ username, password }` (signs in and refreshes for you), or `{ refreshToken }`. Omit for public routes only. */
  auth?: AuthOption;
  /** Retries on network failures, 429 and 503. `false` turns them off. @defaultValue `{ retries: 3, baseDelayMs: 300, maxDelayMs: 10000, maxRetryAfterMs: 60000 }` */
  retry?: RetryOptions | false;
  /** Hooks around every HTTP attempt; more can be added with `client.use()`. */
  interceptors?: Interceptors[];
  /** How `stream()` calls travel unless they say otherwise. @defaultValue 'sse' */
  transport?: StreamTransport;
  /** The fetch to use. @defaultValue globalThis.fetch */
  fetch?: typeof fetch;
}

export function createClient(options: ClientOptions) {
  const interceptors = [...(options.interceptors ?? [])];
  const userFetch = options.fetch;
  let http!: Http;
  const credentials = createCredentials(options.auth, (form, signal) => http.grant(form, signal));
  http = new Http({
    baseUrl: options.baseUrl,
    credentials,
    // Called unbound: a browser's fetch throws "Illegal invocation" when called as a method of another object.
    fetch: userFetch ?? ((input, init) => globalThis.fetch(input, init)),
    retry: options.retry === false ? { ...defaultRetry, retries: 0 } : { ...defaultRetry, ...options.retry },
    interceptors,
  });
  let socket: SocketLink | undefined;

  const ctx: ResourceContext = {
    http,
    stream<E extends SeqEvent>(
      target: { path: string; room: string; events: readonly string[]; isLast: (e: E) => boolean },
      opts: ConstructorParameters<typeof EventStream<E>>[2] & { transport?: StreamTransport | undefined },
      onEarlyClose?: () => void,
    ) {
      const transport = opts.transport ?? options.transport ?? 'sse';
      const open =
        transport === 'socket.io'
          ? (socket ??= new SocketLink(options.baseUrl, credentials)).connection<E>(target.room, target.events)
          : sseConnection<E>(http, target.path);
      return new EventStream<E>(open, target.isLast, opts, onEarlyClose);
    },
  };

  return {
    jobs: jobsResource(ctx),
    discussions: discussionsResource(ctx),
    agents: agentsResource(ctx),
    models: modelsResource(ctx),
    knowledge: knowledgeResource(ctx),
    usage: usageResource(ctx),
    code: codeResource(ctx),
    collections: collectionsResource(ctx),
    auth: authResource(ctx),
    /** Adds interceptors; returns a function that removes them. */
    use(i: Interceptors): () => void {
      interceptors.push(i);
      return () => {
        const at = interceptors.indexOf(i);
        if (at >= 0) interceptors.splice(at, 1);
      };
    },
    /** Closes the Socket.IO connection, if one was opened. Streams in progress end. */
    close(): void {
      socket?.close();
      socket = undefined;
    },
  };
}

export type ParleyClient = ReturnType<typeof createClient>;
