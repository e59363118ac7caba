/**
 * Agent use cases: a name, a persona (system prompt), a model and its
 * parameters. Owners manage their own agents; `discussions:any` (admins)
 * sees and manages all. Anyone else gets NOT_FOUND, so existence does not
 * leak.
 */
import { randomUUID } from 'node:crypto';
import type { RoleCap } from '../../platform/config.ts';
import type { AgentRow, DiscussionStore } from '../../platform/discussions/index.ts';
import { normalizeModelName, type Agent, type AgentInput, type AgentList, type AgentPatch, type OllamaOptions } from '../../shared/index.ts';
import { can, type Actor, type Role } from '../auth/permissions.ts';
import { AppError } from '../http/app-error.ts';

export interface AgentDeps {
  rooms: DiscussionStore;
  /** The model of an agent that names none. */
  chatModel: string;
  /**
   * The role caps on a model and its parameters (allowed models,
   * num_predict, num_ctx): throws AppError (LIMIT_EXCEEDED) to refuse.
   * Checked when an agent is created or changed and for a fork's overrides,
   * so every turn an agent speaks is within its owner's caps.
   */
  checkAgent?: (actor: Actor, agent: { model: string; params: OllamaOptions }) => Promise<void>;
}

export function toAgentView(row: AgentRow): Agent {
  return {
    id: row.id,
    owner: row.owner_id,
    name: row.name,
    persona: row.persona,
    model: row.model,
    params: row.params ?? {},
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}

/** The agent if the actor owns it (or may see all); otherwise NOT_FOUND. */
export async function visibleAgent(deps: Pick<AgentDeps, 'rooms'>, actor: Actor, id: string): Promise<AgentRow> {
  const row = await deps.rooms.getAgent(id);
  if (!row || (row.owner_id !== actor.userId && !can(actor, 'discussions:any'))) throw new AppError('NOT_FOUND', { detail: 'No such agent' });
  return row;
}

export async function createAgent(deps: AgentDeps, actor: Actor, body: AgentInput): Promise<Agent> {
  const model = body.model ?? deps.chatModel;
  await deps.checkAgent?.(actor, { model, params: body.params });
  const row = await deps.rooms.insertAgent({ id: randomUUID(), owner_id: actor.userId, name: body.name, persona: body.persona, model, params: body.params });
  return toAgentView(row);
}

export async function listAgents(deps: AgentDeps, actor: Actor): Promise<AgentList> {
  const rows = await deps.rooms.listAgents(can(actor, 'discussions:any') ? undefined : actor.userId);
  return { items: rows.map(toAgentView) };
}

export async function getAgent(deps: AgentDeps, actor: Actor, id: string): Promise<Agent> {
  return toAgentView(await visibleAgent(deps, actor, id));
}

/** Changes apply to every room the agent is in from its next turn on; a room's own overrides still win. */
export async function updateAgent(deps: AgentDeps, actor: Actor, id: string, patch: AgentPatch): Promise<Agent> {
  const row = await visibleAgent(deps, actor, id);
  await deps.checkAgent?.(actor, { model: patch.model ?? row.model, params: patch.params ?? row.params });
  const updated = await deps.rooms.updateAgent(id, patch);
  if (!updated) throw new AppError('NOT_FOUND', { detail: 'No such agent' });
  return toAgentView(updated);
}

export async function deleteAgent(deps: AgentDeps, actor: Actor, id: string): Promise<void> {
  await visibleAgent(deps, actor, id);
  const res = await deps.rooms.deleteAgent(id);
  if (res === 'in_use') throw new AppError('INVALID_STATE', { detail: 'A discussion still uses this agent; its transcript names it' });
  if (res === 'missing') throw new AppError('NOT_FOUND', { detail: 'No such agent' });
}

/**
 * The role caps (platform/config.ts `roleCaps`, the same ones job admission
 * applies) for an agent: its model must be on the role's list, and its
 * num_predict and num_ctx within the role's bounds. As at admission, a model
 * Ollama does not have is not a policy question: its turns fail upstream
 * with UPSTREAM_REJECTED and the room pauses saying so.
 */
export function agentCaps(deps: { roleCaps: Record<Role, RoleCap>; installedModels: () => Promise<Set<string> | undefined> }): NonNullable<AgentDeps['checkAgent']> {
  const exceeded = (cap: keyof RoleCap, limit: number | string, role: string, detail: string, path: string) =>
    new AppError('LIMIT_EXCEEDED', { detail: `${detail}: above the ${role} cap ${cap} = ${limit}`, errors: [{ path, message: `the ${role} cap ${cap} is ${limit}` }], extra: { cap, limit: String(limit) } });
  return async (actor, agent) => {
    const cap = deps.roleCaps[actor.role];
    if (cap.models !== '*') {
      const wanted = normalizeModelName(agent.model);
      if (!cap.models.some((m) => normalizeModelName(m) === wanted)) {
        const installed = await deps.installedModels();
        if (!installed || installed.has(wanted)) throw exceeded('models', cap.models.join(', '), actor.role, `Model "${agent.model}" is not allowed`, 'model');
      }
    }
    const { num_predict: numPredict, num_ctx: numCtx } = agent.params;
    if (numPredict !== undefined && numPredict > cap.maxNumPredict) throw exceeded('maxNumPredict', cap.maxNumPredict, actor.role, `num_predict ${numPredict}`, 'params.num_predict');
    if (numCtx !== undefined && numCtx > cap.maxNumCtx) throw exceeded('maxNumCtx', cap.maxNumCtx, actor.role, `num_ctx ${numCtx}`, 'params.num_ctx');
  };
}
