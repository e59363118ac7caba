/**
 * Socket.IO: the live channel for jobs and discussion rooms.
 *
 * Handshake: `auth: { token }` carries an access token or API key; no valid
 * credential, no connection. A connection whose token expires or whose
 * session is revoked is ended with `auth_error` { code, message } first.
 *
 * Client → server:
 *   subscribe { room: "job:<id>" | "discussion:<id>", lastSeq? }
 *                                             ack { ok: true } | { ok: true, ended: true } (a job whose lastSeq is
 *                                             at or after `finished`, a closed room whose lastSeq is at or after
 *                                             its closing `status`: nothing more will come) | { ok: false, error }
 *   unsubscribe { room }                      ack { ok: true } | { ok: false, error } (VALIDATION_FAILED for what
 *                                             `subscribe` would refuse as such: not a job: or discussion: room)
 * Server → client: the job event catalog (shared/events.ts) or the room
 *   event catalog (shared/discussions.ts), each as `<event>` with { room, ...data }.
 *
 * Rooms are authorised one by one: joining a job's room needs the right to
 * see that job, a discussion's the right to read that discussion. Resuming is ours (lastSeq), so Socket.IO's connection-state
 * recovery stays off and can never skip the auth middleware.
 *
 * Bounds (api/realtime/connections.ts), checked in this order:
 * - handshakes per client IP per window (PARLEY_RATE_SOCKET_HANDSHAKES_PER_IP):
 *   over it, `connect_error` with data { code: RATE_LIMITED, retryAfter };
 * - text the platform could not store (NUL, unpaired surrogates) in the
 *   handshake's `auth` or in a `subscribe`: { code: VALIDATION_FAILED };
 * - one connection lease per socket, shared with SSE
 *   (PARLEY_MAX_CONNECTIONS_PER_USER): at the cap, `connect_error`
 *   { code: RATE_LIMITED };
 * - `subscribe` calls per user per window (PARLEY_RATE_SOCKET_SUBSCRIBES):
 *   over it, the ack is { ok: false, error: { code: RATE_LIMITED } };
 * - a socket whose unsent output passes PARLEY_SLOW_READER_MAX_BYTES is a
 *   slow consumer: it is disconnected (it resumes with lastSeq on its next
 *   connection) rather than buffered for without bound.
 *
 * Across API processes: live events reach a socket from its own process's
 * stream hub (every process relays every stream it is asked for), so a client
 * may reconnect to any process and resume with lastSeq. What the Redis adapter
 * carries is what one process must tell sockets held by others: each socket
 * joins `auth:session:<id>` (or `auth:apikey:<id>`) and `auth:user:<id>`, and
 * `endCredential` ends every socket of a revoked credential, wherever it is
 * connected, at once, with `auth_error` { code: SESSION_REVOKED, message,
 * reason }. The once-a-second recheck stays as the fallback.
 */
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Redis } from 'ioredis';
import { Server, type Socket } from 'socket.io';
import { SubscribeRequest } from '../../shared/index.ts';

/** `unsubscribe { room }`: the room as `subscribe` takes it (job: and discussion: rooms only). */
const UnsubscribeRequest = SubscribeRequest.pick({ room: true });
import type { Logger } from '../../platform/observability/index.ts';
import { can, type Actor } from '../auth/permissions.ts';
import { AppError } from '../domain/errors.ts';
import { unstorableText } from '../domain/field-errors.ts';
import { hitWindow, type ConnectionRegistry, type Lease } from './connections.ts';
import { watchJob, type WatchDeps } from './watch.ts';

export interface SocketAuth {
  /** Resolves a handshake credential; `expiresAt` (epoch ms) ends the connection when reached. */
  verify(token: string): Promise<{ actor: Actor; expiresAt?: number } | undefined>;
  /** True while the actor's session or key is still valid; checked periodically. */
  stillValid(actor: Actor): Promise<boolean>;
}

export interface SocketDeps extends WatchDeps {
  log: Logger;
  auth: SocketAuth;
  prefix: string;
  pubClient: Redis;
  subClient: Redis;
  corsOrigins: string[];
  revalidateMs?: number;
  onConnections?: (n: number) => void;
  /** Extra room kinds (e.g. discussions) plug in here. */
  /** A kind's watch resolves to null when the room's stream already ended at or before lastSeq: the ack is then `{ ok: true, ended: true }`. */
  rooms?: Record<string, (actor: Actor, id: string, lastSeq: number, emit: (event: string, data: object) => void) => Promise<(() => void) | null>>;
  /** Per-user leases on live connections, shared with SSE; without it, sockets are not counted. */
  connections?: ConnectionRegistry;
  /** Handshake and subscribe limits; without them, neither is limited. */
  limits?: { handshakesPerIp: number; subscribesPerUser: number; windowMs: number; slowReaderMaxBytes: number };
  /** The Redis key of a fixed-window counter (keys(prefix).socketRate). */
  rateKey?: (limiter: string, subject: string) => string;
  /** The client's address, honouring PARLEY_TRUST_PROXY as HTTP requests do. @defaultValue the socket peer */
  clientIp?: (req: IncomingMessage) => string;
}

/** Bytes a socket has been handed but not yet sent: engine.io's queue plus the WebSocket's own buffer. */
function unsentBytes(socket: Socket): number {
  const conn = socket.conn as unknown as { writeBuffer?: { data?: unknown }[]; transport?: { socket?: { bufferedAmount?: number } } };
  let n = conn.transport?.socket?.bufferedAmount ?? 0;
  for (const p of conn.writeBuffer ?? []) n += typeof p.data === 'string' ? p.data.length : 0;
  return n;
}

const refusal = (code: string, message: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(code), { data: { code, message, ...extra } });

export function attachSocketServer(http: HttpServer, deps: SocketDeps): Server {
  const io = new Server(http, {
    path: '/socket.io',
    serveClient: false,
    // Upgrades on other paths are answered as plain HTTP (api/http/upgrade.ts), not dropped.
    destroyUpgrade: false,
    cors: deps.corsOrigins.length ? { origin: deps.corsOrigins, credentials: true } : undefined,
    adapter: createAdapter(deps.pubClient, deps.subClient, { key: `${deps.prefix}:socket.io` }),
  });

  io.use(async (socket, next) => {
    try {
      if (deps.limits && deps.rateKey) {
        const ip = deps.clientIp?.(socket.request) ?? socket.handshake.address;
        const hit = await hitWindow(deps.redis, deps.rateKey('socket-handshake', ip), deps.limits.handshakesPerIp, deps.limits.windowMs);
        if (!hit.ok)
          return next(refusal('RATE_LIMITED', `too many handshakes from this address; retry in ${hit.retryAfterS} s`, { retryAfter: hit.retryAfterS }));
      }
      const unstorable = unstorableText(socket.handshake.auth, ['auth']);
      if (unstorable.length) return next(refusal('VALIDATION_FAILED', unstorable.map((e) => `${e.path}: ${e.message}`).join('; ')));
      const token = (socket.handshake.auth as { token?: unknown }).token;
      if (typeof token !== 'string' || !token) return next(refusal('UNAUTHENTICATED', 'auth.token is required'));
      const verified = await deps.auth.verify(token).catch(() => undefined);
      if (!verified) return next(refusal('UNAUTHENTICATED', 'invalid, expired or revoked token'));
      if (deps.connections) {
        const lease = await deps.connections.acquire(verified.actor.userId);
        if (!lease)
          return next(refusal('RATE_LIMITED', 'too many live connections (sockets and event streams) for this user: close one first', { retryAfter: 5 }));
        socket.data.lease = lease;
      }
      socket.data.actor = verified.actor;
      socket.data.expiresAt = verified.expiresAt;
      next();
    } catch (err) {
      deps.log.warn({ err }, 'socket handshake refused: a backing service did not answer');
      next(refusal('SERVICE_UNAVAILABLE', 'try again shortly', { retryAfter: 2 }));
    }
  });

  io.on('connection', (socket) => {
    const actor = socket.data.actor as Actor;
    const subs = new Map<string, () => void>();
    /**
     * The latest subscribe or unsubscribe per room: a subscribe that finds a newer request when its
     * watch resolves stops that watch and emits nothing (two subscribes at once deliver each event once,
     * and an unsubscribe sent meanwhile holds).
     */
    const latest = new Map<string, number>();
    let requests = 0;
    deps.onConnections?.(io.engine.clientsCount);
    if (actor.role === 'operator' || actor.role === 'admin') void socket.join('operators');
    void socket.join(credentialRooms(actor));

    const end = (code: string, message: string) => {
      socket.emit('auth_error', { code, message });
      socket.disconnect(true);
    };
    const expiresAt = socket.data.expiresAt as number | undefined;
    const expiry = expiresAt
      ? setTimeout(() => end('TOKEN_EXPIRED', 'the access token expired; reconnect with a fresh one'), Math.max(0, expiresAt - Date.now()))
      : undefined;
    const revalidate = setInterval(() => {
      deps.auth.stillValid(actor).then(
        (ok) => ok || end('SESSION_REVOKED', 'the session or key was revoked'),
        () => {},
      );
    }, deps.revalidateMs ?? 1000);

    socket.on('subscribe', async (raw: unknown, ack?: (r: unknown) => void) => {
      const reply = typeof ack === 'function' ? ack : () => {};
      const unstorable = unstorableText(raw);
      if (unstorable.length)
        return reply({ ok: false, error: { code: 'VALIDATION_FAILED', message: unstorable.map((e) => `${e.path}: ${e.message}`).join('; ') } });
      if (deps.limits && deps.rateKey) {
        const hit = await hitWindow(deps.redis, deps.rateKey('socket-subscribe', actor.userId), deps.limits.subscribesPerUser, deps.limits.windowMs).catch(
          () => undefined,
        );
        if (!hit) return reply({ ok: false, error: { code: 'SERVICE_UNAVAILABLE', message: 'try again shortly' } });
        if (!hit.ok)
          return reply({
            ok: false,
            error: { code: 'RATE_LIMITED', message: `too many subscribes; retry in ${hit.retryAfterS} s`, retryAfter: hit.retryAfterS },
          });
      }
      const req = SubscribeRequest.safeParse(raw);
      if (!req.success)
        return reply({ ok: false, error: { code: 'VALIDATION_FAILED', message: req.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') } });
      const { room, lastSeq = 0 } = req.data;
      const [kind, id] = room.split(':') as [string, string];
      const request = ++requests;
      latest.set(room, request);
      const current = () => latest.get(room) === request;
      try {
        subs.get(room)?.();
        subs.delete(room);
        const emit = (event: string, data: object) => {
          if (!socket.connected || !current()) return;
          socket.emit(event, { room, ...data });
          // A slow consumer is cut off, not buffered for without bound; it resumes with lastSeq.
          if (deps.limits && unsentBytes(socket) > deps.limits.slowReaderMaxBytes) {
            deps.log.info({ userId: actor.userId, room }, 'slow socket consumer disconnected');
            socket.disconnect(true);
          }
        };
        let unsubscribe: () => void;
        if (kind === 'job') {
          if (!can(actor, 'jobs:read')) throw new AppError('JOB_NOT_FOUND');
          const watching = await watchJob(deps, actor, id, lastSeq, (e) => emit(e.event, e.data));
          // Subscribed after the job's last event: nothing will follow.
          if (watching === null) return reply({ ok: true, ended: true });
          unsubscribe = watching;
        } else if (deps.rooms?.[kind]) {
          const watching = await deps.rooms[kind](actor, id, lastSeq, emit);
          // A closed room whose closing `status` is at or before lastSeq: nothing will follow.
          if (watching === null) return reply({ ok: true, ended: true });
          unsubscribe = watching;
        } else {
          throw new AppError('NOT_FOUND');
        }
        if (!socket.connected) return unsubscribe();
        if (!current()) {
          // A newer subscribe (which replays from its own lastSeq) or an unsubscribe came meanwhile.
          unsubscribe();
          return reply({ ok: true });
        }
        subs.set(room, unsubscribe);
        await socket.join(room);
        reply({ ok: true });
      } catch (err) {
        const code = err instanceof AppError ? err.code : 'INTERNAL';
        if (code === 'INTERNAL') deps.log.error({ err, room }, 'subscribe failed');
        reply({ ok: false, error: { code, message: err instanceof AppError ? (err.detail ?? code) : 'internal error' } });
      }
    });

    socket.on('unsubscribe', (raw: unknown, ack?: (r: unknown) => void) => {
      const reply = typeof ack === 'function' ? ack : () => {};
      // Validated as a subscribe is: only the rooms a client can subscribe to (the credential rooms it was put in stay: they carry revocation).
      const unstorable = unstorableText(raw);
      if (unstorable.length)
        return reply({ ok: false, error: { code: 'VALIDATION_FAILED', message: unstorable.map((e) => `${e.path}: ${e.message}`).join('; ') } });
      const parsed = UnsubscribeRequest.safeParse(raw);
      if (!parsed.success)
        return reply({
          ok: false,
          error: { code: 'VALIDATION_FAILED', message: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') },
        });
      const { room } = parsed.data;
      latest.set(room, ++requests);
      subs.get(room)?.();
      subs.delete(room);
      void socket.leave(room);
      reply({ ok: true });
    });

    socket.on('disconnect', () => {
      (socket.data.lease as Lease | undefined)?.release();
      clearTimeout(expiry);
      clearInterval(revalidate);
      for (const u of subs.values()) u();
      subs.clear();
      deps.onConnections?.(io.engine.clientsCount);
    });
  });
  return io;
}

/** The adapter rooms a socket authenticated as `actor` joins, one per credential that can be revoked. */
export function credentialRooms(actor: Actor): string[] {
  return [actor.apiKeyId ? `auth:apikey:${actor.apiKeyId}` : `auth:session:${actor.sessionId}`, `auth:user:${actor.userId}`];
}

/**
 * Ends every socket authenticated with a credential that no longer stands, in every API process
 * (through the Redis adapter): `auth_error` first, then the disconnect.
 */
export function endCredential(io: Server, target: { reason: string } & ({ sessionId: string } | { apiKeyId: string } | { userId: string })): void {
  const room =
    'sessionId' in target ? `auth:session:${target.sessionId}` : 'apiKeyId' in target ? `auth:apikey:${target.apiKeyId}` : `auth:user:${target.userId}`;
  io.in(room).emit('auth_error', { code: 'SESSION_REVOKED', message: 'the session or key was revoked', reason: target.reason });
  io.in(room).disconnectSockets(true);
}
