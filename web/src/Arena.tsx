import { useCallback, useEffect, useState } from 'react';
import type { Me } from '../../sdk/index.ts';
import { useUsage } from '../../sdk/react/index.ts';
import { Chat } from './Chat.tsx';
import { Room } from './Room.tsx';
import { Rooms } from './Rooms.tsx';

/** `#/rooms/<id>`: the open room survives a reload. */
function useHashRoom(): [string | null, (id: string | null) => void] {
  const read = () => /^#\/rooms\/([0-9a-f-]{36})$/.exec(location.hash)?.[1] ?? null;
  const [id, setId] = useState(read);
  useEffect(() => {
    const on = () => setId(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  const go = useCallback((next: string | null) => {
    location.hash = next ? `#/rooms/${next}` : '';
  }, []);
  return [id, go];
}

export function Arena({ me, onSignOut }: { me: Me; onSignOut: () => void }) {
  const [roomId, openRoom] = useHashRoom();
  return (
    <div className="layout">
      <header>
        <strong>Parley arena</strong>
        <span className="spacer" />
        <UsageBadge />
        <span data-testid="me">{me.username}</span>
        <span className="muted">({me.role})</span>
        <button className="link" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <aside>
        <Rooms current={roomId} onOpen={openRoom} />
      </aside>
      <main>{roomId ? <Room key={roomId} id={roomId} onOpen={openRoom} /> : <p className="muted center">Pick a room, or create one from your agents.</p>}</main>
      <section className="side">
        <Chat />
      </section>
    </div>
  );
}

function UsageBadge() {
  const { usage } = useUsage({}, { pollMs: 10_000 });
  if (!usage) return null;
  const budget = usage.budgets[0];
  return (
    <span className="usage" data-testid="usage" title={`${usage.totals.jobs} jobs since ${usage.from}`}>
      {usage.totals.totalTokens.toLocaleString()} tokens used
      {budget ? ` · ${budget.remainingTokens.toLocaleString()} left this ${budget.period}` : ''}
    </span>
  );
}
