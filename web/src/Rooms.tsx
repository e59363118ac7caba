import { useEffect, useState, type FormEvent } from 'react';
import { isParleyError, type Agent, type Discussion } from '../../sdk/index.ts';
import { useParleyClient } from '../../sdk/react/index.ts';

export function Rooms({ current, onOpen }: { current: string | null; onOpen: (id: string) => void }) {
  const client = useParleyClient();
  const [rooms, setRooms] = useState<Discussion[]>([]);
  const [agents, setAgents] = useState<Agent[]>([]);
  const [tick, setTick] = useState(0);
  const refresh = () => setTick((t) => t + 1);

  useEffect(() => {
    const controller = new AbortController();
    const load = () => {
      client.discussions
        .list({ limit: 30 }, { signal: controller.signal })
        .first()
        .then(
          (p) => setRooms(p.items),
          () => {},
        );
      client.agents.list({ signal: controller.signal }).then(setAgents, () => {});
    };
    load();
    const timer = setInterval(load, 5000);
    return () => {
      controller.abort();
      clearInterval(timer);
    };
  }, [client, tick]);

  return (
    <div className="rooms">
      <h2>Rooms</h2>
      <ul data-testid="rooms">
        {rooms.map((r) => (
          <li key={r.id}>
            <a href={`#/rooms/${r.id}`} className={r.id === current ? 'current' : ''} onClick={() => onOpen(r.id)}>
              <span className={`dot ${r.status}`} /> {r.topic}
            </a>
          </li>
        ))}
        {rooms.length === 0 && <li className="muted">No rooms yet.</li>}
      </ul>
      <NewRoom agents={agents} onCreated={(id) => (refresh(), onOpen(id))} />
      <NewAgent onCreated={refresh} />
    </div>
  );
}

function NewRoom({ agents, onCreated }: { agents: Agent[]; onCreated: (id: string) => void }) {
  const client = useParleyClient();
  const [error, setError] = useState<string>();
  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const el = e.currentTarget;
    const form = new FormData(el);
    setError(undefined);
    try {
      const room = await client.discussions.create({
        topic: String(form.get('topic')),
        agentIds: form.getAll('agent').map(String),
        policy: { maxTurns: Number(form.get('maxTurns')) },
      });
      if (form.get('start')) await client.discussions.start(room.id);
      el.reset();
      onCreated(room.id);
    } catch (err) {
      setError(isParleyError(err) ? (err.errors?.map((x) => `${x.path}: ${x.message}`).join('; ') ?? err.detail ?? err.code) : String(err));
    }
  }
  return (
    <form className="card" onSubmit={submit} data-testid="new-room">
      <h3>New room</h3>
      <input name="topic" placeholder="Topic" required />
      <fieldset>
        <legend>Agents (two or more)</legend>
        {agents.map((a) => (
          <label key={a.id} className="check">
            <input type="checkbox" name="agent" value={a.id} /> {a.name} <span className="muted">{a.model}</span>
          </label>
        ))}
        {agents.length === 0 && <span className="muted">Create agents below first.</span>}
      </fieldset>
      <label>
        Turns <input name="maxTurns" type="number" min={1} max={200} defaultValue={4} />
      </label>
      <label className="check">
        <input type="checkbox" name="start" defaultChecked /> start at once
      </label>
      <button>Create room</button>
      {error && <p className="error">{error}</p>}
    </form>
  );
}

function NewAgent({ onCreated }: { onCreated: () => void }) {
  const client = useParleyClient();
  const [error, setError] = useState<string>();
  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const el = e.currentTarget;
    const form = new FormData(el);
    setError(undefined);
    try {
      await client.agents.create({
        name: String(form.get('name')),
        persona: String(form.get('persona')),
        params: { num_predict: Number(form.get('numPredict')) },
      });
      el.reset();
      onCreated();
    } catch (err) {
      setError(isParleyError(err) ? (err.errors?.map((x) => `${x.path}: ${x.message}`).join('; ') ?? err.detail ?? err.code) : String(err));
    }
  }
  return (
    <form className="card" onSubmit={submit} data-testid="new-agent">
      <h3>New agent</h3>
      <input name="name" placeholder="Name" required />
      <textarea name="persona" placeholder="Persona: who they are, how they argue" required rows={2} />
      <label>
        Tokens per turn <input name="numPredict" type="number" min={1} max={2048} defaultValue={80} />
      </label>
      <button>Create agent</button>
      {error && <p className="error">{error}</p>}
    </form>
  );
}
