/** `client.discussions` and `client.agents`: the arena's rooms and speakers. */
import {
  isClosed,
  roomEvents,
  type Agent,
  type AgentList,
  type Comparison,
  type Discussion,
  type DiscussionList,
  type HumanMessage,
  type ListDiscussionsQuery,
  type RoomEvent,
  type Transcript,
  type AgentInput,
  type AgentPatch,
  type CreateDiscussion,
  type ForkRequest,
} from '../../shared/index.ts';
import type { z } from 'zod';
import type { ResourceContext } from '../internal/context.ts';
import type { EventStream, StreamOptions } from '../internal/event-stream.ts';
import { paginate, type Paginated } from '../internal/pages.ts';
import type { CallOptions, StreamTransport } from '../types.ts';

/** What you send (defaults optional): the zod schemas' input types. */
export type NewAgent = z.input<typeof AgentInput>;
export type AgentChanges = z.input<typeof AgentPatch>;
export type NewDiscussion = z.input<typeof CreateDiscussion>;
export type NewFork = z.input<typeof ForkRequest>;

export interface RoomStreamOptions extends StreamOptions {
  transport?: StreamTransport;
}

/** The last event of a room stream: a `status` that closes the room, or the snapshot of a closed room. */
export const isLastRoomEvent = (e: RoomEvent): boolean => e.event === 'snapshot' || (e.event === 'status' && isClosed(e.data.status));

export function discussionsResource(ctx: ResourceContext) {
  const { http } = ctx;
  const at = (id: string, rest = '') => `/v1/discussions/${encodeURIComponent(id)}${rest}`;
  const action =
    (name: 'start' | 'pause' | 'resume' | 'stop' | 'interrupt') =>
    async (id: string, opts: CallOptions = {}): Promise<Discussion> =>
      (await http.request<Discussion>({ method: 'POST', path: at(id, `/${name}`), signal: opts.signal })).data;

  return {
    /** A draft room: topic, speaking agents (in order), policy, visibility. */
    async create(body: NewDiscussion, opts: CallOptions = {}): Promise<Discussion> {
      return (await http.request<Discussion>({ method: 'POST', path: '/v1/discussions', body, signal: opts.signal })).data;
    },
    async get(id: string, opts: CallOptions = {}): Promise<Discussion> {
      return (await http.request<Discussion>({ method: 'GET', path: at(id), signal: opts.signal })).data;
    },
    /** Rooms you may read, newest first, across pages. */
    list(query: Partial<Omit<ListDiscussionsQuery, 'cursor'>> = {}, opts: CallOptions = {}): Paginated<Discussion, DiscussionList> {
      return paginate((cursor) =>
        http.request<DiscussionList>({ method: 'GET', path: '/v1/discussions', query: { ...query, cursor }, signal: opts.signal }).then((r) => r.data),
      );
    },
    start: action('start'),
    pause: action('pause'),
    resume: action('resume'),
    stop: action('stop'),
    /** Stops the current speaker (its partial turn is kept); the next one follows. */
    interrupt: action('interrupt'),
    /** Posts a message into the room; the next speaker hears it. */
    async post(id: string, text: string, opts: CallOptions = {}): Promise<HumanMessage> {
      return (await http.request<HumanMessage>({ method: 'POST', path: at(id, '/messages'), body: { text }, signal: opts.signal })).data;
    },
    /** A draft copy of turns 1..fromTurn, with other models, personas or parameters for some agents. */
    async fork(id: string, body: NewFork, opts: CallOptions = {}): Promise<Discussion> {
      return (await http.request<Discussion>({ method: 'POST', path: at(id, '/fork'), body, signal: opts.signal })).data;
    },
    async transcript(id: string, opts: CallOptions & { prompts?: boolean } = {}): Promise<Transcript> {
      return (
        await http.request<Transcript>({
          method: 'GET',
          path: at(id, '/transcript'),
          query: { prompts: opts.prompts ? 'true' : undefined },
          signal: opts.signal,
        })
      ).data;
    },
    async compare(id: string, otherId: string, opts: CallOptions = {}): Promise<Comparison> {
      return (await http.request<Comparison>({ method: 'GET', path: at(id, `/compare/${encodeURIComponent(otherId)}`), signal: opts.signal })).data;
    },
    /**
     * Every room event from `afterSeq` on (0: the whole room so far, then live), resumed across dropped
     * connections with no gap or duplicate; it ends when the room closes.
     */
    stream(id: string, opts: RoomStreamOptions = {}): EventStream<RoomEvent> {
      return ctx.stream<RoomEvent>({ path: at(id, '/events'), room: `discussion:${id}`, events: Object.keys(roomEvents), isLast: isLastRoomEvent }, opts);
    },
  };
}

export function agentsResource(ctx: ResourceContext) {
  const { http } = ctx;
  const at = (id: string) => `/v1/agents/${encodeURIComponent(id)}`;
  return {
    async create(body: NewAgent, opts: CallOptions = {}): Promise<Agent> {
      return (await http.request<Agent>({ method: 'POST', path: '/v1/agents', body, signal: opts.signal })).data;
    },
    /** Your agents, newest first (the API does not page them). */
    async list(opts: CallOptions = {}): Promise<Agent[]> {
      return (await http.request<AgentList>({ method: 'GET', path: '/v1/agents', signal: opts.signal })).data.items;
    },
    async get(id: string, opts: CallOptions = {}): Promise<Agent> {
      return (await http.request<Agent>({ method: 'GET', path: at(id), signal: opts.signal })).data;
    },
    async update(id: string, body: AgentChanges, opts: CallOptions = {}): Promise<Agent> {
      return (await http.request<Agent>({ method: 'PATCH', path: at(id), body, signal: opts.signal })).data;
    },
    async delete(id: string, opts: CallOptions = {}): Promise<void> {
      await http.request<void>({ method: 'DELETE', path: at(id), signal: opts.signal });
    },
  };
}

export type DiscussionsResource = ReturnType<typeof discussionsResource>;
export type AgentsResource = ReturnType<typeof agentsResource>;
