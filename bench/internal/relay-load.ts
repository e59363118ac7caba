/**
 * Token relay load, run as a helper process (bench/internal/child.ts): it
 * plays both ends of the relay, so sender and receiver read one clock.
 *
 * - Producers, one per stream, each sending `tokensPerSecond` tokens,
 *   phase-shifted so the streams do not all fire on the same millisecond:
 *   mode 'parley' writes through platform/streams/job-stream.ts JobStreamWriter (what
 *   a worker's ctx.emitTokens does) on one Redis connection, as a worker
 *   process would; mode 'bare' PUBLISHes each token on `<channel prefix><i>`.
 * - Clients, one Socket.IO connection (websocket transport) per stream, that
 *   `subscribe` { room } with an ack and hear `tokens` { room, text, ... }.
 *
 * Token text: the send time, 6 characters (bench/internal/token-stamp.ts).
 * A batched entry carries several tokens back to back; the client splits
 * them. Per stream the client counts tokens, duplicates, and tokens whose
 * send time is earlier than one already seen (out of order).
 *
 * Requests: RelayRequest, a run or `clock` (this process's performance.now(),
 * so the parent can place the token stamps on its own clock).
 */
import { Redis } from 'ioredis';
import { io, type Socket } from 'socket.io-client';
import { JobStreamWriter } from '../../platform/streams/index.ts';
import { serveHelper } from './child.ts';
import { summarize, type LatencySummary } from './stats.ts';
import { encodeStamp, stampsIn } from './token-stamp.ts';

export interface RelayRun {
  mode: 'parley' | 'bare';
  /** Socket.IO endpoint (http://host:port). */
  url: string;
  /** Handshake auth token (Parley), or anything (bare). */
  token: string;
  rooms: string[];
  /** parley: the job stream key of each room; bare: the channel of each room. */
  targets: string[];
  redisUrl: string;
  streams: { maxLen: number; ttlSeconds: number };
  tokensPerSecond: number;
  seconds: number;
  /** How long to wait for stragglers after the last token is sent. */
  drainMs: number;
}

/** Helper requests: a run, or this process's clock (for the parent to estimate the offset between the two clocks). */
export type RelayRequest = ({ kind: 'run' } & RelayRun) | { kind: 'clock' };

export interface RelayResult {
  sent: number;
  received: number;
  lost: number;
  outOfOrder: number;
  duplicates: number;
  /** Socket.IO `tokens` events (an event may carry several tokens). */
  events: number;
  latency: LatencySummary;
  /** Tokens the producers could not send on time (the send loop fell behind), worst lag in ms. */
  sendLagMs: number;
  cpuMs: number;
  writeErrors: number;
  /** performance.now() of this process when the run's clock (the token stamps) started. */
  epoch: number;
}

let epoch = performance.now();

/** The send time as token text; `after` keeps a stream's stamps strictly increasing (two tokens sent within one microsecond stay distinct). */
function stampNow(after: number): { text: string; us: number } {
  const us = Math.max(after + 1, Math.round((performance.now() - epoch) * 1000));
  return { text: encodeStamp(us), us };
}

function connect(url: string, token: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = io(url, { path: '/socket.io', transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => reject(err));
  });
}

async function relay(run: RelayRun): Promise<RelayResult> {
  const n = run.rooms.length;
  const redis = new Redis(run.redisUrl, { connectionName: run.mode === 'parley' ? 'parley-worker' : 'bench-bare-publisher' });
  const sockets = await Promise.all(run.rooms.map(() => connect(run.url, run.token)));

  const lastSeen = new Float64Array(n).fill(-1);
  const seen = run.rooms.map(() => new Set<number>());
  const latencies: number[] = [];
  let received = 0;
  let outOfOrder = 0;
  let duplicates = 0;
  let events = 0;
  await Promise.all(
    sockets.map(
      (s, i) =>
        new Promise<void>((resolve, reject) => {
          s.on('tokens', (e: { room: string; text: string }) => {
            const nowUs = (performance.now() - epoch) * 1000;
            events++;
            for (const sentUs of stampsIn(e.text)) {
              if (seen[i]!.has(sentUs)) {
                duplicates++;
                continue;
              }
              seen[i]!.add(sentUs);
              received++;
              latencies.push((nowUs - sentUs) / 1000);
              if (sentUs < lastSeen[i]!) outOfOrder++;
              else lastSeen[i] = sentUs;
            }
          });
          s.emit('subscribe', { room: run.rooms[i], lastSeq: 0 }, (ack: { ok: boolean; error?: unknown }) =>
            ack?.ok ? resolve() : reject(new Error(`subscribe ${run.rooms[i]}: ${JSON.stringify(ack)}`)),
          );
        }),
    ),
  );

  const writers = run.mode === 'parley' ? run.targets.map((key) => new JobStreamWriter(redis, key, 1, run.streams)) : [];
  for (const w of writers) await w.init();

  // Producers: token k of stream i is due at (k + i/n) / rate seconds.
  epoch = performance.now();
  const total = Math.round(run.tokensPerSecond * run.seconds);
  const sentPer = new Int32Array(n);
  const lastStamp = new Float64Array(n).fill(-1);
  let sendLagMs = 0;
  let publishErrors = 0;
  const cpu0 = process.cpuUsage();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now() - epoch;
      let done = true;
      for (let i = 0; i < n; i++) {
        const due = Math.min(total, Math.floor((now / 1000) * run.tokensPerSecond - i / n) + 1);
        while (sentPer[i]! < due) {
          const dueAt = ((sentPer[i]! + i / n) / run.tokensPerSecond) * 1000;
          sendLagMs = Math.max(sendLagMs, now - dueAt);
          const { text, us } = stampNow(lastStamp[i]!);
          lastStamp[i] = us;
          if (run.mode === 'parley') writers[i]!.tokens(text);
          else redis.publish(run.targets[i]!, text).catch(() => void publishErrors++);
          sentPer[i]!++;
        }
        if (sentPer[i]! < total) done = false;
      }
      if (done) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await Promise.all(writers.map((w) => w.flush()));
  const sent = total * n;
  const deadline = performance.now() + run.drainMs;
  while (received < sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const cpu = process.cpuUsage(cpu0);

  for (const s of sockets) s.disconnect();
  await redis.quit().catch(() => {});
  return {
    sent,
    received,
    lost: sent - received,
    outOfOrder,
    duplicates,
    events,
    latency: summarize(latencies),
    sendLagMs,
    cpuMs: (cpu.user + cpu.system) / 1000,
    writeErrors: publishErrors + writers.filter((w) => w.lastError).length,
    epoch,
  };
}

serveHelper<RelayRequest, RelayResult | number>(async (req) => (req.kind === 'clock' ? performance.now() : relay(req)));
