/**
 * What an operation costs, for the "where the time goes" part of a report:
 *
 * - CPU: this process (process.cpuUsage), the Redis server (INFO cpu) and
 *   every Postgres process on the machine (/proc/<pid>/stat, 10 ms ticks).
 *   Redis and Postgres are shared with anything else running, so a figure is
 *   only as clean as the machine was quiet; each report prints the other
 *   Redis clients it saw.
 * - Redis, client side: every command this process sends, by name (Lua
 *   scripts by their BullMQ name), and the round trips they took (a
 *   pipeline or MULTI is one). Counted by wrapping ioredis' sendCommand, so
 *   it sees every connection in the process, BullMQ's duplicates included.
 * - Redis, server side: INFO commandstats deltas (calls and microseconds,
 *   commands run inside Lua included).
 * - Postgres: every query any pg client in this process sends (knex's
 *   included), by statement shape, counted by wrapping pg's Client.query.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { Redis } from 'ioredis';
import pg from 'pg';

// ---- CPU ---------------------------------------------------------------------------

function cpuTimes(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3]! + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * How busy the machine is while this benchmark is idle (1 s of /proc/stat,
 * before it starts): anything else running skews both sides, latency tails
 * most. The load average is shown too, but it still carries the previous
 * benchmark of a `npm run bench`.
 */
export async function describeMachine(): Promise<string> {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, 1000));
  const b = cpuTimes();
  const cores = availableParallelism();
  const busy = ((b.busy - a.busy) / Math.max(1, b.total - a.total)) * cores;
  const note = busy > 0.25 ? `  WARNING: other processes keep ${(busy * 100).toFixed(0)}% of a core busy: figures, latency tails most, will be noisy` : '';
  return `machine: ${cores} cores, ${(busy * 100).toFixed(0)}% of one core busy before start, load ${loadavg()[0]!.toFixed(2)}, node ${process.version}${note}`;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU ticks of each Postgres process now alive, by pid (a backend that exits between two snapshots loses its ticks). */
function postgresTicks(): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      if (comm !== 'postgres' && !comm.startsWith('postgres')) continue;
      const fields = stat.slice(close + 2).split(' ');
      out.set(pid, Number(fields[11]) + Number(fields[12])); // utime, stime (fields 14, 15 of stat)
    } catch {
      // the process ended between readdir and read
    }
  }
  return out;
}

function infoField(info: string, name: string): number {
  const m = new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info);
  return m ? Number(m[1]) : 0;
}

export interface CpuSnapshot {
  at: number;
  selfMs: number;
  redisMs: number;
  postgres: Map<string, number>;
}

export async function cpuSnapshot(redis: Redis): Promise<CpuSnapshot> {
  const info = await redis.info('cpu');
  const u = process.cpuUsage();
  return {
    at: performance.now(),
    selfMs: (u.user + u.system) / 1000,
    redisMs: (infoField(info, 'used_cpu_user') + infoField(info, 'used_cpu_sys')) * 1000,
    postgres: postgresTicks(),
  };
}

export interface CpuCost {
  wallMs: number;
  selfMs: number;
  redisMs: number;
  postgresMs: number;
}

export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): CpuCost {
  let ticks = 0;
  for (const [pid, t] of b.postgres) ticks += t - (a.postgres.get(pid) ?? 0);
  return { wallMs: b.at - a.at, selfMs: b.selfMs - a.selfMs, redisMs: b.redisMs - a.redisMs, postgresMs: ticks * TICK_MS };
}

/** "node 0.21 + redis 0.05 + postgres 0.11 ms CPU per job (2 cores: 1 job/s costs ...)" */
export function describeCpu(c: CpuCost, ops: number, unit = 'job', extra: { label: string; ms: number }[] = []): string {
  const parts = [{ label: 'this process', ms: c.selfMs }, ...extra, { label: 'redis-server', ms: c.redisMs }, { label: 'postgres', ms: c.postgresMs }];
  const total = parts.reduce((s, p) => s + p.ms, 0);
  const per = parts.map((p) => `${p.label} ${(p.ms / ops).toFixed(3)}`).join(' + ');
  return `CPU ms per ${unit}: ${per} = ${(total / ops).toFixed(3)}  (machine busy ${((total / c.wallMs) * 100).toFixed(0)}% of one core over ${(c.wallMs / 1000).toFixed(1)} s)`;
}

// ---- Redis, client side ------------------------------------------------------------------

interface CommandLike {
  name: string;
  args: unknown[];
}

export interface RedisCounts {
  commands: Map<string, number>;
  roundTrips: number;
}

let counting: { commands: Map<string, number>; singles: number; pipelines: WeakSet<object>; pipelineCount: number } | undefined;
let installed = false;
const scriptNames = new Map<string, string>();

function scriptName(self: Redis, sha: string): string {
  let name = scriptNames.get(sha);
  if (name) return name;
  const scripts = (self as unknown as { scriptsSet?: Record<string, { sha: string }> }).scriptsSet ?? {};
  for (const [n, s] of Object.entries(scripts)) scriptNames.set(s.sha, n.replace(/:[\d.]+$/, ''));
  name = scriptNames.get(sha) ?? `evalsha ${sha.slice(0, 8)}`;
  return name;
}

function install(): void {
  if (installed) return;
  installed = true;
  const proto = Redis.prototype as unknown as { sendCommand(this: Redis, command: CommandLike, stream?: { isPipeline?: boolean }, node?: unknown): unknown };
  const original = proto.sendCommand;
  proto.sendCommand = function (this: Redis, command: CommandLike, stream?: { isPipeline?: boolean }, node?: unknown) {
    const c = counting;
    if (c) {
      const name = command.name === 'evalsha' ? `lua ${scriptName(this, String(command.args[0]))}` : command.name;
      c.commands.set(name, (c.commands.get(name) ?? 0) + 1);
      if (stream?.isPipeline) {
        if (!c.pipelines.has(stream)) {
          c.pipelines.add(stream);
          c.pipelineCount++;
        }
      } else c.singles++;
    }
    return original.call(this, command, stream, node);
  };
}

/** Counts commands and round trips sent by every ioredis connection in this process until `stop()`. */
export function countRedisCommands(): { stop(): RedisCounts } {
  install();
  counting = { commands: new Map(), singles: 0, pipelines: new WeakSet(), pipelineCount: 0 };
  const mine = counting;
  return {
    stop: () => {
      if (counting === mine) counting = undefined;
      return { commands: mine.commands, roundTrips: mine.singles + mine.pipelineCount };
    },
  };
}

/** Commands seen in the run that are not the benchmark's own polling. */
export function describeRedisCounts(c: RedisCounts, ops: number, unit = 'job', ignore: string[] = []): string[] {
  const rows = [...c.commands].filter(([n]) => !ignore.includes(n)).sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, [, n]) => s + n, 0);
  return [
    `Redis, client side: ${(total / ops).toFixed(2)} commands and ~${(c.roundTrips / ops).toFixed(2)} round trips per ${unit}`,
    ...rows.filter(([, n]) => n / ops >= 0.01).map(([n, k]) => `    ${(k / ops).toFixed(2).padStart(6)}  ${n}`),
  ];
}

// ---- Redis, server side ------------------------------------------------------------------

export type CommandStats = Map<string, { calls: number; usec: number }>;

export async function commandStats(redis: Redis): Promise<CommandStats> {
  const info = await redis.info('commandstats');
  const out: CommandStats = new Map();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
  return out;
}

export function describeCommandStats(a: CommandStats, b: CommandStats, ops: number, unit = 'job'): string[] {
  const rows: [string, number, number][] = [];
  for (const [name, v] of b) {
    const before = a.get(name) ?? { calls: 0, usec: 0 };
    const calls = v.calls - before.calls;
    if (calls > 0) rows.push([name, calls, v.usec - before.usec]);
  }
  rows.sort((x, y) => y[2] - x[2]);
  const usec = rows.reduce((s, r) => s + r[2], 0);
  return [
    `Redis, server side (INFO commandstats, Lua-internal calls included): ${(usec / ops).toFixed(1)} us of command time per ${unit}`,
    ...rows
      .filter(([, calls]) => calls / ops >= 0.05)
      .slice(0, 14)
      .map(([n, calls, us]) => `    ${(calls / ops).toFixed(2).padStart(6)} x ${n.padEnd(16)} ${(us / ops).toFixed(1).padStart(6)} us`),
  ];
}

/** Other clients on the Redis server (not this process's): a busy neighbour makes server-side figures noisy. */
export async function otherRedisClients(redis: Redis): Promise<number> {
  const list = (await redis.client('LIST')) as string;
  return list.split('\n').filter((l) => l.trim() && !/name=(parley-|bench-)/.test(l) && !/cmd=(client|monitor)/.test(l)).length;
}

// ---- Postgres ------------------------------------------------------------------------------

function statementShape(sql: string): string {
  const s = sql.replace(/\s+/g, ' ').trim().toLowerCase();
  const verb = s.startsWith('with ') ? `with…${/\)\s*(select|insert|update|delete)\b/.exec(s)?.[1] ?? ''}` : (s.split(' ')[0] ?? '?');
  const table = /(?:from|into|update)\s+"?([a-z_]+)"?/.exec(s)?.[1] ?? '?';
  return `${verb} ${table}`;
}

interface QueryStats {
  count: number;
  /** Milliseconds from the query being sent on its connection to its answer (pool waits not included). */
  ms: number[];
}

let queryStats: Map<string, QueryStats> | undefined;
let pgInstalled = false;

function installPg(): void {
  if (pgInstalled) return;
  pgInstalled = true;
  const proto = pg.Client.prototype as unknown as { query(this: unknown, ...args: unknown[]): unknown };
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    const stats = queryStats;
    if (!stats) return original.apply(this, args);
    const q = args[0];
    const sql = typeof q === 'string' ? q : typeof (q as { text?: unknown })?.text === 'string' ? (q as { text: string }).text : '';
    const shape = statementShape(sql);
    let st = stats.get(shape);
    if (!st) stats.set(shape, (st = { count: 0, ms: [] }));
    st.count++;
    const t0 = performance.now();
    const done = () => st.ms.push(performance.now() - t0);
    const last = args.length - 1;
    if (typeof args[last] === 'function') {
      const cb = args[last] as (...a: unknown[]) => void;
      args[last] = (...a: unknown[]) => {
        done();
        cb(...a);
      };
      return original.apply(this, args);
    }
    const r = original.apply(this, args);
    if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(done, done);
    return r;
  };
}

/** Counts (and times) queries sent by every pg client in this process (knex's included) until `stop()`, by statement shape. */
export function countQueries(): { stop(): Map<string, QueryStats> } {
  installPg();
  const stats = new Map<string, QueryStats>();
  queryStats = stats;
  return {
    stop: () => {
      if (queryStats === stats) queryStats = undefined;
      return stats;
    },
  };
}

export function describeQueries(stats: Map<string, QueryStats>, ops: number, unit = 'job'): string[] {
  const rows = [...stats].sort((a, b) => b[1].count - a[1].count);
  const total = rows.reduce((s, [, q]) => s + q.count, 0);
  return [
    `Postgres: ${(total / ops).toFixed(2)} queries per ${unit} (time from send to answer on its connection, p50/p99)`,
    ...rows
      .filter(([, q]) => q.count / ops >= 0.01)
      .map(([shape, q]) => {
        const ms = [...q.ms].sort((a, b) => a - b);
        const p = (x: number) => (ms.length ? ms[Math.min(ms.length - 1, Math.ceil(ms.length * x) - 1)]!.toFixed(2) : '-');
        return `    ${(q.count / ops).toFixed(2).padStart(6)}  ${shape.padEnd(24)} ${p(0.5)}/${p(0.99)} ms`;
      }),
  ];
}

/**
 * The round trip of one committed single-row UPDATE on `jobs`, serially:
 * with synchronous_commit on, mostly the WAL flush (fsync) of this disk.
 * Touches only `updated_at` of a row the benchmark owns.
 */
export async function commitLatency(db: import('../../platform/connections/index.ts').Db, jobId: string, samples = 100): Promise<{ p50: number; p99: number }> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    await db.raw('update jobs set updated_at = now() where id = ?', [jobId]);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(samples / 2)]!, p99: times[Math.min(samples - 1, Math.ceil(samples * 0.99) - 1)]! };
}
