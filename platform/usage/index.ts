/**
 * Token usage and budgets: reservations at submit, checks while a job
 * streams, settlement when it ends.
 */
export { createBudgets, estimatePromptTokens, resolveLimits } from './budgets.ts';
export type { BudgetGuards, BudgetRefusal, BudgetRule, Budgets } from './budgets.ts';
