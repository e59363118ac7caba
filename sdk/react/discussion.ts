import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import { isClosed, type Discussion, type RoomEvent, type RoomStatus, type TurnStatus, type Usage } from '../../shared/index.ts';
import { isParleyError, ParleyError } from '../errors.ts';
import type { NewFork } from '../resources/discussions.ts';
import type { StreamTransport } from '../types.ts';
import { useParleyClient } from './provider.tsx';

/** A turn as the room shows it: the text so far while `status` is `speaking`. */
export interface TurnView {
  turn: number;
  agentId: string;
  agentName: string;
  model: string;
  text: string;
  status: 'speaking' | TurnStatus;
  usage: Usage | null;
  /** A fork's copied history. */
  copied: boolean;
  /** The room seq the turn started at: orders turns and messages in one timeline. */
  seq: number;
}

export interface MessageView {
  id: string;
  authorName: string;
  text: string;
  seq: number;
}

export type TimelineEntry = ({ kind: 'turn' } & TurnView) | ({ kind: 'message' } & MessageView);

export interface RoomState {
  status: RoomStatus | undefined;
  reason: string | undefined;
  turns: TurnView[];
  messages: MessageView[];
  lastSeq: number;
}

export const emptyRoom: RoomState = { status: undefined, reason: undefined, turns: [], messages: [], lastSeq: 0 };

/** Folds one room event into the room's state (pure: the hook's reducer, usable on its own). */
export function applyRoomEvent(s: RoomState, e: RoomEvent): RoomState {
  const next = { ...s, lastSeq: e.data.seq };
  switch (e.event) {
    case 'turn_started': {
      const d = e.data;
      const turn: TurnView = {
        turn: d.turn,
        agentId: d.agentId,
        agentName: d.agentName,
        model: d.model,
        text: '',
        status: 'speaking',
        usage: null,
        copied: d.copied ?? false,
        seq: d.seq,
      };
      // The same turn again is a retry after a failed attempt: its text restarts.
      return { ...next, turns: [...s.turns.filter((t) => t.turn !== d.turn), turn].sort((a, b) => a.turn - b.turn) };
    }
    case 'tokens':
      return { ...next, turns: s.turns.map((t) => (t.turn === e.data.turn ? { ...t, text: t.text + e.data.text } : t)) };
    case 'turn_finished':
      return { ...next, turns: s.turns.map((t) => (t.turn === e.data.turn ? { ...t, status: e.data.status, usage: e.data.usage } : t)) };
    case 'status':
      return { ...next, status: e.data.status, reason: e.data.reason };
    case 'human_message':
      return { ...next, messages: [...s.messages, { id: e.data.id, authorName: e.data.authorName, text: e.data.text, seq: e.data.seq }] };
    case 'snapshot':
      return {
        ...next,
        status: e.data.status,
        turns: e.data.turns.map((t) => ({
          turn: t.turn,
          agentId: t.agentId,
          agentName: t.agentName,
          model: t.model,
          text: t.text,
          status: t.status,
          usage: t.usage,
          copied: t.copiedFrom !== null,
          seq: t.startedSeq,
        })),
        messages: e.data.messages.map((m) => ({ id: m.id, authorName: m.authorName, text: m.text, seq: m.seq })),
      };
  }
}

type Action = { type: 'event'; event: RoomEvent } | { type: 'reset' };
const reducer = (s: RoomState, a: Action): RoomState => (a.type === 'reset' ? emptyRoom : applyRoomEvent(s, a.event));

/**
 * A room, live: its record, the transcript as it is spoken (every turn and message in one timeline),
 * the current speaker and their tokens, the room's status, and its controls. Replays the room from
 * its first event, then follows it; resumes across dropped connections; closes on unmount.
 */
export function useDiscussion(id: string | null, opts: { transport?: StreamTransport } = {}) {
  const client = useParleyClient();
  const [room, dispatch] = useReducer(reducer, emptyRoom);
  const [discussion, setDiscussion] = useState<Discussion | undefined>(undefined);
  const [conn, setConn] = useState<{ connected: boolean; reconnects: number; error: ParleyError | undefined }>({
    connected: false,
    reconnects: 0,
    error: undefined,
  });
  const { transport } = opts;
  const refreshRef = useRef<() => void>(() => {});

  useEffect(() => {
    dispatch({ type: 'reset' });
    setDiscussion(undefined);
    setConn({ connected: false, reconnects: 0, error: undefined });
    if (!id) return;
    const controller = new AbortController();
    // A failed read (say, while offline) shows until a later one succeeds.
    let readError: ParleyError | undefined;
    let reading = false;
    const load = async () => {
      reading = true;
      try {
        const d = await client.discussions.get(id, { signal: controller.signal });
        if (controller.signal.aborted) return;
        setDiscussion(d);
        const cleared = readError;
        readError = undefined;
        if (cleared) setConn((c) => (c.error === cleared ? { ...c, error: undefined } : c));
      } catch (err) {
        if (controller.signal.aborted || !isParleyError(err)) return;
        readError = err;
        setConn((c) => ({ ...c, error: err }));
      } finally {
        reading = false;
      }
    };
    refreshRef.current = () => void load();
    void load();
    const stream = client.discussions.stream(id, {
      signal: controller.signal,
      ...(transport ? { transport } : {}),
      onReconnect: () => setConn((c) => ({ ...c, connected: false, reconnects: c.reconnects + 1 })),
    });
    void (async () => {
      try {
        for await (const event of stream) {
          dispatch({ type: 'event', event });
          setConn((c) => (c.connected ? c : { ...c, connected: true }));
          // A status change moves the record too (turn counters, reason): read it again; so does
          // the first event after a failed read (the network came back).
          if (event.event === 'status' || (readError && !reading)) void load();
        }
        setConn((c) => ({ ...c, connected: false }));
      } catch (err) {
        if (!controller.signal.aborted)
          setConn((c) => ({
            ...c,
            connected: false,
            error: isParleyError(err) ? err : new ParleyError({ code: 'NETWORK_ERROR', status: 0, detail: String(err), cause: err }),
          }));
      }
    })();
    return () => controller.abort();
  }, [client, id, transport]);

  const speaking = room.turns.find((t) => t.status === 'speaking');
  const timeline = useMemo<TimelineEntry[]>(
    () =>
      [...room.turns.map((t) => ({ kind: 'turn' as const, ...t })), ...room.messages.map((m) => ({ kind: 'message' as const, ...m }))].sort(
        (a, b) => a.seq - b.seq,
      ),
    [room.turns, room.messages],
  );
  const act = useCallback(
    <A extends unknown[], R>(fn: (id: string, ...args: A) => Promise<R>) =>
      async (...args: A): Promise<R> => {
        if (!id) throw new Error('no discussion');
        const r = await fn(id, ...args);
        refreshRef.current();
        return r;
      },
    [id],
  );
  const actions = useMemo(
    () => ({
      start: act((i) => client.discussions.start(i)),
      pause: act((i) => client.discussions.pause(i)),
      resume: act((i) => client.discussions.resume(i)),
      stop: act((i) => client.discussions.stop(i)),
      interrupt: act((i) => client.discussions.interrupt(i)),
      post: act((i, text: string) => client.discussions.post(i, text)),
      fork: act((i, body: NewFork) => client.discussions.fork(i, body)),
    }),
    [act, client],
  );

  return {
    /** The room's record (topic, agents, policy, counters), read again after each status change. */
    discussion,
    /** From the live events; before the first, from the record. */
    status: room.status ?? discussion?.status,
    reason: room.reason ?? discussion?.statusReason ?? undefined,
    closed: (room.status ?? discussion?.status) !== undefined && isClosed((room.status ?? discussion?.status)!),
    turns: room.turns,
    messages: room.messages,
    timeline,
    /** The agent speaking now, with their tokens so far; null between turns. */
    speaker: speaking ? { turn: speaking.turn, agentId: speaking.agentId, agentName: speaking.agentName, text: speaking.text } : null,
    lastSeq: room.lastSeq,
    ...conn,
    ...actions,
  };
}
