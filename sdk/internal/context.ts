/**
 * What every resource is built from. A new resource (code search, knowledge, …)
 * is a factory in sdk/resources/ taking this context, added in sdk/client.ts.
 */
import type { StreamTransport } from '../types.ts';
import type { EventStream, OpenConnection, SeqEvent, StreamOptions } from './event-stream.ts';
import type { Http } from './http.ts';

export interface ResourceContext {
  http: Http;
  /**
   * A resumable stream of `path` (SSE) or `room` (Socket.IO), whichever transport is chosen.
   * `onEarlyClose` runs when the consumer stops before the last event.
   */
  stream<E extends SeqEvent>(
    target: { path: string; room: string; events: readonly string[]; isLast: (e: E) => boolean },
    opts: StreamOptions & { transport?: StreamTransport | undefined },
    onEarlyClose?: () => void,
  ): EventStream<E>;
}

export type { OpenConnection };
