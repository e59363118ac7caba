import {
  Agent,
  AgentInput,
  AgentList,
  AgentPatch,
  Comparison,
  CreateDiscussion,
  Discussion,
  DiscussionList,
  EventStreamQuery,
  ForkRequest,
  LastEventIdHeader,
  HumanMessage,
  ListDiscussionsQuery,
  PostHumanMessage,
  roomEvents,
  sseFrame,
  Transcript,
  TranscriptQuery,
  IdParams,
  CompareParams,
} from '../../shared/index.ts';
import { createAgent, deleteAgent, getAgent, listAgents, updateAgent, type AgentDeps } from '../domain/agents.ts';
import {
  compareDiscussions,
  createDiscussion,
  forkDiscussion,
  getDiscussion,
  getTranscript,
  interruptDiscussion,
  listDiscussions,
  pauseDiscussion,
  postMessage,
  resumeDiscussion,
  startDiscussion,
  stopDiscussion,
  type DiscussionDeps,
} from '../domain/discussions.ts';
import { eventStreamRefusals, problem, route, type Route } from '../http/route.ts';

const notFound = problem('No such discussion, or not visible to you');

export function agentRoutes(deps: AgentDeps): Route[] {
  return [
    route({
      method: 'post',
      path: '/v1/agents',
      operationId: 'createAgent',
      tags: ['agents'],
      access: 'discussions:write',
      summary: 'Create an agent: a name, a persona (system prompt), a model and its parameters, within your role caps.',
      body: AgentInput,
      responses: {
        201: { description: 'Created', schema: Agent },
        400: problem('Invalid agent, or its model is not installed'),
        422: problem('Beyond your role caps, or past PARLEY_MAX_AGENTS_PER_USER (LIMIT_EXCEEDED, naming the cap)'),
      },
      async handle({ body, actor }) {
        const agent = await createAgent(deps, actor, body);
        return { status: 201, body: agent, headers: { Location: `/v1/agents/${agent.id}` } };
      },
    }),
    route({
      method: 'get',
      path: '/v1/agents',
      operationId: 'listAgents',
      tags: ['agents'],
      access: 'discussions:read',
      summary: 'Your agents, newest first (admins: everyone’s).',
      responses: { 200: { description: 'Agents', schema: AgentList } },
      async handle({ actor }) {
        return { status: 200, body: await listAgents(deps, actor) };
      },
    }),
    route({
      method: 'get',
      path: '/v1/agents/:id',
      operationId: 'getAgent',
      tags: ['agents'],
      access: 'discussions:read',
      summary: 'One agent.',
      params: IdParams,
      responses: { 200: { description: 'The agent', schema: Agent }, 404: problem('No such agent') },
      async handle({ params, actor }) {
        return { status: 200, body: await getAgent(deps, actor, params.id) };
      },
    }),
    route({
      method: 'patch',
      path: '/v1/agents/:id',
      operationId: 'updateAgent',
      tags: ['agents'],
      access: 'discussions:write',
      summary: 'Change an agent; rooms use the change from their next turn.',
      params: IdParams,
      body: AgentPatch,
      responses: {
        200: { description: 'The agent', schema: Agent },
        404: problem('No such agent'),
        409: problem('The new name equals (in any letter case) another speaker’s in an open room the agent speaks in (INVALID_STATE, naming the room)'),
        422: problem('Beyond your role caps'),
      },
      async handle({ params, body, actor }) {
        return { status: 200, body: await updateAgent(deps, actor, params.id, body) };
      },
    }),
    route({
      method: 'delete',
      path: '/v1/agents/:id',
      operationId: 'deleteAgent',
      tags: ['agents'],
      access: 'discussions:write',
      summary: 'Delete an agent no discussion uses.',
      params: IdParams,
      responses: { 204: { description: 'Deleted' }, 404: problem('No such agent'), 409: problem('A discussion uses it') },
      async handle({ params, actor }) {
        await deleteAgent(deps, actor, params.id);
        return { status: 204 };
      },
    }),
  ];
}

export function discussionRoutes(deps: DiscussionDeps): Route[] {
  const control = (action: 'start' | 'pause' | 'resume' | 'stop' | 'interrupt', summary: string, fn: typeof startDiscussion) =>
    route({
      method: 'post',
      path: `/v1/discussions/:id/${action}`,
      operationId: `${action}Discussion`,
      tags: ['discussions'],
      access: 'discussions:write',
      summary,
      params: IdParams,
      responses: {
        200: { description: 'The discussion after the change', schema: Discussion },
        403: problem('Not the owner'),
        404: notFound,
        409: problem('Not allowed in the current status'),
        422: problem('Too many running discussions'),
      },
      async handle({ params, actor }) {
        return { status: 200, body: await fn(deps, actor, params.id) };
      },
    });
  return [
    route({
      method: 'post',
      path: '/v1/discussions',
      operationId: 'createDiscussion',
      tags: ['discussions'],
      access: 'discussions:write',
      summary: 'Create a discussion room (draft): a topic, the speaking agents, the turn policy and stop conditions, the visibility.',
      body: CreateDiscussion,
      responses: {
        201: { description: 'Created', schema: Discussion },
        400: problem('Invalid body, unknown agents or users'),
        422: problem('Past PARLEY_MAX_OPEN_ROOMS_PER_USER (LIMIT_EXCEEDED)'),
      },
      async handle({ body, actor }) {
        const d = await createDiscussion(deps, actor, body);
        return { status: 201, body: d, headers: { Location: d.links.self } };
      },
    }),
    route({
      method: 'get',
      path: '/v1/discussions',
      operationId: 'listDiscussions',
      tags: ['discussions'],
      access: 'discussions:read',
      summary: 'Discussions you may read (yours, shared with you, public), newest first.',
      query: ListDiscussionsQuery,
      responses: { 200: { description: 'A page of discussions', schema: DiscussionList } },
      async handle({ query, actor }) {
        return { status: 200, body: await listDiscussions(deps, actor, query) };
      },
    }),
    route({
      method: 'get',
      path: '/v1/discussions/:id',
      operationId: 'getDiscussion',
      tags: ['discussions'],
      access: 'discussions:read',
      summary: 'A discussion: agents, policy, status (with its reason), current turn and tokens used, lineage.',
      params: IdParams,
      responses: { 200: { description: 'The discussion', schema: Discussion }, 404: notFound },
      async handle({ params, actor }) {
        return { status: 200, body: await getDiscussion(deps, actor, params.id) };
      },
    }),
    control('start', 'Start a draft: turns are scheduled one after another until a stop condition.', startDiscussion),
    control('pause', 'Pause: the turn in progress finishes and is kept; no new turn starts until resume.', pauseDiscussion),
    control('resume', 'Resume a paused discussion with the next turn.', resumeDiscussion),
    control('stop', 'Stop for good: the current speaker is interrupted (its partial turn kept).', stopDiscussion),
    control('interrupt', 'Interrupt the current speaker: its partial turn is kept, marked interrupted, and the next speaker follows.', interruptDiscussion),
    route({
      method: 'post',
      path: '/v1/discussions/:id/messages',
      operationId: 'postDiscussionMessage',
      tags: ['discussions'],
      access: 'discussions:post',
      summary: 'Post a human message; it joins the next speaker’s context. Owner, users it is shared with, and admins.',
      params: IdParams,
      body: PostHumanMessage,
      responses: {
        201: { description: 'Posted', schema: HumanMessage },
        403: problem('Read-only for you'),
        404: notFound,
        409: problem('The discussion is closed'),
        422: problem('The room has taken PARLEY_ROOM_MAX_MESSAGES messages (LIMIT_EXCEEDED)'),
      },
      async handle({ params, body, actor }) {
        return { status: 201, body: await postMessage(deps, actor, params.id, body) };
      },
    }),
    route({
      method: 'post',
      path: '/v1/discussions/:id/fork',
      operationId: 'forkDiscussion',
      tags: ['discussions'],
      access: 'discussions:write',
      summary: 'Fork from turn N (a draft of your own) with overrides: another model, persona or parameters for some agents.',
      params: IdParams,
      body: ForkRequest,
      responses: {
        201: { description: 'The fork', schema: Discussion },
        400: problem('Invalid fork: fromTurn past the committed turns, an override for an agent not in the room, a model not installed'),
        404: notFound,
        422: problem("A speaker beyond the forker's role caps, or past the forker's open rooms or agents (LIMIT_EXCEEDED, naming the cap)"),
      },
      async handle({ params, body, actor }) {
        const d = await forkDiscussion(deps, actor, params.id, body);
        return { status: 201, body: d, headers: { Location: d.links.self } };
      },
    }),
    route({
      method: 'get',
      path: '/v1/discussions/:id/transcript',
      operationId: 'getDiscussionTranscript',
      tags: ['discussions'],
      access: 'discussions:read',
      summary:
        'The transcript: every turn (agent, model, text, status, usage, timings, context stats), human messages, the rolling summary. `?prompts=true` adds each turn’s exact prompt.',
      params: IdParams,
      query: TranscriptQuery,
      responses: { 200: { description: 'The transcript', schema: Transcript }, 404: notFound },
      async handle({ params, query, actor }) {
        return { status: 200, body: await getTranscript(deps, actor, params.id, query) };
      },
    }),
    route({
      method: 'get',
      path: '/v1/discussions/:id/compare/:otherId',
      operationId: 'compareDiscussions',
      tags: ['discussions'],
      access: 'discussions:read',
      summary: 'Two transcripts side by side, aligned by turn, with their lineage and where they diverge.',
      params: CompareParams,
      responses: { 200: { description: 'The comparison', schema: Comparison }, 404: notFound },
      async handle({ params, actor }) {
        return { status: 200, body: await compareDiscussions(deps, actor, params.id, params.otherId) };
      },
    }),
  ];
}

/** The SSE endpoint, for the OpenAPI document (it is mounted as a stream, not a route). */
export const discussionEventsDoc = {
  path: '/v1/discussions/:id/events',
  method: 'get' as const,
  operationId: 'streamDiscussionEvents',
  tags: ['discussions'],
  access: 'discussions:read',
  params: IdParams,
  query: EventStreamQuery,
  requestHeaders: { 'Last-Event-ID': { description: 'Resume after this room seq: exactly the events after it', schema: LastEventIdHeader } },
  summary:
    'Live events of a discussion room as Server-Sent Events, from its first kept event (late joiners get the transcript so far and the turn in progress); resumable with Last-Event-ID.',
  responses: {
    200: {
      description:
        'text/event-stream of turn_started, tokens, turn_finished, status, human_message; a `snapshot` of the transcript first when what was asked for is no longer kept (and alone for a closed room whose stream expired)',
      contentType: 'text/event-stream',
      schema: sseFrame(Object.keys(roomEvents)),
    },
    ...eventStreamRefusals,
  },
};
