/**
 * Agent use cases: a name, a persona (system prompt), a model and its
 * parameters. Owners manage their own agents; `discussions:any` (admins)
 * sees and manages all. Anyone else gets NOT_FOUND, so existence does not
 * leak.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { RoleCap } from '../../platform/config.ts';
import type { AgentRow, DiscussionStore } from '../../platform/discussions/index.ts';
import type { Agent, AgentInput, AgentList, AgentPatch, OllamaOptions } from '../../shared/index.ts';
import { can, type Actor, type Role } from '../auth/permissions.ts';
import { AppError } from './errors.ts';
import { capExceeded, checkModel, type ModelView } from './model-policy.ts';

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
  checkAgent?: (actor: Actor, agent: { model: string; params: OllamaOptions; named?: boolean }) => Promise<void>;
  /** Agents one user may own (PARLEY_MAX_AGENTS_PER_USER); one more is 422 LIMIT_EXCEEDED. @defaultValue unbounded */
  maxAgentsPerUser?: number;
}

/**
 * 422 unless the owner has room for `adding` more agents. In `trx`, under the owner's agents lock,
 * which the transaction holds until it commits the agents it inserts: concurrent creates are counted
 * one after another, so the cap holds exactly.
 */
export async function ensureAgentRoom(deps: Pick<AgentDeps, 'rooms' | 'maxAgentsPerUser'>, trx: Knex, ownerId: string, adding: number): Promise<void> {
  const max = deps.maxAgentsPerUser;
  if (max === undefined) return;
  await deps.rooms.lockOwnerCap(trx, 'agents', ownerId);
  const n = await deps.rooms.countAgents(ownerId, trx);
  if (n + adding > max) {
    throw new AppError('LIMIT_EXCEEDED', {
      detail: `At most ${max} agents per user: you have ${n}${adding > 1 ? `, and this needs ${adding} more` : ''}. Delete one first.`,
      errors: [{ path: '(root)', message: `at most ${max} agents per user` }],
      extra: { cap: 'maxAgentsPerUser', limit: max },
    });
  }
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
  await deps.checkAgent?.(actor, { model, params: body.params, named: body.model !== undefined });
  const row = await deps.rooms.db.transaction(async (trx) => {
    await ensureAgentRoom(deps, trx, actor.userId, 1);
    return deps.rooms.insertAgent({ id: randomUUID(), owner_id: actor.userId, name: body.name, persona: body.persona, model, params: body.params }, trx);
  });
  return toAgentView(row);
}

export async function listAgents(deps: AgentDeps, actor: Actor): Promise<AgentList> {
  const rows = await deps.rooms.listAgents(can(actor, 'discussions:any') ? undefined : actor.userId);
  return { items: rows.map(toAgentView) };
}

export async function getAgent(deps: AgentDeps, actor: Actor, id: string): Promise<Agent> {
  return toAgentView(await visibleAgent(deps, actor, id));
}

/**
 * Changes apply to every room the agent is in from its next turn on; a room's own overrides still win.
 * A new name must keep the speakers of every open room the agent speaks in distinct (case-insensitively,
 * as creating a room requires): otherwise 409 INVALID_STATE naming the room, as a delete of an agent a
 * room uses is refused. Closed rooms keep their transcripts' names and do not object.
 */
export async function updateAgent(deps: AgentDeps, actor: Actor, id: string, patch: AgentPatch): Promise<Agent> {
  const row = await visibleAgent(deps, actor, id);
  await deps.checkAgent?.(actor, { model: patch.model ?? row.model, params: patch.params ?? row.params, named: patch.model !== undefined });
  const rename = patch.name !== undefined && patch.name !== row.name;
  const apply = async (q: Knex) => {
    if (rename) {
      // Under the speaker-names lock: a room created meanwhile is either seen here or sees the new name.
      await deps.rooms.lockSpeakerNames(q);
      const wanted = patch.name!.toLowerCase();
      const clash = (await deps.rooms.fellowSpeakersInOpenRooms(id, q)).find((o) => o.name.toLowerCase() === wanted);
      if (clash)
        throw new AppError('INVALID_STATE', {
          detail: `Discussion ${clash.discussion_id} is open with this agent and another speaker named "${clash.name}"; speakers need distinct names (the moderator and transcripts refer to them by name)`,
          errors: [{ path: 'name', message: `another speaker of discussion ${clash.discussion_id} is named "${clash.name}"` }],
          extra: { discussionId: clash.discussion_id },
        });
    }
    return deps.rooms.updateAgent(id, patch, q);
  };
  const updated = rename ? await deps.rooms.db.transaction(apply) : await apply(deps.rooms.db);
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
 * applies) for an agent: a model the request names must be installed on
 * some Ollama host (400), and the model must be on the role's list (422), compared in canonical form across
 * aliases and hosts (model-policy.ts), and its num_predict and num_ctx
 * within the role's bounds. A model deleted after the agent was made fails
 * its turns upstream with UPSTREAM_REJECTED, and the room pauses saying so.
 */
export function agentCaps(deps: { roleCaps: Record<Role, RoleCap>; models: ModelView }): NonNullable<AgentDeps['checkAgent']> {
  return async (actor, agent) => {
    const cap = deps.roleCaps[actor.role];
    await checkModel(deps.models, actor.role, cap, agent.model, { named: agent.named ?? true, path: 'model' });
    const { num_predict: numPredict, num_ctx: numCtx } = agent.params;
    if (numPredict !== undefined && numPredict > cap.maxNumPredict)
      throw capExceeded('maxNumPredict', cap.maxNumPredict, actor.role, `num_predict ${numPredict}`, 'params.num_predict');
    if (numCtx !== undefined && numCtx > cap.maxNumCtx) throw capExceeded('maxNumCtx', cap.maxNumCtx, actor.role, `num_ctx ${numCtx}`, 'params.num_ctx');
  };
}
