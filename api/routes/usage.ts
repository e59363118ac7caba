/** Token usage and budget routes. */
import { AdminUsageQuery, AdminUsageReport, Budget, BudgetList, ListBudgetsQuery, PutBudgetBody, UsageQuery, UsageReport } from '../../shared/index.ts';
import { allUsage, listBudgets, ownUsage, putBudget, type UsageDeps } from '../domain/usage.ts';
import { problem, route, type Route } from '../http/route.ts';

export function usageRoutes(deps: UsageDeps): Route[] {
  return [
    route({
      method: 'get',
      path: '/v1/usage',
      operationId: 'getUsage',
      tags: ['usage'],
      access: 'usage:self',
      summary: 'Your token usage per UTC day and model (default: the last 30 days), with totals and where you stand against your budgets.',
      query: UsageQuery,
      responses: { 200: { description: 'Usage', schema: UsageReport }, 400: problem('Bad range') },
      async handle({ query, actor }) {
        return { status: 200, body: await ownUsage(deps, actor, query) };
      },
    }),
    route({
      method: 'get',
      path: '/v1/admin/usage',
      operationId: 'getAllUsage',
      tags: ['usage'],
      access: 'usage:any',
      summary: "Everyone's token usage, grouped by user, model or day, filtered by range, user and model.",
      query: AdminUsageQuery,
      responses: { 200: { description: 'Usage', schema: AdminUsageReport }, 400: problem('Bad range') },
      async handle({ query }) {
        return { status: 200, body: await allUsage(deps, query) };
      },
    }),
    route({
      method: 'get',
      path: '/v1/admin/budgets',
      operationId: 'listBudgets',
      tags: ['usage'],
      access: 'users:manage',
      summary: 'Token budgets, per user or per role, per day or month.',
      query: ListBudgetsQuery,
      responses: { 200: { description: 'Budgets', schema: BudgetList } },
      async handle({ query }) {
        return { status: 200, body: await listBudgets(deps, query) };
      },
    }),
    route({
      method: 'put',
      path: '/v1/admin/budgets',
      operationId: 'putBudget',
      tags: ['usage'],
      access: 'users:manage',
      summary: 'Set a token budget (limitTokens: null removes it). Applies at once, to running streams too. Audited.',
      body: PutBudgetBody,
      responses: {
        200: { description: 'The budget', schema: Budget },
        204: { description: 'Removed' },
        400: problem('Not a role (scope role) or not a user id (scope user)'),
        404: problem('No user with this id (scope user)'),
      },
      async handle({ body, actor, ip, userAgent }) {
        const budget = await putBudget(deps, actor, body, { ip, userAgent });
        return budget ? { status: 200, body: budget } : { status: 204 };
      },
    }),
  ];
}
