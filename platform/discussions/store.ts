/**
 * Agents and rooms in Postgres: relational, owned and access-checked like
 * jobs. The turn bookkeeping lives on the room row, and every change to it
 * is a conditional update (or a `select … for update` transaction in
 * lifecycle.ts), so concurrent workers and API calls serialise on the row:
 *
 *   current_turn  the latest turn claimed (0 before the first)
 *   speaking      true between a turn's claim and its commit
 *   speaker_id    the agent speaking (or who spoke) current_turn
 *   turn_job_id   the one turn job allowed to claim or commit next
 *   run           bumped by every resume/reschedule; part of turn job ids
 */
import type { Knex } from 'knex';
import type { DiscussionPolicy, OllamaOptions, RoomAgent, RoomStatus, Visibility } from '../../shared/index.ts';
import { microsecondInstant, type Db } from '../connections/index.ts';

/** `insertRoom`: an agent of the roster no longer exists (deleted since the caller read it); nothing was written. */
export class RosterAgentGone extends Error {
  constructor() {
    super('an agent of the roster was deleted');
    this.name = 'RosterAgentGone';
  }
}

export interface AgentRow {
  id: string;
  owner_id: string;
  name: string;
  persona: string;
  model: string;
  params: OllamaOptions;
  created_at: Date;
  updated_at: Date;
}

export interface DiscussionRow {
  id: string;
  owner_id: string;
  topic: string;
  policy: DiscussionPolicy;
  visibility: Visibility;
  shared_with: string[];
  status: RoomStatus;
  status_reason: string | null;
  current_turn: number;
  speaking: boolean;
  speaker_id: string | null;
  turn_job_id: string | null;
  run: number;
  tokens_used: number;
  parent_id: string | null;
  fork_turn: number | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  /** The seq of the `status` event that closed the room; null while open (or closed before it was kept). */
  closed_seq: number | null;
}

/** Per-room replacements for an agent's model, persona or parameters (forks). */
export interface AgentOverrides {
  model?: string;
  persona?: string;
  params?: OllamaOptions;
}

export interface RosterRow {
  discussion_id: string;
  agent_id: string;
  role: 'speaker' | 'moderator';
  position: number;
  overrides: AgentOverrides;
}

/** An agent as it acts in one room. */
export interface RoomMember extends RoomAgent {
  role: 'speaker' | 'moderator';
  position: number;
}

export interface Roster {
  speakers: RoomMember[];
  moderator: RoomMember | null;
}

export function effectiveAgent(agent: AgentRow, r: Pick<RosterRow, 'role' | 'position' | 'overrides'>): RoomMember {
  const o = r.overrides ?? {};
  return {
    id: agent.id,
    name: agent.name,
    model: o.model ?? agent.model,
    persona: o.persona ?? agent.persona,
    params: { ...agent.params, ...o.params },
    overridden: o.model !== undefined || o.persona !== undefined || (o.params !== undefined && Object.keys(o.params).length > 0),
    role: r.role,
    position: r.position,
  };
}

export function createDiscussionStore(db: Db) {
  const agents = (q: Knex = db) => q<AgentRow>('agents');
  const rooms = (q: Knex = db) => q<DiscussionRow>('discussions');

  return {
    db,

    // ── agents ──
    /** In `q` when given (a fork inserts its copied agents in its own transaction). */
    async insertAgent(a: Omit<AgentRow, 'created_at' | 'updated_at'>, q: Knex = db): Promise<AgentRow> {
      const [row] = await agents(q)
        .insert({ ...a, params: JSON.stringify(a.params) as never })
        .returning('*');
      return row!;
    },
    /** In `q` when given: under `lockOwnerCap(trx, 'agents', …)`, so racing creates count one after another. */
    countAgents(ownerId: string, q: Knex = db): Promise<number> {
      return agents(q)
        .where({ owner_id: ownerId })
        .count<{ count: number }[]>('* as count')
        .then((r) => Number(r[0]?.count ?? 0));
    },
    getAgent(id: string): Promise<AgentRow | undefined> {
      return agents().where({ id }).first();
    },
    /** In `q` when given (a room's create re-reads its speakers' names under `lockSpeakerNames`). */
    getAgents(ids: string[], q: Knex = db): Promise<AgentRow[]> {
      return ids.length ? agents(q).whereIn('id', ids) : Promise.resolve([]);
    },
    /**
     * Serialises what must keep an open room's speaker names distinct: a room's create (which checks
     * its speakers' names) and an agent's rename (which checks the other speakers of its open rooms).
     * Without it, a rename could read the rooms before a create committed one while the create read
     * the old name: two speakers of one room with one name. Both are rare; one lock for all is enough.
     */
    async lockSpeakerNames(trx: Knex): Promise<void> {
      await trx.raw('select pg_advisory_xact_lock(hashtextextended(?, 0))', ['parley.speaker-names']);
    },
    listAgents(ownerId: string | undefined, limit = 500): Promise<AgentRow[]> {
      const q = agents().select('*');
      if (ownerId !== undefined) q.where({ owner_id: ownerId });
      return q
        .orderBy([
          { column: 'created_at', order: 'desc' },
          { column: 'id', order: 'desc' },
        ])
        .limit(limit);
    },
    async updateAgent(id: string, change: Partial<Pick<AgentRow, 'name' | 'persona' | 'model' | 'params'>>, q: Knex = db): Promise<AgentRow | undefined> {
      const patch: Record<string, unknown> = { ...change, updated_at: db.fn.now() };
      if (change.params !== undefined) patch.params = JSON.stringify(change.params);
      const [row] = await agents(q)
        .where({ id })
        .update(patch as never)
        .returning('*');
      return row;
    },
    /**
     * The other speakers of the open rooms (draft, running, paused) in which the agent speaks: a rename
     * must keep every such room's speaker names distinct, as creating it did.
     */
    fellowSpeakersInOpenRooms(agentId: string, q: Knex = db): Promise<{ discussion_id: string; agent_id: string; name: string }[]> {
      return q('discussion_agents as me')
        .join('discussions as d', 'd.id', 'me.discussion_id')
        .join('discussion_agents as o', function () {
          this.on('o.discussion_id', '=', 'me.discussion_id').andOn('o.agent_id', '<>', 'me.agent_id');
        })
        .join('agents as a', 'a.id', 'o.agent_id')
        .where({ 'me.agent_id': agentId, 'me.role': 'speaker', 'o.role': 'speaker' })
        .whereIn('d.status', ['draft', 'running', 'paused'])
        .orderBy([{ column: 'd.created_at' }, { column: 'd.id' }])
        .select('d.id as discussion_id', 'a.id as agent_id', 'a.name as name');
    },
    /** False when a room still uses the agent (the foreign key refuses). */
    async deleteAgent(id: string): Promise<'deleted' | 'missing' | 'in_use'> {
      try {
        const n = await agents().where({ id }).delete();
        return n > 0 ? 'deleted' : 'missing';
      } catch (err) {
        if ((err as { code?: string }).code === '23503') return 'in_use';
        throw err;
      }
    },

    // ── rooms ──
    async insertRoom(
      trx: Knex,
      r: Pick<DiscussionRow, 'id' | 'owner_id' | 'topic' | 'policy' | 'visibility' | 'shared_with'> &
        Partial<Pick<DiscussionRow, 'current_turn' | 'tokens_used' | 'parent_id' | 'fork_turn'>>,
      roster: Omit<RosterRow, 'discussion_id'>[],
    ): Promise<DiscussionRow> {
      const [row] = await rooms(trx)
        .insert({ ...r, policy: JSON.stringify(r.policy) as never })
        .returning('*');
      try {
        await trx('discussion_agents').insert(roster.map((m) => ({ ...m, discussion_id: r.id, overrides: JSON.stringify(m.overrides ?? {}) })));
      } catch (err) {
        // An agent deleted after the caller checked the roster (the foreign key refuses): as if the delete came first.
        if (
          (err as { code?: string; constraint?: string }).code === '23503' &&
          (err as { constraint?: string }).constraint === 'discussion_agents_agent_id_foreign'
        )
          throw new RosterAgentGone();
        throw err;
      }
      return row!;
    },
    get(id: string, q: Knex = db): Promise<DiscussionRow | undefined> {
      return rooms(q).where({ id }).first();
    },
    /** Locks the row for the rest of the transaction. */
    lock(trx: Knex, id: string): Promise<DiscussionRow | undefined> {
      return rooms(trx).where({ id }).forUpdate().first();
    },
    async roster(id: string, q: Knex = db): Promise<Roster> {
      const rows = (await q('discussion_agents as da')
        .join('agents as a', 'a.id', 'da.agent_id')
        .where('da.discussion_id', id)
        .select('a.*', 'da.role as da_role', 'da.position as da_position', 'da.overrides as da_overrides')
        .orderBy('da.position', 'asc')) as (AgentRow & { da_role: RosterRow['role']; da_position: number; da_overrides: AgentOverrides })[];
      const members = rows.map((r) => effectiveAgent(r, { role: r.da_role, position: r.da_position, overrides: r.da_overrides }));
      return { speakers: members.filter((m) => m.role === 'speaker'), moderator: members.find((m) => m.role === 'moderator') ?? null };
    },
    rosterRows(id: string): Promise<RosterRow[]> {
      return db<RosterRow>('discussion_agents')
        .where({ discussion_id: id })
        .orderBy([{ column: 'role' }, { column: 'position' }]);
    },

    /**
     * Rooms an actor may read, newest first: all of them (`ownerId`
     * undefined, admins), or the actor's own, those shared with them and
     * public ones.
     */
    /** Each row with `cursor_at`: `created_at` to the microsecond, for the page cursor. */
    list(filter: {
      readerId?: string;
      status?: RoomStatus;
      limit: number;
      cursor?: { createdAt: string; id: string };
    }): Promise<(DiscussionRow & { cursor_at: string })[]> {
      const q = rooms()
        .select('*')
        .select(db.raw(`${microsecondInstant('created_at')} as cursor_at`));
      if (filter.readerId !== undefined) {
        const uid = filter.readerId;
        q.where((w) =>
          w
            .where('owner_id', uid)
            .orWhere('visibility', 'public')
            .orWhere((s) => s.where('visibility', 'shared').whereRaw('? = any(shared_with)', [uid])),
        );
      }
      if (filter.status) q.where('status', filter.status);
      if (filter.cursor) q.whereRaw('(created_at, id) < (?::timestamptz, ?::uuid)', [filter.cursor.createdAt, filter.cursor.id]);
      return q
        .orderBy([
          { column: 'created_at', order: 'desc' },
          { column: 'id', order: 'desc' },
        ])
        .limit(filter.limit);
    },

    /**
     * Takes the owner's lock on one per-user cap (agents owned, rooms open) for the rest of the
     * transaction, as the running-rooms cap does in lifecycle.ts: the cap's count and the insert it
     * allows then run one transaction after another, and each count sees what the ones before committed.
     * Whoever takes both takes `agents` first (a fork of someone else's room).
     */
    async lockOwnerCap(trx: Knex, cap: 'agents' | 'open', ownerId: string): Promise<void> {
      await trx.raw('select pg_advisory_xact_lock(hashtextextended(?, 0))', [`parley.${cap === 'agents' ? 'agents' : 'rooms.open'}:${ownerId}`]);
    },

    /** Rooms of the owner that are not closed (draft, running, paused); in `q` when given (under `lockOwnerCap(trx, 'open', …)`). */
    countOpen(ownerId: string, q: Knex = db): Promise<number> {
      return rooms(q)
        .where({ owner_id: ownerId })
        .whereIn('status', ['draft', 'running', 'paused'])
        .count<{ count: number }[]>('* as count')
        .then((r) => Number(r[0]?.count ?? 0));
    },

    /**
     * Claims turn `turn` for job `jobId`: only the room's current turn job,
     * and only from "turn-1 committed, room running" (first delivery) or
     * "turn claimed by this job" (a retry, which also finishes its turn in a
     * room paused meanwhile). Anything else is a stale or duplicate delivery
     * and gets undefined.
     */
    async claimTurn(id: string, turn: number, jobId: string): Promise<DiscussionRow | undefined> {
      const res = (await db.raw(
        `update discussions
            set current_turn = ?, speaking = true,
                speaker_id = case when current_turn = ? then speaker_id else null end,
                updated_at = now()
          where id = ? and turn_job_id = ?
            and ((status = 'running' and current_turn = ? and not speaking)
              or (status in ('running', 'paused') and current_turn = ? and speaking))
          returning *`,
        [turn, turn, id, jobId, turn - 1, turn],
      )) as { rows: DiscussionRow[] };
      return res.rows[0];
    },

    async setSpeaker(id: string, turn: number, jobId: string, agentId: string): Promise<boolean> {
      const n = await rooms()
        .where({ id, current_turn: turn, turn_job_id: jobId, speaking: true })
        .update({ speaker_id: agentId, updated_at: db.fn.now() as never });
      return n > 0;
    },

    /**
     * Running rooms untouched for `olderThanMs` whose current turn job belongs
     * to this deployment (its key prefix): the watchdog checks their turn job.
     * Rooms driven by another deployment sharing the database are its business.
     */
    quiet(olderThanMs: number, limit: number, keyPrefix: string): Promise<DiscussionRow[]> {
      return rooms()
        .select('discussions.*')
        .join('jobs', 'jobs.id', 'discussions.turn_job_id')
        .where({ 'discussions.status': 'running', 'jobs.key_prefix': keyPrefix })
        .andWhere('discussions.updated_at', '<', db.raw(`now() - (? * interval '1 millisecond')`, [olderThanMs]))
        .orderBy('discussions.updated_at', 'asc')
        .limit(limit);
    },

    /** Keeps the seq of the `status` event that closed the room (its stream's last word, for after the stream expires). */
    async setClosedSeq(id: string, seq: number): Promise<void> {
      await rooms().where({ id }).whereIn('status', ['finished', 'stopped']).update({ closed_seq: seq });
    },

    /** How many rooms are in each status. */
    async countByStatus(): Promise<{ status: string; n: number }[]> {
      const rows = (await rooms().select('status').count({ n: '*' }).groupBy('status')) as { status: string; n: string | number }[];
      return rows.map((r) => ({ status: r.status, n: Number(r.n) }));
    },

    /** The chain of ancestors, nearest first: [{ id, forkTurn }] where forkTurn is where the child branched off. */
    async lineage(id: string): Promise<{ id: string; parentId: string | null; forkTurn: number | null }[]> {
      const res = (await db.raw(
        `with recursive chain as (
           select id, parent_id, fork_turn, 0 as depth from discussions where id = ?
           union all
           select d.id, d.parent_id, d.fork_turn, c.depth + 1 from discussions d join chain c on d.id = c.parent_id where c.depth < 50
         ) select id, parent_id, fork_turn from chain order by depth`,
        [id],
      )) as { rows: { id: string; parent_id: string | null; fork_turn: number | null }[] };
      return res.rows.map((r) => ({ id: r.id, parentId: r.parent_id, forkTurn: r.fork_turn }));
    },
  };
}

export type DiscussionStore = ReturnType<typeof createDiscussionStore>;
