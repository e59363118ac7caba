/**
 * Token usage reports (from `usage_daily`, written by the job store's
 * terminal write) and budget rules (table `budgets`, enforced by
 * platform/usage/budgets.ts). Plain functions; api/routes/usage.ts calls them.
 */
import { SYSTEM_USER_ID } from '../../platform/jobs/index.ts';
import type { Budgets } from '../../platform/usage/index.ts';
import type { Db } from '../../platform/connections/index.ts';
import {
  canonicalModelName,
  type AdminUsageQuery,
  type AdminUsageReport,
  type Budget,
  type BudgetList,
  type BudgetStatus,
  type ListBudgetsQuery,
  type PutBudgetBody,
  type UsageQuery,
  type UsageReport,
  type UsageTotals,
} from '../../shared/index.ts';
import type { Audit } from '../auth/audit.ts';
import type { Actor } from '../auth/permissions.ts';
import { AppError } from './errors.ts';

export interface UsageDeps {
  db: Db;
  budgets: Budgets;
  audit?: Audit;
}

const MAX_RANGE_DAYS = 366;

/** The inclusive UTC day range of a query: the last 30 days by default, at most a year. */
function range(q: { from?: string; to?: string }): { from: string; to: string } {
  const today = new Date().toISOString().slice(0, 10);
  const to = q.to ?? today;
  // The default start is 29 days before `to`, never before the first day there is (0001-01-01).
  const from = q.from ?? new Date(Math.max(Date.parse(`${to}T00:00:00Z`) - 29 * 86_400_000, Date.parse('0001-01-01T00:00:00Z'))).toISOString().slice(0, 10);
  const days = (Date.parse(to) - Date.parse(from)) / 86_400_000;
  if (days < 0) throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'query.from', message: 'must not be after `to`' }] });
  if (days >= MAX_RANGE_DAYS)
    throw new AppError('VALIDATION_FAILED', { errors: [{ path: 'query.from', message: `the range may span at most ${MAX_RANGE_DAYS} days` }] });
  return { from, to };
}

interface SumRow {
  prompt_tokens: number | string;
  completion_tokens: number | string;
  jobs: number | string;
  estimated_jobs: number | string;
}

const sums = `coalesce(sum(prompt_tokens), 0) as prompt_tokens, coalesce(sum(completion_tokens), 0) as completion_tokens,
  coalesce(sum(jobs), 0) as jobs, coalesce(sum(estimated_jobs), 0) as estimated_jobs`;

function totalsOf(r: SumRow | undefined): UsageTotals {
  const promptTokens = Number(r?.prompt_tokens ?? 0);
  const completionTokens = Number(r?.completion_tokens ?? 0);
  return {
    promptTokens,
    completionTokens,
    totalTokens: promptTokens + completionTokens,
    jobs: Number(r?.jobs ?? 0),
    estimatedJobs: Number(r?.estimated_jobs ?? 0),
  };
}

/** Where the actor stands against each budget period that limits them now. */
export async function budgetStatus(deps: UsageDeps, actor: Pick<Actor, 'userId' | 'role'>): Promise<BudgetStatus[]> {
  const [limits, used] = await Promise.all([deps.budgets.limitsFor({ id: actor.userId, role: actor.role }), deps.budgets.usage(actor.userId)]);
  const out: BudgetStatus[] = [];
  for (const period of ['day', 'month'] as const) {
    const limit = limits[period];
    if (!limit) continue;
    const u = used[period];
    out.push({
      period,
      source: limit.source,
      limitTokens: limit.limitTokens,
      usedTokens: u.usedTokens,
      remainingTokens: Math.max(0, limit.limitTokens - u.usedTokens),
      resetsAt: u.resetsAt.toISOString(),
    });
  }
  return out;
}

/** The actor's own usage per day and model, newest day first, with totals and budget standing. */
export async function ownUsage(deps: UsageDeps, actor: Actor, q: UsageQuery): Promise<UsageReport> {
  const { from, to } = range(q);
  const base = () => {
    const b = deps.db('usage_daily').where('user_id', actor.userId).whereBetween('day', [from, to]);
    if (q.model) b.where('model', canonicalModelName(q.model));
    return b;
  };
  const [rows, total, budgets] = await Promise.all([
    base()
      .select(deps.db.raw(`to_char(day, 'YYYY-MM-DD') as day`), 'model', 'prompt_tokens', 'completion_tokens', 'jobs', 'estimated_jobs')
      .orderBy([{ column: 'day', order: 'desc' }, { column: 'model' }]),
    base().select(deps.db.raw(sums)).first(),
    budgetStatus(deps, actor),
  ]);
  return {
    from,
    to,
    items: (rows as (SumRow & { day: string; model: string })[]).map((r) => ({ day: r.day, model: r.model, ...totalsOf(r) })),
    totals: totalsOf(total as SumRow | undefined),
    budgets,
  };
}

/** Everyone's usage, grouped by user, model or day, largest first (days newest first). */
export async function allUsage(deps: UsageDeps, q: AdminUsageQuery): Promise<AdminUsageReport> {
  const { from, to } = range(q);
  const base = () => {
    const b = deps.db('usage_daily as u').whereBetween('u.day', [from, to]);
    if (q.userId) b.where('u.user_id', q.userId);
    if (q.model) b.where('u.model', canonicalModelName(q.model));
    return b;
  };
  const grouped = base().select(deps.db.raw(sums)).limit(q.limit);
  if (q.groupBy === 'user') {
    grouped
      .leftJoin('users', 'users.id', 'u.user_id')
      .select('u.user_id as key', 'users.username')
      .groupBy('u.user_id', 'users.username')
      .orderByRaw('sum(u.prompt_tokens + u.completion_tokens) desc, u.user_id');
  } else if (q.groupBy === 'model') {
    grouped.select('u.model as key').groupBy('u.model').orderByRaw('sum(u.prompt_tokens + u.completion_tokens) desc, u.model');
  } else {
    grouped.select(deps.db.raw(`to_char(u.day, 'YYYY-MM-DD') as key`)).groupBy('u.day').orderBy('u.day', 'desc');
  }
  const [rows, total] = await Promise.all([grouped, base().select(deps.db.raw(sums)).first()]);
  return {
    from,
    to,
    groupBy: q.groupBy,
    items: (rows as (SumRow & { key: string; username?: string | null })[]).map((r) => ({
      key: String(r.key),
      ...(q.groupBy === 'user' ? { user: { id: String(r.key), username: r.username ?? '(deleted)' } } : {}),
      ...totalsOf(r),
    })),
    totals: totalsOf(total as SumRow | undefined),
  };
}

interface BudgetRow {
  scope: Budget['scope'];
  subject: string;
  period: Budget['period'];
  limit_tokens: number | string;
  updated_at: Date;
  updated_by: string | null;
}

const toBudget = (r: BudgetRow): Budget => ({
  scope: r.scope,
  subject: r.subject,
  period: r.period,
  limitTokens: Number(r.limit_tokens),
  updatedAt: r.updated_at.toISOString(),
  updatedBy: r.updated_by,
});

export async function listBudgets(deps: UsageDeps, q: ListBudgetsQuery): Promise<BudgetList> {
  const b = deps.db('budgets').select('*').orderBy(['scope', 'subject', 'period']);
  if (q.scope) b.where('scope', q.scope);
  if (q.subject) b.where('subject', q.subject);
  return { items: ((await b) as BudgetRow[]).map(toBudget) };
}

/**
 * Sets (or, with `limitTokens: null`, removes) a budget. Takes effect at
 * once everywhere: running streams see it at their next check. Audited.
 */
export async function putBudget(deps: UsageDeps, actor: Actor, body: PutBudgetBody, meta: { ip?: string; userAgent?: string } = {}): Promise<Budget | null> {
  // The schema holds the subject's form (a role, or a user id); whether that user exists is 404.
  if (body.scope === 'user') {
    // The platform's own system user (owner of its probes) is no one to budget: as unknown as a made-up id.
    const user = await deps.db('users').where({ id: body.subject }).whereNot('id', SYSTEM_USER_ID).first('id');
    if (!user) throw new AppError('NOT_FOUND', { detail: 'No user with this id', errors: [{ path: 'subject', message: 'no user with this id' }] });
  }
  const key = { scope: body.scope, subject: body.subject, period: body.period };
  let out: Budget | null = null;
  if (body.limitTokens === null) {
    await deps.db('budgets').where(key).delete();
  } else {
    const [row] = (await deps
      .db('budgets')
      .insert({ ...key, limit_tokens: body.limitTokens, updated_by: actor.userId, updated_at: deps.db.fn.now() })
      .onConflict(['scope', 'subject', 'period'])
      .merge(['limit_tokens', 'updated_by', 'updated_at'])
      .returning('*')) as BudgetRow[];
    out = toBudget(row!);
  }
  await deps.budgets.rulesChanged();
  await deps.audit?.({
    action: 'admin.action',
    outcome: 'success',
    actorId: actor.userId,
    actorName: actor.username,
    ip: meta.ip,
    userAgent: meta.userAgent,
    targetType: 'budget',
    targetId: `${body.scope}:${body.subject}:${body.period}`,
    details: { op: 'budget.set', limitTokens: body.limitTokens },
  });
  return out;
}
