/**
 * Streams over Socket.IO: one socket per client, shared by every stream,
 * loaded on first use (so SSE-only users never load socket.io-client).
 *
 * Protocol (docs/streaming.md): connect with `auth: { token }`, then
 * `subscribe { room, lastSeq }` → ack `{ ok: true } | { ok: true, ended: true }
 * | { ok: false, error }` (`ended`: the stream ended at or before lastSeq);
 * events arrive as `<name>` with `{ room, ...payload }`. After any
 * disconnect the stream resubscribes with the last seq it saw. The server
 * ends a socket whose credential expired or was revoked with `auth_error`:
 * the credential is renewed and the socket connects again.
 */
import type { Socket } from 'socket.io-client';
import { ParleyError, type ParleyErrorCode } from '../errors.ts';
import type { Credentials } from './auth.ts';
import { STREAM_ENDED, type OpenConnection, type SeqEvent } from './event-stream.ts';

export class SocketLink {
  #socket: Promise<Socket> | undefined;
  #lastToken: string | undefined;
  #closed = false;

  constructor(
    private readonly baseUrl: string,
    private readonly credentials: Credentials,
  ) {}

  socket(): Promise<Socket> {
    return (this.#socket ??= (async () => {
      const { io } = await import('socket.io-client');
      const socket = io(this.baseUrl, {
        path: '/socket.io',
        transports: ['websocket'],
        // Called on every (re)connect, so a reconnect carries the current access token.
        auth: (cb) => {
          this.credentials.token().then(
            (t) => {
              this.#lastToken = t;
              cb({ token: t ?? '' });
            },
            () => cb({ token: '' }),
          );
        },
      });
      socket.on('auth_error', () => void this.credentials.renew(this.#lastToken).catch(() => {}));
      socket.on('disconnect', (reason) => {
        // The server closed it (auth_error, or an operator): Socket.IO leaves that to us.
        if (reason === 'io server disconnect' && !this.#closed) setTimeout(() => !this.#closed && socket.connect(), 250);
      });
      return socket;
    })());
  }

  /** Waits for the socket to connect; a refused handshake renews the credential once and tries again. */
  private async connected(socket: Socket, signal: AbortSignal): Promise<void> {
    let renewed = false;
    while (!socket.connected) {
      if (signal.aborted) return;
      const outcome = await new Promise<{ ok: true } | { ok: false; err: Error & { data?: { code?: string; message?: string } } }>((resolve) => {
        const done = (r: { ok: true } | { ok: false; err: Error }) => {
          socket.off('connect', onConnect);
          socket.off('connect_error', onError);
          signal.removeEventListener('abort', onAbort);
          resolve(r);
        };
        const onConnect = () => done({ ok: true });
        const onError = (err: Error) => done({ ok: false, err });
        const onAbort = () => done({ ok: true });
        socket.on('connect', onConnect);
        socket.on('connect_error', onError);
        signal.addEventListener('abort', onAbort, { once: true });
        if (!socket.active) socket.connect();
      });
      if (outcome.ok) continue;
      if (outcome.err.data?.code === 'UNAUTHENTICATED') {
        if (renewed || !(await this.credentials.renew(this.#lastToken, signal))) {
          throw new ParleyError({ code: 'UNAUTHENTICATED', status: 401, detail: outcome.err.data.message ?? 'the socket handshake was refused' });
        }
        renewed = true;
        continue;
      }
      throw new ParleyError({ code: 'NETWORK_ERROR', status: 0, detail: `socket: ${outcome.err.message}`, cause: outcome.err });
    }
  }

  /** One subscription to `room`, as a connection for EventStream. */
  connection<E extends SeqEvent>(room: string, events: readonly string[]): OpenConnection<E> {
    const link = this;
    return async function* open(afterSeq, signal) {
      const socket = await link.socket();
      const queue: E[] = [];
      let failure: ParleyError | undefined;
      let wake: (() => void) | undefined;
      const notify = () => {
        wake?.();
        wake = undefined;
      };
      const handlers = events.map((name) => {
        const h = (payload: { room?: string } & Record<string, unknown>) => {
          if (payload?.room !== room) return;
          const { room: _room, ...data } = payload;
          queue.push({ event: name, data } as unknown as E);
          notify();
        };
        socket.on(name, h);
        return [name, h] as const;
      });
      const onDisconnect = (reason: string) => {
        failure = new ParleyError({ code: 'NETWORK_ERROR', status: 0, detail: `socket disconnected: ${reason}` });
        notify();
      };
      const onAbort = () => notify();
      socket.on('disconnect', onDisconnect);
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        await link.connected(socket, signal);
        if (signal.aborted) return;
        let ack: { ok: boolean; ended?: boolean; error?: { code: string; message: string } };
        try {
          ack = await socket.timeout(10_000).emitWithAck('subscribe', { room, lastSeq: afterSeq });
        } catch (err) {
          throw new ParleyError({ code: 'NETWORK_ERROR', status: 0, detail: `subscribe ${room}: no answer`, cause: err });
        }
        if (!ack.ok) {
          const code = (ack.error?.code ?? 'INTERNAL') as ParleyErrorCode;
          throw new ParleyError({ code, status: code.endsWith('NOT_FOUND') ? 404 : 0, detail: ack.error?.message ?? `subscribe ${room} refused` });
        }
        // Subscribed at or after the stream's last event: nothing will follow.
        if (ack.ended) {
          yield STREAM_ENDED;
          return;
        }
        for (;;) {
          while (queue.length) yield queue.shift()!;
          if (failure) throw failure;
          if (signal.aborted) return;
          await new Promise<void>((r) => (wake = r));
        }
      } finally {
        for (const [name, h] of handlers) socket.off(name, h);
        socket.off('disconnect', onDisconnect);
        signal.removeEventListener('abort', onAbort);
        if (socket.connected) socket.emit('unsubscribe', { room });
      }
    };
  }

  close(): void {
    this.#closed = true;
    void this.#socket?.then((s) => s.disconnect());
    this.#socket = undefined;
  }
}
