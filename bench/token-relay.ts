/**
 * Benchmark: live token relay, producer → Redis → relay → Socket.IO client.
 *
 *   npx tsx bench/token-relay.ts
 *
 * Env: BENCH_PAIRS (default 3), BENCH_STREAMS (default 50),
 * BENCH_TOKENS_PER_S per stream (default 100), BENCH_SECONDS per run
 * (default 8).
 *
 * The relay (Parley's API, or the bare relay) runs in this process; a helper
 * process (bench/internal/relay-load.ts) plays both ends, producers and
 * Socket.IO clients, so sender and receiver share one clock: each token's
 * text is its send time (6 characters, base64url microseconds). One client
 * connection per stream, websocket transport on both sides. Measured
 * A B A B A B after one short unmeasured warm-up of each:
 * - A, the baseline: the producer PUBLISHes each token on a Redis channel;
 *   a bare relay (one PSUBSCRIBE connection, Socket.IO with its in-memory
 *   adapter) emits it to the room `job:<id>`; the client `subscribe`s to
 *   the room with an ack, as it does with Parley.
 * - B, Parley: BENCH_STREAMS system.ping jobs are submitted for a member user
 *   (no workers run, so the jobs stay queued and their streams are the
 *   producers' alone); the producer writes tokens through
 *   platform/streams/job-stream.ts JobStreamWriter (one Redis connection, as a
 *   worker process has: XADD + PUBLISH per batch) → api/realtime/hub.ts
 *   (SUBSCRIBE per watched stream, XRANGE for gaps) → api/realtime/socket.ts (auth,
 *   per-room authorisation, `tokens` { room, seq, attempt, text }).
 *   Fresh jobs every run, so no run replays another's stream.
 * Targets (Parley): p99 <= 5 ms, 0 tokens lost, 0 out of order, in every run.
 *
 * Capacity (reported, after the pairs): each side alone, at the same
 * tokens/s per stream, with more and more streams (BENCH_CAPACITY_STREAMS,
 * default 25,50,75,100,150,200,300; "" skips it), one BENCH_CAPACITY_SECONDS
 * run per step (default 4), until its p99 passes 5 ms or it loses a token.
 * The capacity is the last step that held, as streams × tokens/s.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { Server } from 'socket.io';
import { z } from 'zod';
import { startApi } from '../api/main.ts';
import { connectRedis } from '../platform/connections/index.ts';
import { startHelper } from './internal/child.ts';
import { cpuBetween, type CpuCost, cpuSnapshot, describeCpu, describeMachine } from './internal/cost.ts';
import { cleanup, configOf, createMember, parleyEnv, submitterOf, teardownOnExit, uniquePrefix } from './internal/parley.ts';
import type { RelayRequest, RelayResult } from './internal/relay-load.ts';
import { stampsIn } from './internal/token-stamp.ts';
import { fmt, printVerdicts, reported, summarize, type LatencySummary } from './internal/stats.ts';

const Env = z.object({
  BENCH_PAIRS: z.coerce.number().int().min(1).max(20).default(3),
  BENCH_STREAMS: z.coerce.number().int().min(1).max(1000).default(50),
  BENCH_TOKENS_PER_S: z.coerce.number().min(1).max(10_000).default(100),
  BENCH_SECONDS: z.coerce.number().min(1).max(60).default(8),
  BENCH_CAPACITY_STREAMS: z
    .string()
    .default('25,50,75,100,150,200,300')
    .transform((s) => s.split(',').filter(Boolean).map(Number))
    .pipe(z.array(z.number().int().min(1).max(2000))),
  BENCH_CAPACITY_SECONDS: z.coerce.number().min(1).max(60).default(4),
});

/**
 * The baseline relay: tokens arrive on `<channelPrefix><id>` and go to the
 * room `job:<id>`. Protocol as Parley's for the client: `subscribe`
 * { room } with an ack; `tokens` { room, text }.
 */
async function bareRelay(redisUrl: string, channelPrefix: string, tap: (text: string) => void) {
  const sub = connectRedis(redisUrl, { blocking: true, name: 'bench-bare-relay' });
  const http = createServer();
  const io = new Server(http, { path: '/socket.io', serveClient: false });
  io.on('connection', (socket) => {
    socket.on('subscribe', async (req: { room?: unknown }, ack?: (r: unknown) => void) => {
      if (typeof req?.room === 'string') await socket.join(req.room);
      ack?.({ ok: true });
    });
  });
  sub.on('pmessage', (_pattern: string, channel: string, text: string) => {
    tap(text);
    const room = `job:${channel.slice(channelPrefix.length)}`;
    io.to(room).emit('tokens', { room, text });
  });
  await sub.psubscribe(`${channelPrefix}*`);
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    close: async () => {
      await new Promise<void>((r) => io.close(() => r()));
      await sub.quit().catch(() => {});
    },
  };
}

async function main(): Promise<void> {
  const opts = Env.parse(process.env);
  const prefix = uniquePrefix('relay');
  const env = parleyEnv(prefix);
  const config = configOf(env);
  const admin = connectRedis(config.redisUrl, { name: 'bench-admin' });
  const rate = opts.BENCH_STREAMS * opts.BENCH_TOKENS_PER_S;
  console.log(
    `token-relay: ${opts.BENCH_STREAMS} streams x ${opts.BENCH_TOKENS_PER_S} tok/s = ${rate} tok/s for ${opts.BENCH_SECONDS} s per run, pairs=${opts.BENCH_PAIRS} prefix=${prefix}`,
  );
  console.log(await describeMachine());

  const api = await startApi(env);
  const user = await createMember(api);
  const submit = submitterOf(api, user);
  const channelPrefix = `${prefix}:bare:tok:`;
  // The diagnostic run taps the relay: when each token reaches it, on this process's clock.
  let tap: [number, string][] | undefined;
  const record = (text: string) => tap?.push([performance.now(), text]);
  const bare = await bareRelay(config.redisUrl, channelPrefix, record);
  const hub = api.hub as unknown as { subscribe(key: string, after: number, fn: (e: { event: string; data: { text?: unknown } }) => void): () => void };
  const subscribe = hub.subscribe.bind(hub);
  hub.subscribe = (key, after, fn) =>
    subscribe(key, after, (e) => {
      if (e.event === 'tokens' && typeof e.data.text === 'string') record(e.data.text);
      fn(e);
    });
  const load = await startHelper<RelayRequest, RelayResult | number>(new URL('./internal/relay-load.ts', import.meta.url));

  /** helper clock − this clock, from the IPC ping-pong with the shortest round trip. */
  const clockOffset = async (): Promise<{ offset: number; error: number }> => {
    let best = { offset: 0, error: Infinity };
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      const h = (await load.call({ kind: 'clock' })) as number;
      const t1 = performance.now();
      if ((t1 - t0) / 2 < best.error) best = { offset: h - (t0 + t1) / 2, error: (t1 - t0) / 2 };
    }
    return best;
  };

  const run = async (side: 'bare' | 'parley', seconds: number, streams = opts.BENCH_STREAMS): Promise<RelayResult & { cpu: CpuCost }> => {
    let rooms: string[];
    let targets: string[];
    if (side === 'parley') {
      const ids = await Promise.all(Array.from({ length: streams }, () => submit({ kind: 'system.ping', input: {} })));
      rooms = ids.map((id) => `job:${id}`);
      targets = ids.map((id) => api.keys.jobStream(id));
    } else {
      const ids = Array.from({ length: streams }, () => randomUUID());
      rooms = ids.map((id) => `job:${id}`);
      targets = ids.map((id) => `${channelPrefix}${id}`);
    }
    const before = await cpuSnapshot(admin);
    const r = (await load.call({
      kind: 'run',
      mode: side,
      url: side === 'parley' ? `http://127.0.0.1:${api.port}` : bare.url,
      token: user.token,
      rooms,
      targets,
      redisUrl: config.redisUrl,
      streams: config.streams,
      tokensPerSecond: opts.BENCH_TOKENS_PER_S,
      seconds,
      drainMs: 3000,
    })) as RelayResult;
    return { ...r, cpu: cpuBetween(before, await cpuSnapshot(admin)) };
  };
  const line = (label: string, r: RelayResult & { cpu: CpuCost }) =>
    `${label} p50 ${fmt(r.latency.p50)} ms  p90 ${fmt(r.latency.p90)} ms  p99 ${fmt(r.latency.p99)} ms  max ${fmt(r.latency.max)} ms  sent ${r.sent} lost ${r.lost} out-of-order ${r.outOfOrder} dup ${r.duplicates}  (${fmt(r.received / Math.max(1, r.events), 2)} tokens/event, send lag max ${fmt(r.sendLagMs, 1)} ms, load ${loadavg()[0]!.toFixed(2)})\n          ${describeCpu(r.cpu, r.sent / 1000, '1000 tokens', [{ label: 'producers+clients', ms: r.cpuMs }])}`;

  const teardown = teardownOnExit(async () => {
    await load.close();
    await bare.close();
    await cleanup({ redis: admin, db: api.db, prefixes: [prefix], userIds: [user.id], queues: [api.jobs.queues.system] });
    await api.stop();
    await admin.quit();
  });

  try {
    const warm = Math.min(2, opts.BENCH_SECONDS);
    console.log(`warm-up (${warm} s each, not counted)`);
    console.log(`  ${line('A bare  ', await run('bare', warm))}`);
    console.log(`  ${line('B Parley', await run('parley', warm))}`);

    const a: RelayResult[] = [];
    const b: RelayResult[] = [];
    for (let p = 0; p < opts.BENCH_PAIRS; p++) {
      a.push(await run('bare', opts.BENCH_SECONDS));
      console.log(`pair ${p + 1}: ${line('A bare  ', a.at(-1) as RelayResult & { cpu: CpuCost })}`);
      b.push(await run('parley', opts.BENCH_SECONDS));
      console.log(`        ${line('B Parley', b.at(-1) as RelayResult & { cpu: CpuCost })}`);
    }

    printVerdicts('token-relay', [
      reported(
        'p50 token latency',
        'ms',
        a.map((r) => r.latency.p50),
        b.map((r) => r.latency.p50),
      ),
      {
        name: 'p99 token latency',
        unit: 'ms',
        better: 'lower',
        baseline: a.map((r) => r.latency.p99),
        parley: b.map((r) => r.latency.p99),
        target: 'Parley p99 <= 5 ms',
        met: (m) => m.parley <= 5,
      },
      {
        name: 'tokens lost',
        unit: 'tok',
        better: 'lower',
        baseline: a.map((r) => r.lost),
        parley: b.map((r) => r.lost),
        digits: 0,
        target: '0 in every run',
        met: (m) => m.parleyRuns.every((x) => x === 0),
      },
      {
        name: 'tokens out of order',
        unit: 'tok',
        better: 'lower',
        baseline: a.map((r) => r.outOfOrder),
        parley: b.map((r) => r.outOfOrder),
        digits: 0,
        target: '0 in every run',
        met: (m) => m.parleyRuns.every((x) => x === 0),
      },
    ]);

    // ---- where the time goes ----
    const offset = await clockOffset();
    console.log(
      `\n-- where the time goes (one more ${Math.min(4, opts.BENCH_SECONDS)} s run per side, the relay tapped where each token reaches it; helper clock placed on this one to ±${fmt(offset.error, 3)} ms) --`,
    );
    for (const side of ['bare', 'parley'] as const) {
      tap = [];
      const r = await run(side, Math.min(4, opts.BENCH_SECONDS));
      const taps = tap;
      tap = undefined;
      const atRelay: number[] = [];
      for (const [at, text] of taps) for (const us of stampsIn(text)) atRelay.push(at - (r.epoch + us / 1000 - offset.offset));
      const hop = (l: LatencySummary) => `p50 ${fmt(l.p50)} ms  p90 ${fmt(l.p90)} ms  p99 ${fmt(l.p99)} ms`;
      const where = side === 'bare' ? 'PUBLISH → relay pmessage' : 'JobStreamWriter → XADD + PUBLISH → hub relays';
      console.log(`${side === 'bare' ? 'A bare  ' : 'B Parley'}: producer → relay (${where}): ${hop(summarize(atRelay))}`);
      console.log(`          producer → client, end to end:                 ${hop(r.latency)}`);
    }

    // ---- capacity ----
    if (opts.BENCH_CAPACITY_STREAMS.length) {
      console.log(
        `\n-- capacity: streams × ${opts.BENCH_TOKENS_PER_S} tok/s while p99 <= 5 ms and nothing is lost (${opts.BENCH_CAPACITY_SECONDS} s per step, the sides alternating) --`,
      );
      const held: Record<'bare' | 'parley', number> = { bare: 0, parley: 0 };
      const open = { bare: true, parley: true };
      for (const streams of opts.BENCH_CAPACITY_STREAMS) {
        for (const side of ['bare', 'parley'] as const) {
          if (!open[side]) continue;
          const r = await run(side, opts.BENCH_CAPACITY_SECONDS, streams);
          const ok = r.latency.p99 <= 5 && r.lost === 0 && r.outOfOrder === 0;
          console.log(`  ${streams} streams ${line(side === 'bare' ? 'A bare  ' : 'B Parley', r)}  ${ok ? 'held' : 'passed the limit'}`);
          if (ok) held[side] = streams;
          else open[side] = false;
        }
        if (!open.bare && !open.parley) break;
      }
      const cap = (side: 'bare' | 'parley') =>
        held[side] === 0
          ? `below ${opts.BENCH_CAPACITY_STREAMS[0]} streams`
          : `${held[side]} streams × ${opts.BENCH_TOKENS_PER_S} = ${held[side] * opts.BENCH_TOKENS_PER_S} tok/s${open[side] ? ' (the sweep ended before the limit)' : ''}`;
      console.log(`relay capacity (p99 <= 5 ms, 0 lost): bare ${cap('bare')}; Parley ${cap('parley')}`);
    }
  } finally {
    await teardown();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
