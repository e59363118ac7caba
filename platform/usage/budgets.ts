/**
 * Token budgets: rules in Postgres (`budgets`), counters in Redis.
 *
 * Rules. `scope: 'user'` (subject = user id) or `scope: 'role'` (subject = a
 * role), per `period` 'day' or 'month' (UTC), in tokens (prompt + completion).
 * A role rule is the allowance of each user of the role, counted per user; a
 * user rule for the same period replaces it, up or down.
 *
 * Counters, kept for every user whether a rule applies or not (so a rule set
 * later takes effect at once), hold tokens consumed plus tokens reserved by
 * unfinished jobs:
 *   {prefix}:budget:user:{userId}:day:{YYYY-MM-DD}   integer, expires 2 days after its day
 *   {prefix}:budget:user:{userId}:month:{YYYY-MM}    integer, expires 2 days after its month
 * Per job, a hash {prefix}:budget:job:{jobId}:
 *   d, m    the two counter keys the job charges (fixed when first charged)
 *   u, role the owner, and the role the limits were resolved for
 *   r       tokens currently charged for the job (its reservation; grows if it consumes more)
 *   c       tokens the job consumed outside its own metered call (a knowledge extraction's LLM pass, a
 *           discussion turn's moderator), added by `consume` and counted at settlement
 * deleted when the job settles (so a manual retry of the same job starts a fresh charge), else
 * expiring 7 days after it was last charged.
 * {prefix}:budget:rules-version is INCR'd on every rule change, so every
 * process reloads its cached rules at its next look.
 *
 * Lifecycle of a job's tokens:
 *   1. reserve (API, at submit): estimated prompt (chars / 4) + num_predict, atomically,
 *      only if every limited counter stays within its limit; else 429 BUDGET_EXHAUSTED.
 *   2. guard (worker, every N streamed tokens): charges consumption beyond the
 *      reservation, and stops the job when consumption (not reservations) passes
 *      a limit, e.g. after an admin lowered it.
 *   3. settle (any process, from the job store's terminal write, which runs it
 *      exactly once per run): counters += actual + c - reserved.
 * Tokens a job consumes outside its own call (`consume`, from the job store's fenced
 * usage record) go into its hash's `c` while it holds one, so they draw on its
 * reservation and count when it settles; a job that holds none charges them to its
 * owner's counters at once.
 */
import type { Redis } from 'ioredis';
import type { BudgetPeriod, BudgetScope } from '../../shared/index.ts';
import type { Db } from '../connections/index.ts';
import { JobFailure } from '../jobs/index.ts';
import { luaScript } from '../connections/index.ts';

export interface BudgetRule {
  scope: BudgetScope;
  subject: string;
  period: BudgetPeriod;
  limitTokens: number;
  updatedAt: Date;
  updatedBy: string | null;
}

export interface BudgetLimit {
  limitTokens: number;
  source: BudgetScope;
}
export type BudgetLimits = Record<BudgetPeriod, BudgetLimit | null>;

export interface BudgetOwner {
  id: string;
  role: string;
}

/** About four characters per token for English with BPE vocabularies; what reservations assume for prompts. */
export function estimatePromptTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/** The limit in force per period: the user's own rule, else their role's, else none. */
export function resolveLimits(rules: readonly BudgetRule[], owner: BudgetOwner): BudgetLimits {
  const pick = (period: BudgetPeriod): BudgetLimit | null => {
    const own = rules.find((r) => r.scope === 'user' && r.subject === owner.id && r.period === period);
    if (own) return { limitTokens: own.limitTokens, source: 'user' };
    const role = rules.find((r) => r.scope === 'role' && r.subject === owner.role && r.period === period);
    return role ? { limitTokens: role.limitTokens, source: 'role' } : null;
  };
  return { day: pick('day'), month: pick('month') };
}

/** UTC period windows of an instant. */
export function periodsOf(at: Date): Record<BudgetPeriod, { key: string; resetsAt: Date }> {
  const y = at.getUTCFullYear();
  const m = at.getUTCMonth();
  const d = at.getUTCDate();
  return {
    day: { key: at.toISOString().slice(0, 10), resetsAt: new Date(Date.UTC(y, m, d + 1)) },
    month: { key: at.toISOString().slice(0, 7), resetsAt: new Date(Date.UTC(y, m + 1, 1)) },
  };
}

const DAY_S = 86_400;

/*
 * Every script: KEYS[1] day counter, KEYS[2] month counter, KEYS[3] job hash.
 * Limits are -1 when no rule applies to that period. A counter gets its
 * expiry when it is created (TTL -1), never moved later: a job settling after
 * midnight charges the day it was reserved in, and must not extend that day.
 */

/**
 * ARGV[1] tokens, ARGV[2] day limit, ARGV[3] month limit, ARGV[4] day counter expiry (unix s),
 * ARGV[5] month counter expiry, ARGV[6] job hash expiry, ARGV[7] owner id, ARGV[8] role.
 * Returns {1, dayCounter, monthCounter, 1} when this call reserved, {1, dayCounter, monthCounter, 0}
 * when the job already held a reservation (idempotent: nothing is charged, and the reservation is not
 * this call's to release), {0, period (1 day, 2 month), counter} when it would pass that limit;
 * nothing is charged then.
 */
const RESERVE = `
local c = { tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(redis.call('GET', KEYS[2]) or '0') }
if redis.call('EXISTS', KEYS[3]) == 1 then return {1, c[1], c[2], 0} end
local n = tonumber(ARGV[1])
for i = 1, 2 do
  local limit = tonumber(ARGV[i + 1])
  if limit >= 0 and c[i] + n > limit then return {0, i, c[i]} end
end
for i = 1, 2 do
  redis.call('INCRBY', KEYS[i], n)
  if redis.call('TTL', KEYS[i]) == -1 then redis.call('EXPIREAT', KEYS[i], ARGV[i + 3]) end
end
redis.call('HSET', KEYS[3], 'd', KEYS[1], 'm', KEYS[2], 'u', ARGV[7], 'role', ARGV[8], 'r', n)
redis.call('EXPIREAT', KEYS[3], ARGV[6])
return {1, c[1] + n, c[2] + n, 1}
`;

/**
 * ARGV[1] tokens the job's own call has consumed so far, ARGV[2..8] as RESERVE.
 * The job's consumption is that plus what it consumed beside its call (`c`,
 * from CONSUME: a moderator's pick, an LLM pass), every attempt's. Charges
 * consumption beyond the reservation (creating the hash for a job never
 * reserved), then measures consumption: counter − reservation + consumed.
 * Returns {1, headroom} (tokens the job may still consume; -1 = unlimited) or
 * {0, period, consumption} when a limit is passed or the extra charge does not fit.
 */
const CHECK = `
local r = tonumber(redis.call('HGET', KEYS[3], 'r') or '0')
local u = tonumber(ARGV[1]) + tonumber(redis.call('HGET', KEYS[3], 'c') or '0')
local c = { tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(redis.call('GET', KEYS[2]) or '0') }
if u > r or redis.call('EXISTS', KEYS[3]) == 0 then
  local delta = math.max(u - r, 0)
  for i = 1, 2 do
    local limit = tonumber(ARGV[i + 1])
    if limit >= 0 and c[i] + delta > limit then return {0, i, c[i] - r + u} end
  end
  for i = 1, 2 do
    redis.call('INCRBY', KEYS[i], delta)
    if redis.call('TTL', KEYS[i]) == -1 then redis.call('EXPIREAT', KEYS[i], ARGV[i + 3]) end
    c[i] = c[i] + delta
  end
  r = r + delta
  redis.call('HSET', KEYS[3], 'd', KEYS[1], 'm', KEYS[2], 'u', ARGV[7], 'role', ARGV[8], 'r', r)
  redis.call('EXPIREAT', KEYS[3], ARGV[6])
end
local headroom = -1
for i = 1, 2 do
  local limit = tonumber(ARGV[i + 1])
  if limit >= 0 then
    local consumed = c[i] - r + u
    if consumed > limit then return {0, i, consumed} end
    if headroom < 0 or limit - consumed < headroom then headroom = limit - consumed end
  end
end
return {1, headroom}
`;

/**
 * ARGV[1] tokens actually used, ARGV[2] day counter expiry, ARGV[3] month counter expiry.
 * counters += used + consumed outside the call (c) − reserved, and the job hash is deleted.
 * Returns the difference.
 */
const SETTLE = `
local r = tonumber(redis.call('HGET', KEYS[3], 'r') or '0')
local delta = tonumber(ARGV[1]) + tonumber(redis.call('HGET', KEYS[3], 'c') or '0') - r
for i = 1, 2 do
  if delta ~= 0 then
    redis.call('INCRBY', KEYS[i], delta)
    if redis.call('TTL', KEYS[i]) == -1 then redis.call('EXPIREAT', KEYS[i], ARGV[i + 1]) end
  end
end
redis.call('DEL', KEYS[3])
return delta
`;

/**
 * ARGV[1] tokens a job consumed outside its own call, ARGV[2..3] counter expiries. While the job
 * holds a hash (KEYS[3]) they go into its `c`, for settlement; otherwise straight onto the counters.
 */
const CONSUME = `
local n = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HINCRBY', KEYS[3], 'c', n)
  return 0
end
for i = 1, 2 do
  redis.call('INCRBY', KEYS[i], n)
  if redis.call('TTL', KEYS[i]) == -1 then redis.call('EXPIREAT', KEYS[i], ARGV[i + 1]) end
end
return 1
`;

const scripts = { reserve: luaScript(RESERVE), check: luaScript(CHECK), settle: luaScript(SETTLE), consume: luaScript(CONSUME) };

/** Refusal of a reservation, with what a client needs to decide when to come back. */
export interface BudgetRefusal {
  period: BudgetPeriod;
  source: BudgetScope;
  limitTokens: number;
  /** Consumed plus reserved in the period, before this request. */
  usedTokens: number;
  requestedTokens: number;
  resetsAt: Date;
}

/** What the llm.chat handler holds while it streams. */
export interface BudgetGuard {
  /** Completion tokens the budget still allows this job, or undefined when no rule limits its owner. */
  readonly maxCompletionTokens: number | undefined;
  /** Check after every this many streamed tokens. */
  readonly every: number;
  /** Charges progress; throws JobFailure BUDGET_EXHAUSTED once the owner's consumption passes a limit. */
  check(completionTokens: number): Promise<void>;
}

export interface BudgetGuards {
  open(jobId: string, promptTokensEstimate: number): Promise<BudgetGuard>;
}

export interface BudgetDeps {
  db: Db;
  redis: Redis;
  prefix: string;
  /** Guards check every this many tokens. @defaultValue 16 */
  checkEveryTokens?: number;
  /** Cached rules are reloaded after this long even without a version change (edits made in SQL). @defaultValue 30 s */
  rulesMaxAgeMs?: number;
  log?: { warn(obj: object, msg: string): void };
  now?: () => Date;
}

export function createBudgets(deps: BudgetDeps) {
  const { db, redis, prefix } = deps;
  const now = deps.now ?? (() => new Date());
  const every = deps.checkEveryTokens ?? 16;
  const maxAge = deps.rulesMaxAgeMs ?? 30_000;
  const versionKey = `${prefix}:budget:rules-version`;
  // One hash tag for every counter and reservation: a script touches a user's day and month counters and
  // a job's reservation together, and a job is looked up by its id alone, so on a Redis Cluster they all
  // share one slot. Budget traffic is a few commands per metered job, well within one node.
  const counterKey = (userId: string, period: BudgetPeriod, key: string) => `${prefix}:{budget}:user:${userId}:${period}:${key}`;
  const jobKey = (jobId: string) => `${prefix}:{budget}:job:${jobId}`;
  let cache: { rules: BudgetRule[]; version: string | null; loadedAt: number } | undefined;

  async function rules(): Promise<BudgetRule[]> {
    const version = await redis.get(versionKey);
    if (cache && cache.version === version && Date.now() - cache.loadedAt < maxAge) return cache.rules;
    const rows = (await db('budgets').select('scope', 'subject', 'period', 'limit_tokens', 'updated_at', 'updated_by')) as {
      scope: BudgetScope;
      subject: string;
      period: BudgetPeriod;
      limit_tokens: number;
      updated_at: Date;
      updated_by: string | null;
    }[];
    const loaded = rows.map((r) => ({
      scope: r.scope,
      subject: r.subject,
      period: r.period,
      limitTokens: Number(r.limit_tokens),
      updatedAt: r.updated_at,
      updatedBy: r.updated_by,
    }));
    cache = { rules: loaded, version, loadedAt: Date.now() };
    return loaded;
  }

  async function limitsFor(owner: BudgetOwner): Promise<BudgetLimits> {
    return resolveLimits(await rules(), owner);
  }

  function windows(userId: string, at: Date) {
    const p = periodsOf(at);
    const s = (d: Date) => Math.floor(d.getTime() / 1000);
    return {
      periods: p,
      keys: [counterKey(userId, 'day', p.day.key), counterKey(userId, 'month', p.month.key)],
      expiries: [s(p.day.resetsAt) + 2 * DAY_S, s(p.month.resetsAt) + 2 * DAY_S],
    };
  }

  const limitArgs = (l: BudgetLimits) => [l.day?.limitTokens ?? -1, l.month?.limitTokens ?? -1];
  const jobExpiry = () => Math.floor(now().getTime() / 1000) + 7 * DAY_S;

  function exhausted(limits: BudgetLimits, res: number[]): JobFailure {
    const period: BudgetPeriod = res[1] === 1 ? 'day' : 'month';
    const limit = limits[period] ?? { limitTokens: 0, source: 'user' as const };
    return new JobFailure(
      'BUDGET_EXHAUSTED',
      `token budget exhausted: the ${limit.source} budget of ${limit.limitTokens} tokens per ${period} is used up (${res[2]} consumed)`,
      {
        details: { period, source: limit.source, limitTokens: limit.limitTokens, consumedTokens: Number(res[2]) },
      },
    );
  }

  /**
   * Opens a guard for a job about to stream. `ownerOf` finds the owner and
   * role of a job that was never reserved (kinds the platform enqueues itself).
   */
  async function openGuard(jobId: string, promptTokensEstimate: number, ownerOf: (jobId: string) => Promise<BudgetOwner | undefined>): Promise<BudgetGuard> {
    const key = jobKey(jobId);
    const unguarded: BudgetGuard = { maxCompletionTokens: undefined, every, check: async () => {} };
    let d: string | null | undefined;
    let m: string | null | undefined;
    let owner: BudgetOwner | undefined;
    // The rules are read beside the reservation's fields (their version check goes out with the HMGET:
    // two commands, not a pipeline, as the keys live in different Cluster slots), for the first check.
    // Without them that check reads them itself.
    let first: BudgetRule[] | undefined;
    try {
      const [fields, loaded] = await Promise.all([redis.hmget(key, 'd', 'm', 'u', 'role'), rules().catch(() => undefined)]);
      const [hd, hm, u, role] = fields;
      first = loaded;
      [d, m] = [hd, hm];
      owner = u && typeof role === 'string' ? { id: u, role } : await ownerOf(jobId);
    } catch (err) {
      deps.log?.warn({ err, jobId }, 'budget guard unavailable; the job runs bounded by its reservation only');
      return unguarded;
    }
    if (!owner) return unguarded;
    const fixedKeys = d && m ? [d, m] : undefined;
    /** Headroom in tokens, undefined when unlimited; throws BUDGET_EXHAUSTED. */
    const check = async (consumed: number): Promise<number | undefined> => {
      const limits = resolveLimits(first ?? (await rules()), owner);
      first = undefined;
      const w = windows(owner.id, now());
      const res = (await scripts.check.run(
        redis,
        [...(fixedKeys ?? w.keys), key],
        [consumed, ...limitArgs(limits), ...w.expiries, jobExpiry(), owner.id, owner.role],
      )) as number[];
      if (res[0] !== 1) throw exhausted(limits, res);
      return res[1]! < 0 ? undefined : res[1]!;
    };
    const bestEffort = async (consumed: number): Promise<number | undefined> => {
      try {
        return await check(consumed);
      } catch (err) {
        if (err instanceof JobFailure) throw err;
        // Enforcement while streaming is best effort: the reservation made at submit still bounds the job.
        deps.log?.warn({ err, jobId }, 'budget check failed; continuing');
        return undefined;
      }
    };
    const headroom = await bestEffort(promptTokensEstimate);
    return {
      maxCompletionTokens: headroom,
      every,
      check: async (completionTokens) => {
        await bestEffort(promptTokensEstimate + completionTokens);
      },
    };
  }

  return {
    rules,
    limitsFor,

    /** Call after changing the `budgets` table: every process reloads its rules at its next look. */
    async rulesChanged(): Promise<void> {
      cache = undefined;
      await redis.incr(versionKey);
    },

    /** Tokens consumed plus reserved by the user in the current day and month. */
    async usage(userId: string): Promise<Record<BudgetPeriod, { usedTokens: number; resetsAt: Date }>> {
      const w = windows(userId, now());
      const [day, month] = await redis.mget(w.keys[0]!, w.keys[1]!);
      return {
        day: { usedTokens: Number(day ?? 0), resetsAt: w.periods.day.resetsAt },
        month: { usedTokens: Number(month ?? 0), resetsAt: w.periods.month.resetsAt },
      };
    },

    /**
     * Reserves `tokens` for a job about to be accepted, against the owner's
     * counters; refused (nothing charged) if a limited period cannot hold it.
     * `limits` may be given instead of the rules table (tools, tests).
     * `created` is false when the job already held a reservation (nothing was
     * charged): it is not the caller's, and a caller that does not go ahead
     * must not `release` it.
     */
    async reserve(args: {
      jobId: string;
      owner: BudgetOwner;
      tokens: number;
      limits?: BudgetLimits;
    }): Promise<{ ok: true; created: boolean } | { ok: false; refusal: BudgetRefusal }> {
      const limits = args.limits ?? (await limitsFor(args.owner));
      const w = windows(args.owner.id, now());
      const res = (await scripts.reserve.run(
        redis,
        [...w.keys, jobKey(args.jobId)],
        [args.tokens, ...limitArgs(limits), ...w.expiries, jobExpiry(), args.owner.id, args.owner.role],
      )) as number[];
      if (res[0] === 1) return { ok: true, created: res[3] === 1 };
      const period: BudgetPeriod = res[1] === 1 ? 'day' : 'month';
      const limit = limits[period]!;
      return {
        ok: false,
        refusal: {
          period,
          source: limit.source,
          limitTokens: limit.limitTokens,
          usedTokens: Number(res[2]),
          requestedTokens: args.tokens,
          resetsAt: w.periods[period].resetsAt,
        },
      };
    },

    /**
     * Settles a job: its counters move by actual − reserved (a plain release
     * when `tokens` is 0), and its reservation is gone. A job never reserved
     * is charged its actual tokens in the current periods. Call it once per
     * run: the job store's terminal write guarantees that (see settleFinishedJobs).
     */
    async settle(args: { jobId: string; ownerId: string; tokens: number }): Promise<void> {
      const key = jobKey(args.jobId);
      const [d, m] = await redis.hmget(key, 'd', 'm');
      if (!(d && m) && args.tokens === 0) return;
      const w = windows(args.ownerId, now());
      await scripts.settle.run(redis, [...(d && m ? [d, m] : w.keys), key], [args.tokens, ...w.expiries]);
    },

    /**
     * Tokens `jobId` consumed outside its own metered call, for its owner: counted when the job
     * settles if it holds a reservation (so they draw on it), else charged to the owner's counters now.
     */
    async consume(args: { jobId: string; ownerId: string; tokens: number }): Promise<void> {
      if (args.tokens <= 0) return;
      const w = windows(args.ownerId, now());
      await scripts.consume.run(redis, [...w.keys, jobKey(args.jobId)], [args.tokens, ...w.expiries]);
    },

    /** Releases the reservation of a job that was not accepted after all (the insert or the enqueue failed). */
    async release(jobId: string): Promise<void> {
      const key = jobKey(jobId);
      const [d, m, u] = await redis.hmget(key, 'd', 'm', 'u');
      if (!d || !m || !u) return;
      const w = windows(u, now());
      await scripts.settle.run(redis, [d, m, key], [0, ...w.expiries]);
    },

    /** Guards for streaming handlers; see `openGuard`. */
    guards(ownerOf: (jobId: string) => Promise<BudgetOwner | undefined>): BudgetGuards {
      return { open: (jobId, promptTokensEstimate) => openGuard(jobId, promptTokensEstimate, ownerOf) };
    },
  };
}

export type Budgets = ReturnType<typeof createBudgets>;
