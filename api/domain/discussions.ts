/**
 * Discussion (room) use cases: create, list, read; start, pause, resume,
 * stop; human messages; interrupt; fork and compare. Plain functions over
 * plain arguments; api/routes/discussions.ts calls them.
 *
 * Access:
 *   read     owner · users in `sharedWith` (visibility shared) · anyone
 *            signed in (public) · `discussions:any` (admins). Else NOT_FOUND.
 *   post     owner · `sharedWith` users · admins (public rooms are read-only
 *            for everyone else). Readers who may not post get FORBIDDEN.
 *   control  (start/pause/resume/stop/interrupt) owner · admins.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import {
  announceStatus,
  pauseRoom,
  resumeRoom,
  roomTokens,
  RosterAgentGone,
  startRoom,
  stopRoom,
  type RoomDeps,
  type Transition,
} from '../../platform/discussions/index.ts';
import type { DiscussionRow, Roster, RosterRow } from '../../platform/discussions/index.ts';
import { toMessage, toSummary, toTurn, type MessageDoc, type TurnDoc, type Transcripts } from '../../platform/discussions/index.ts';
import { SYSTEM_USER_ID } from '../../platform/jobs/index.ts';
import { appendRoomEvent, appendRoomEvents, readRoomMessages, turnStartedSeq } from '../../platform/streams/index.ts';
import {
  isClosed,
  isTerminal,
  type Comparison,
  type CreateDiscussion,
  type Discussion,
  type DiscussionList,
  type ForkRequest,
  type HumanMessage,
  type ListDiscussionsQuery,
  type PostHumanMessage,
  type RoomAgent,
  type Transcript,
} from '../../shared/index.ts';
import { can, type Actor } from '../auth/permissions.ts';
import { AppError } from './errors.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import { ensureAgentRoom, type AgentDeps } from './agents.ts';

export interface DiscussionDeps extends RoomDeps, AgentDeps {
  transcripts: Transcripts;
  /** Running rooms one owner may have at once, so one user's rooms cannot crowd out everyone's turns. @defaultValue 5 */
  maxRunningPerUser?: number;
  /** How long interrupt and stop wait for the speaker to commit its partial turn (then answer anyway). @defaultValue 10 000 ms */
  commitWaitMs?: number;
  /** Rooms one owner may have open (draft, running, paused), forks included (PARLEY_MAX_OPEN_ROOMS_PER_USER). @defaultValue unbounded */
  maxOpenRoomsPerUser?: number;
  /** Human messages one room takes in all (PARLEY_ROOM_MAX_MESSAGES). @defaultValue unbounded */
  maxMessagesPerRoom?: number;
  /** Feeds a posted human message to the room's knowledge (platform/knowledge feedRoomStatement); none → not fed. */
  feedMessage?: (room: DiscussionRow, msg: { id: string; authorId: string; authorName: string; text: string }) => Promise<void>;
  /** Chaos testing: called at named points (`message.after-stream`); the composition root decides what happens there. */
  failpoint?: (name: string) => void;
}

/**
 * 422 unless the owner may open one more room. In `trx`, under the owner's open-rooms lock, which the
 * transaction holds until it commits the room it inserts: concurrent creates and forks are counted one
 * after another (as starts are against the running-rooms cap), so the cap holds exactly.
 */
async function ensureOpenRoomSlot(deps: DiscussionDeps, trx: Knex, ownerId: string): Promise<void> {
  const max = deps.maxOpenRoomsPerUser;
  if (max === undefined) return;
  await deps.rooms.lockOwnerCap(trx, 'open', ownerId);
  const n = await deps.rooms.countOpen(ownerId, trx);
  if (n >= max) {
    throw new AppError('LIMIT_EXCEEDED', {
      detail: `At most ${max} rooms of one owner may be open (draft, running or paused) at once; you have ${n}. Stop one first.`,
      errors: [{ path: '(root)', message: `at most ${max} open rooms per user` }],
      extra: { cap: 'maxOpenRoomsPerUser', limit: max },
    });
  }
}

export function roomLinks(id: string) {
  return {
    self: `/v1/discussions/${id}`,
    events: `/v1/discussions/${id}/events`,
    transcript: `/v1/discussions/${id}/transcript`,
    socketRoom: `discussion:${id}`,
  };
}

const publicAgent = ({ role: _r, position: _p, ...a }: RoomAgent & { role?: unknown; position?: unknown }): RoomAgent => a;

export function toDiscussionView(row: DiscussionRow, roster: Roster): Discussion {
  return {
    id: row.id,
    owner: row.owner_id,
    topic: row.topic,
    agents: roster.speakers.map(publicAgent),
    moderator: roster.moderator ? publicAgent(roster.moderator) : null,
    policy: row.policy,
    visibility: row.visibility,
    sharedWith: row.shared_with ?? [],
    status: row.status,
    statusReason: row.status_reason,
    turn: row.current_turn,
    speaking: row.speaking,
    tokensUsed: Number(row.tokens_used),
    lineage: row.parent_id ? { parentId: row.parent_id, forkTurn: row.fork_turn ?? 0 } : null,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    links: roomLinks(row.id),
  };
}

async function view(deps: DiscussionDeps, row: DiscussionRow): Promise<Discussion> {
  return toDiscussionView(row, await deps.rooms.roster(row.id));
}

export function canRead(row: DiscussionRow, actor: Actor): boolean {
  if (row.owner_id === actor.userId || can(actor, 'discussions:any')) return true;
  if (row.visibility === 'public') return true;
  return row.visibility === 'shared' && (row.shared_with ?? []).includes(actor.userId);
}

export function canPost(row: DiscussionRow, actor: Actor): boolean {
  if (row.owner_id === actor.userId || can(actor, 'discussions:any')) return true;
  return row.visibility === 'shared' && (row.shared_with ?? []).includes(actor.userId);
}

/** The room if the actor may read it; otherwise NOT_FOUND, so existence does not leak. */
export async function readableRoom(deps: Pick<DiscussionDeps, 'rooms'>, actor: Actor, id: string): Promise<DiscussionRow> {
  const row = await deps.rooms.get(id);
  if (!row || !canRead(row, actor)) throw new AppError('NOT_FOUND', { detail: 'No such discussion' });
  return row;
}

async function controlledRoom(deps: DiscussionDeps, actor: Actor, id: string): Promise<DiscussionRow> {
  const row = await readableRoom(deps, actor, id);
  if (row.owner_id !== actor.userId && !can(actor, 'discussions:any')) throw new AppError('FORBIDDEN', { detail: 'Only the owner controls this discussion' });
  return row;
}

async function outcome(deps: DiscussionDeps, t: Transition): Promise<Discussion> {
  if (t.ok) return view(deps, t.row);
  if (t.reason === 'not_found') throw new AppError('NOT_FOUND', { detail: 'No such discussion' });
  if (t.reason === 'limit') throw new AppError('LIMIT_EXCEEDED', { detail: t.message });
  throw new AppError('INVALID_STATE', { detail: t.message });
}

// ── create, list, get ──────────────────────────────────────────────────────

const distinctNames = () =>
  new AppError('VALIDATION_FAILED', {
    errors: [{ path: 'agentIds', message: 'speakers need distinct names (the moderator and transcripts refer to them by name)' }],
  });

export async function createDiscussion(deps: DiscussionDeps, actor: Actor, body: CreateDiscussion): Promise<Discussion> {
  const moderatorId = body.policy.turns.kind === 'moderator' ? body.policy.turns.moderatorId : undefined;
  const wanted = [...new Set([...body.agentIds, ...(moderatorId ? [moderatorId] : [])])];
  const found = new Map((await deps.rooms.getAgents(wanted)).map((a) => [a.id, a]));
  const errors: { path: string; message: string }[] = [];
  body.agentIds.forEach((aid, i) => {
    const a = found.get(aid);
    if (!a || (a.owner_id !== actor.userId && !can(actor, 'discussions:any'))) errors.push({ path: `agentIds.${i}`, message: 'no such agent' });
  });
  if (moderatorId) {
    const m = found.get(moderatorId);
    if (!m || (m.owner_id !== actor.userId && !can(actor, 'discussions:any'))) errors.push({ path: 'policy.turns.moderatorId', message: 'no such agent' });
  }
  if (body.sharedWith.length) {
    // The platform's own system user (owner of its probes) is no one to share with: as unknown as a made-up id.
    const known = new Set((await deps.db('users').whereIn('id', body.sharedWith).whereNot('id', SYSTEM_USER_ID).pluck('id')) as string[]);
    body.sharedWith.forEach((u, i) => known.has(u) || errors.push({ path: `sharedWith.${i}`, message: 'no such user' }));
  }
  if (errors.length) throw new AppError('VALIDATION_FAILED', { detail: 'The discussion refers to agents or users that do not exist', errors });
  const names = body.agentIds.map((aid) => found.get(aid)!.name.toLowerCase());
  if (new Set(names).size !== names.length) throw distinctNames();

  const id = randomUUID();
  const roster: Omit<RosterRow, 'discussion_id'>[] = [
    ...body.agentIds.map((agent_id, position) => ({ agent_id, role: 'speaker' as const, position, overrides: {} })),
    ...(moderatorId ? [{ agent_id: moderatorId, role: 'moderator' as const, position: 0, overrides: {} }] : []),
  ];
  const row = await deps.db
    .transaction(async (trx) => {
      await ensureOpenRoomSlot(deps, trx, actor.userId);
      // The names again, under the lock a rename takes: one renamed since the check above is seen here.
      await deps.rooms.lockSpeakerNames(trx);
      const current = new Map((await deps.rooms.getAgents(body.agentIds, trx)).map((a) => [a.id, a.name.toLowerCase()]));
      const now = body.agentIds.map((aid) => current.get(aid)).filter((n) => n !== undefined);
      if (new Set(now).size !== now.length) throw distinctNames();
      return deps.rooms.insertRoom(
        trx,
        { id, owner_id: actor.userId, topic: body.topic, policy: body.policy, visibility: body.visibility, shared_with: body.sharedWith },
        roster,
      );
    })
    .catch((err: unknown) => {
      if (err instanceof RosterAgentGone)
        throw new AppError('VALIDATION_FAILED', {
          detail: 'An agent of the discussion was deleted while it was being created',
          errors: [{ path: 'agentIds', message: 'no such agent' }],
        });
      throw err;
    });
  return view(deps, row);
}

export async function listDiscussions(deps: DiscussionDeps, actor: Actor, q: ListDiscussionsQuery): Promise<DiscussionList> {
  let cursor: { createdAt: string; id: string } | undefined;
  if (q.cursor) {
    const c = decodeCursor(q.cursor);
    cursor = { createdAt: c.at, id: c.id };
  }
  const rows = await deps.rooms.list({ readerId: can(actor, 'discussions:any') ? undefined : actor.userId, status: q.status, limit: q.limit + 1, cursor });
  const page = rows.slice(0, q.limit);
  const last = page.at(-1);
  return {
    items: await Promise.all(page.map((r) => view(deps, r))),
    nextCursor: rows.length > q.limit && last ? encodeCursor(last.cursor_at, last.id) : null,
  };
}

export async function getDiscussion(deps: DiscussionDeps, actor: Actor, id: string): Promise<Discussion> {
  return view(deps, await readableRoom(deps, actor, id));
}

// ── lifecycle ──────────────────────────────────────────────────────────────

/** A room about to run (start from draft, resume from paused) must fit the owner's cap on running rooms, checked in its transition. */
const runCap = (deps: DiscussionDeps) => ({ maxRunning: deps.maxRunningPerUser ?? 5 });

export async function startDiscussion(deps: DiscussionDeps, actor: Actor, id: string): Promise<Discussion> {
  await controlledRoom(deps, actor, id);
  return outcome(deps, await startRoom(deps, id, runCap(deps)));
}

export async function pauseDiscussion(deps: DiscussionDeps, actor: Actor, id: string): Promise<Discussion> {
  await controlledRoom(deps, actor, id);
  return outcome(deps, await pauseRoom(deps, id, `paused by ${actor.username}`));
}

export async function resumeDiscussion(deps: DiscussionDeps, actor: Actor, id: string): Promise<Discussion> {
  await controlledRoom(deps, actor, id);
  return outcome(deps, await resumeRoom(deps, id, runCap(deps)));
}

/** Signals the turn job to stop (the worker commits the partial turn as interrupted), then waits briefly for that commit. */
async function interruptSpeaker(deps: DiscussionDeps, row: DiscussionRow): Promise<void> {
  if (!row.speaking || !row.turn_job_id) return;
  const job = await deps.jobs.get(row.turn_job_id);
  if (!job || isTerminal(job.state)) return;
  await deps.jobs.signalCancel(job.id);
  const deadline = Date.now() + (deps.commitWaitMs ?? 10_000);
  while (Date.now() < deadline) {
    const now = await deps.rooms.get(row.id);
    if (!now || !now.speaking || now.current_turn !== row.current_turn) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Stops the room for good. A speaker is interrupted (its partial turn is
 * kept), so the `status: stopped` event comes after that turn's
 * `turn_finished`. A turn job still waiting in the queue skips when it runs.
 */
export async function stopDiscussion(deps: DiscussionDeps, actor: Actor, id: string): Promise<Discussion> {
  await controlledRoom(deps, actor, id);
  const reason = `stopped by ${actor.username}`;
  const t = await stopRoom(deps, id, reason);
  if (!t.ok) return outcome(deps, t);
  await interruptSpeaker(deps, t.before);
  await announceStatus(deps, id, 'stopped', reason);
  return view(deps, (await deps.rooms.get(id))!);
}

/** Stops the current speaker; its partial turn is kept, marked interrupted, and the next speaker follows. */
export async function interruptDiscussion(deps: DiscussionDeps, actor: Actor, id: string): Promise<Discussion> {
  const row = await controlledRoom(deps, actor, id);
  if (!row.speaking) throw new AppError('INVALID_STATE', { detail: 'Nobody is speaking right now' });
  await interruptSpeaker(deps, row);
  return view(deps, (await deps.rooms.get(id))!);
}

// ── human messages ─────────────────────────────────────────────────────────

/**
 * A person's message joins the room's timeline at the seq its event gets,
 * and the context of every turn that starts after it (in practice: the next
 * speaker's, when no turn is starting at that very moment).
 */
export async function postMessage(deps: DiscussionDeps, actor: Actor, id: string, body: PostHumanMessage): Promise<HumanMessage> {
  const row = await readableRoom(deps, actor, id);
  if (!canPost(row, actor)) throw new AppError('FORBIDDEN', { detail: 'You may read this discussion but not post to it' });
  if (isClosed(row.status)) throw new AppError('INVALID_STATE', { detail: `The discussion is ${row.status}` });
  const max = deps.maxMessagesPerRoom;
  if (max !== undefined) {
    // Counted in Redis before the append, and given back on a refusal, so racing posts cannot overshoot.
    const countKey = deps.keys.roomMessageCount(id);
    const n = await deps.redis.incr(countKey);
    if (n > max) {
      await deps.redis.decr(countKey);
      throw new AppError('LIMIT_EXCEEDED', {
        detail: `This room has taken its ${max} human messages`,
        errors: [{ path: 'text', message: `at most ${max} human messages per room` }],
        extra: { cap: 'maxMessagesPerRoom', limit: max },
      });
    }
  }
  const msg = { id: randomUUID(), authorId: actor.userId, authorName: actor.username, text: body.text };
  // The stream first: it allocates the seq. The transcript document follows, so for a moment (or for good, should
  // this process die in between) a message is in the room's timeline, and in the next turn's prompt, but not stored.
  const seq = await appendRoomEvent(deps.redis, deps.keys, id, 0, 'human_message', msg, deps.roomStreamMaxLen);
  deps.failpoint?.('message.after-stream');
  const createdAt = new Date();
  await deps.transcripts.addMessage({ ...msg, discussionId: id, seq, createdAt });
  // An aid, as for committed turns: the message is posted whether or not knowledge takes it.
  await deps.feedMessage?.(row, msg);
  return { ...msg, discussionId: id, seq, createdAt: createdAt.toISOString() };
}

// ── transcript, fork, compare ──────────────────────────────────────────────

export async function getTranscript(deps: DiscussionDeps, actor: Actor, id: string, opts: { prompts: boolean }): Promise<Transcript> {
  const row = await readableRoom(deps, actor, id);
  const [turns, messages, summary] = await Promise.all([deps.transcripts.turns(id), deps.transcripts.messages(id), deps.transcripts.latestSummary(id)]);
  return {
    discussionId: id,
    status: row.status,
    lineage: row.parent_id ? { parentId: row.parent_id, forkTurn: row.fork_turn ?? 0 } : null,
    turns: turns.map((t) => toTurn(t, { prompt: opts.prompts })),
    messages: messages.map(toMessage),
    summary: summary ? toSummary(summary) : null,
  };
}

/**
 * The room's human messages with seq below `beforeSeq` (all of them when undefined), as the turns saw them:
 * from the transcript and from the room stream, merged by id. postMessage writes the stream entry (which
 * allocates the seq) before the transcript document, so a message posted just before a turn began is in that
 * turn's prompt (the turn handler reads the stream too) while its document may still be on its way, or never
 * come if the API died in between. Such a message is copied from its stream entry, dated when it is read.
 */
async function messagesBefore(deps: DiscussionDeps, id: string, beforeSeq: number | undefined): Promise<MessageDoc[]> {
  const byId = new Map<string, MessageDoc>();
  for (const m of await deps.transcripts.messages(id, beforeSeq !== undefined ? { beforeSeq } : {})) byId.set(m.id, m);
  const readAt = new Date();
  for (const m of await readRoomMessages(deps.redis, deps.keys, id, 0, beforeSeq ?? Number.MAX_SAFE_INTEGER))
    if (!byId.has(m.id)) byId.set(m.id, { ...m, discussionId: id, createdAt: readAt });
  return [...byId.values()].sort((a, b) => a.seq - b.seq);
}

/** The longest run a room's policy allows (DiscussionPolicy's maxTurns). */
const MAX_TURNS = 200;

/**
 * A new draft room owned by the actor: the same topic, speakers and policy,
 * with turns 1..fromTurn (and the human messages before turn fromTurn + 1)
 * copied, and the overrides applied from turn fromTurn + 1 on. The copies
 * are replayed into the fork's own stream, so its viewers see the whole
 * history. Rolling summaries are not copied: the fork summarises its own.
 *
 * The fork runs under the forker: every speaker, as it will run there, must
 * fit the forker's role caps (models, num_predict, num_ctx), and the fork
 * counts against the forker's open rooms. Forking someone else's room copies
 * its agents to the forker (new agents, counted against the forker's agent
 * cap), so the fork never runs the owner's agents and the owner may still
 * delete them; the copied turns name the copies.
 */
export async function forkDiscussion(deps: DiscussionDeps, actor: Actor, id: string, body: ForkRequest): Promise<Discussion> {
  const src = await readableRoom(deps, actor, id);
  const turns = await deps.transcripts.turns(id, { upToTurn: body.fromTurn });
  if (turns.length !== body.fromTurn)
    throw new AppError('VALIDATION_FAILED', {
      errors: [{ path: 'fromTurn', message: `the transcript has ${turns.length} turns up to ${body.fromTurn}; fork from a committed turn` }],
    });
  const roster = await deps.rooms.rosterRows(id);
  const agents = new Map((await deps.rooms.getAgents(roster.map((r) => r.agent_id))).map((a) => [a.id, a]));
  const errors: { path: string; message: string }[] = [];
  body.overrides.forEach(
    (o, i) => roster.some((r) => r.agent_id === o.agentId) || errors.push({ path: `overrides.${i}.agentId`, message: 'not an agent of this discussion' }),
  );
  // A fork of a room that had no turns left at the fork point (a finished room forked at its end, as the
  // arena's "Fork from turn N" does) gets another run of the parent's length, not a draft that can never start.
  const maxTurns = body.maxTurns ?? (body.fromTurn < src.policy.maxTurns ? src.policy.maxTurns : Math.min(MAX_TURNS, body.fromTurn + src.policy.maxTurns));
  if (maxTurns <= body.fromTurn)
    errors.push({ path: 'maxTurns', message: `must be greater than fromTurn (${body.fromTurn}): the fork would have no turn left to run` });
  if (errors.length) throw new AppError('VALIDATION_FAILED', { errors });
  const foreign = src.owner_id !== actor.userId;
  const forkRoster = roster.map(({ discussion_id: _d, ...r }) => {
    const o = body.overrides.find((x) => x.agentId === r.agent_id);
    if (!o) return r;
    return {
      ...r,
      overrides: {
        ...r.overrides,
        ...(o.model ? { model: o.model } : {}),
        ...(o.persona ? { persona: o.persona } : {}),
        ...(o.params ? { params: { ...r.overrides.params, ...o.params } } : {}),
      },
    };
  });
  // Every speaker as it will run in the fork, under the forker's caps (a model someone else may use is not thereby yours).
  for (const r of forkRoster) {
    const a = agents.get(r.agent_id);
    if (!a) continue;
    const overridden = body.overrides.some((o) => o.agentId === r.agent_id);
    if (!foreign && !overridden) continue;
    await deps.checkAgent?.(actor, {
      model: r.overrides.model ?? a.model,
      params: { ...a.params, ...r.overrides.params },
      named: foreign || body.overrides.some((o) => o.agentId === r.agent_id && o.model !== undefined),
    });
  }
  // Someone else's agents are copied to the forker; one's own are shared with the source room.
  const copies = new Map<string, string>();
  if (foreign) for (const r of roster) copies.set(r.agent_id, randomUUID());
  const agentOf = (agentId: string) => copies.get(agentId) ?? agentId;

  // The room as it was at the end of turn fromTurn: the messages posted before turn fromTurn + 1 began. That turn
  // may still be speaking (no transcript document yet): its `turn_started` in the room stream says where it began.
  const nextStart =
    (await turnStartedSeq(deps.redis, deps.keys, id, body.fromTurn + 1, turns.at(-1)?.startedSeq ?? 0)) ??
    (await deps.transcripts.getTurn(id, body.fromTurn + 1))?.startedSeq;
  const messages = await messagesBefore(deps, id, nextStart);
  const forkId = randomUUID();
  // What the source room had counted by the fork point: its speakers' and its moderator's usage, as commitTurn adds it.
  const tokens = roomTokens(turns);
  const row = await deps.db.transaction(async (trx) => {
    // Both caps in the transaction that inserts, under the owner's locks (agents first, as everywhere).
    if (foreign) await ensureAgentRoom(deps, trx, actor.userId, roster.length);
    await ensureOpenRoomSlot(deps, trx, actor.userId);
    for (const [from, to] of copies) {
      const a = agents.get(from)!;
      await deps.rooms.insertAgent({ id: to, owner_id: actor.userId, name: a.name, persona: a.persona, model: a.model, params: a.params }, trx);
    }
    return deps.rooms.insertRoom(
      trx,
      {
        id: forkId,
        owner_id: actor.userId,
        topic: src.topic,
        policy: { ...src.policy, maxTurns },
        visibility: body.visibility,
        shared_with: [],
        current_turn: body.fromTurn,
        tokens_used: tokens,
        parent_id: id,
        fork_turn: body.fromTurn,
      },
      forkRoster.map((r) => ({ ...r, agent_id: agentOf(r.agent_id) })),
    );
  });

  // Replay the shared history, in timeline order, into the fork's stream and transcript.
  const timeline = [...turns.map((t) => ({ seq: t.startedSeq, turn: t })), ...messages.map((m) => ({ seq: m.seq, message: m }))].sort((a, b) => a.seq - b.seq);
  for (const item of timeline) {
    if ('message' in item && item.message) {
      const m = item.message;
      const [seq] = await appendRoomEvents(
        deps.redis,
        deps.keys,
        forkId,
        0,
        [{ e: 'human_message', d: { id: m.id, authorId: m.authorId, authorName: m.authorName, text: m.text } }],
        deps.roomStreamMaxLen,
      );
      await deps.transcripts.addMessage({ ...m, discussionId: forkId, seq: seq! });
      continue;
    }
    const t = (item as { turn: TurnDoc }).turn;
    const agentId = agentOf(t.agentId);
    const [seq] = await appendRoomEvents(
      deps.redis,
      deps.keys,
      forkId,
      0,
      [
        { e: 'turn_started', d: { turn: t.turn, agentId, agentName: t.agentName, model: t.model, copied: true } },
        ...(t.text ? [{ e: 'tokens', d: { turn: t.turn, agentId, text: t.text } }] : []),
        { e: 'turn_finished', d: { turn: t.turn, agentId, status: t.status, usage: t.usage, ...(t.error ? { error: t.error } : {}) } },
      ],
      deps.roomStreamMaxLen,
    );
    await deps.transcripts.putTurn({
      ...t,
      agentId,
      discussionId: forkId,
      startedSeq: seq!,
      jobId: null,
      copiedFrom: t.copiedFrom ?? { discussionId: id, turn: t.turn },
    });
  }
  // The copied messages count against the fork's own bound.
  if (messages.length && deps.maxMessagesPerRoom !== undefined) await deps.redis.set(deps.keys.roomMessageCount(forkId), String(messages.length));
  return view(deps, row);
}

export async function compareDiscussions(deps: DiscussionDeps, actor: Actor, id: string, otherId: string): Promise<Comparison> {
  const [left, right] = await Promise.all([readableRoom(deps, actor, id), readableRoom(deps, actor, otherId)]);
  const [lc, rc] = await Promise.all([deps.rooms.lineage(id), deps.rooms.lineage(otherId)]);
  // For each ancestor on a chain: how many turns the room shares with it (the smallest fork turn on the way up).
  const shared = (chain: typeof lc) => {
    const out = new Map<string, number>();
    let upTo = Number.POSITIVE_INFINITY;
    for (const link of chain) {
      out.set(link.id, upTo);
      upTo = Math.min(upTo, link.forkTurn ?? 0);
    }
    return out;
  };
  const ls = shared(lc);
  const rs = shared(rc);
  const common = lc.find((l) => rs.has(l.id))?.id ?? null;
  const diverges = common ? Math.min(ls.get(common)!, rs.get(common)!) : null;

  const [lt, rt] = await Promise.all([deps.transcripts.turns(id), deps.transcripts.turns(otherId)]);
  const lm = new Map(lt.map((t) => [t.turn, t]));
  const rm = new Map(rt.map((t) => [t.turn, t]));
  const last = Math.max(0, ...lm.keys(), ...rm.keys());
  const cell = (t: TurnDoc | undefined) =>
    t
      ? { agentId: t.agentId, agentName: t.agentName, model: t.model, text: t.text, status: t.status, usage: t.usage ?? null, copiedFrom: t.copiedFrom ?? null }
      : null;
  const lineage = (r: DiscussionRow) => (r.parent_id ? { parentId: r.parent_id, forkTurn: r.fork_turn ?? 0 } : null);
  return {
    left: { id, topic: left.topic, status: left.status, lineage: lineage(left) },
    right: { id: otherId, topic: right.topic, status: right.status, lineage: lineage(right) },
    commonAncestor: common,
    divergesAfterTurn: diverges === null || !Number.isFinite(diverges) ? (diverges === null ? null : Math.max(lt.length, rt.length)) : diverges,
    rows: Array.from({ length: last }, (_, i) => {
      const l = lm.get(i + 1);
      const r = rm.get(i + 1);
      // By speaker name: a fork of someone else's room speaks through copies of its agents, under new ids.
      return { turn: i + 1, left: cell(l), right: cell(r), same: !!l && !!r && l.agentName === r.agentName && l.text === r.text && l.status === r.status };
    }),
  };
}
