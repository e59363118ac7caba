/**
 * The HTTP shapes of token usage (/v1/usage, /v1/admin/usage) and budgets
 * (/v1/admin/budgets), shared by the API, its OpenAPI document and the SDK.
 * Days and months are UTC.
 */
import { z } from 'zod';
import { Role } from './auth-api.ts';

/** A UTC calendar day, YYYY-MM-DD. */
export const UsageDay = z.iso.date().refine((d) => d >= '0001-01-01', 'must fall between the years 0001 and 9999');

export const UsageTotals = z.object({
  promptTokens: z.number().int(),
  completionTokens: z.number().int(),
  totalTokens: z.number().int(),
  /** Jobs that recorded usage (every metered job that reached Ollama). */
  jobs: z.number().int(),
  /** Of those, jobs whose counts are estimates (cancelled, failed or stopped by a budget mid-stream). */
  estimatedJobs: z.number().int(),
});
export type UsageTotals = z.infer<typeof UsageTotals>;

/** Both bounds inclusive. @defaultValue the last 30 days up to today */
export const UsageQuery = z.object({
  from: UsageDay.optional(),
  to: UsageDay.optional(),
  model: z.string().max(200).optional(),
});
export type UsageQuery = z.infer<typeof UsageQuery>;

export const UsageRow = UsageTotals.extend({ day: UsageDay, model: z.string() });
export type UsageRow = z.infer<typeof UsageRow>;

export const BudgetScope = z.enum(['user', 'role']);
export type BudgetScope = z.infer<typeof BudgetScope>;
export const BudgetPeriod = z.enum(['day', 'month']);
export type BudgetPeriod = z.infer<typeof BudgetPeriod>;

/** Where a user stands against one budget period now. */
export const BudgetStatus = z.object({
  period: BudgetPeriod,
  /** The rule in force: the user's own, or their role's. */
  source: BudgetScope,
  limitTokens: z.number().int(),
  /** Tokens consumed this period plus tokens reserved by unfinished jobs. */
  usedTokens: z.number().int(),
  remainingTokens: z.number().int(),
  resetsAt: z.iso.datetime(),
});
export type BudgetStatus = z.infer<typeof BudgetStatus>;

export const UsageReport = z.object({
  from: UsageDay,
  to: UsageDay,
  items: z.array(UsageRow),
  totals: UsageTotals,
  budgets: z.array(BudgetStatus),
});
export type UsageReport = z.infer<typeof UsageReport>;

export const AdminUsageQuery = UsageQuery.extend({
  groupBy: z.enum(['user', 'model', 'day']).default('user'),
  userId: z.uuid().toLowerCase().optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
});
export type AdminUsageQuery = z.infer<typeof AdminUsageQuery>;

export const AdminUsageItem = UsageTotals.extend({
  /** The user id, model name or day, per `groupBy`. */
  key: z.string(),
  user: z.object({ id: z.string(), username: z.string() }).optional(),
});
export type AdminUsageItem = z.infer<typeof AdminUsageItem>;

export const AdminUsageReport = z.object({
  from: UsageDay,
  to: UsageDay,
  groupBy: z.enum(['user', 'model', 'day']),
  items: z.array(AdminUsageItem),
  totals: UsageTotals,
});
export type AdminUsageReport = z.infer<typeof AdminUsageReport>;

/**
 * A token budget. `scope: 'role'` is the allowance of every user of that
 * role, each counted alone; a `user` budget for the same period replaces it.
 */
export const Budget = z.object({
  scope: BudgetScope,
  /** A user id for `user`, a role name for `role`. */
  subject: z.string(),
  period: BudgetPeriod,
  limitTokens: z.number().int().positive(),
  updatedAt: z.iso.datetime(),
  updatedBy: z.string().nullable(),
});
export type Budget = z.infer<typeof Budget>;

/** Sets a budget; `limitTokens: null` removes it. The subject is a role for `scope: role`, a user id for `scope: user`. */
const budgetFields = { period: BudgetPeriod, limitTokens: z.number().int().min(1).max(1e12).nullable() };
export const PutBudgetBody = z.discriminatedUnion('scope', [
  z.object({ scope: z.literal('role'), subject: Role, ...budgetFields }).strict(),
  z.object({ scope: z.literal('user'), subject: z.uuid().toLowerCase(), ...budgetFields }).strict(),
]);
export type PutBudgetBody = z.infer<typeof PutBudgetBody>;

export const ListBudgetsQuery = z.object({ scope: BudgetScope.optional(), subject: z.string().max(100).optional() });
export type ListBudgetsQuery = z.infer<typeof ListBudgetsQuery>;

export const BudgetList = z.object({ items: z.array(Budget) });
export type BudgetList = z.infer<typeof BudgetList>;
