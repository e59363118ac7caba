import { useState, type FormEvent } from 'react';
import { isParleyError } from '../../sdk/index.ts';
import { useDiscussion } from '../../sdk/react/index.ts';

const palette = ['#2563eb', '#db2777', '#059669', '#d97706', '#7c3aed', '#0891b2', '#dc2626', '#65a30d'];

export function Room({ id, onOpen }: { id: string; onOpen: (id: string) => void }) {
  const room = useDiscussion(id);
  const [error, setError] = useState<string>();
  const colour = (agentId: string) => palette[Math.max(0, room.discussion?.agents.findIndex((a) => a.id === agentId) ?? 0) % palette.length];
  const run = (fn: () => Promise<unknown>) => () => {
    setError(undefined);
    fn().catch((err: unknown) => setError(isParleyError(err) ? (err.detail ?? err.code) : String(err)));
  };
  async function post(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const el = e.currentTarget;
    const text = String(new FormData(el).get('text'));
    run(async () => {
      await room.post(text);
      el.reset();
    })();
  }
  const status = room.status;
  const lastTurn = room.turns.filter((t) => t.status !== 'speaking').at(-1)?.turn ?? 0;

  return (
    <div className="room" data-testid="room" data-status={status} data-connected={room.connected} data-reconnects={room.reconnects}>
      <div className="room-head">
        <h2 data-testid="topic">{room.discussion?.topic ?? '…'}</h2>
        <span className={`badge ${status}`} data-testid="status">
          {status}
        </span>
        {!room.connected && !room.closed && <span className="muted">reconnecting…</span>}
      </div>
      {room.reason && <p className="muted">{room.reason}</p>}
      <div className="controls">
        {status === 'draft' && <button onClick={run(room.start)}>Start</button>}
        {status === 'running' && <button onClick={run(room.pause)}>Pause</button>}
        {status === 'paused' && <button onClick={run(room.resume)}>Resume</button>}
        {(status === 'running' || status === 'paused' || status === 'draft') && (
          <button onClick={run(room.stop)} className="danger">
            Stop
          </button>
        )}
        <button onClick={run(async () => onOpen((await room.fork({ fromTurn: lastTurn })).id))} title={`A draft copy of turns 1–${lastTurn}`}>
          Fork from turn {lastTurn}
        </button>
      </div>
      <ol className="timeline" data-testid="timeline">
        {room.timeline.map((e) =>
          e.kind === 'turn' ? (
            <li
              key={`t${e.turn}`}
              className={`turn ${e.status}`}
              style={{ borderColor: colour(e.agentId) }}
              data-testid="turn"
              data-turn={e.turn}
              data-status={e.status}
            >
              <div className="who" style={{ color: colour(e.agentId) }}>
                {e.agentName}{' '}
                <span className="muted">
                  turn {e.turn} · {e.model}
                  {e.copied ? ' · copied from the parent room' : ''}
                </span>
                {e.status === 'speaking' && (
                  <span className="speaking" data-testid="speaking">
                    {' '}
                    speaking…
                  </span>
                )}
                {e.status !== 'speaking' && e.status !== 'completed' && <span className="muted"> · {e.status}</span>}
              </div>
              <div className="text" data-testid="turn-text">
                {e.text}
              </div>
            </li>
          ) : (
            <li key={`m${e.id}`} className="message" data-testid="message">
              <div className="who">{e.authorName}</div>
              <div className="text">{e.text}</div>
            </li>
          ),
        )}
      </ol>
      {!room.closed && (
        <form className="post" onSubmit={post}>
          <input name="text" placeholder="Say something to the room" required maxLength={4000} />
          <button>Post</button>
        </form>
      )}
      {(error || room.error) && <p className="error">{error ?? room.error?.detail ?? room.error?.code}</p>}
    </div>
  );
}
