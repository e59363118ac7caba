/**
 * `npm run demo` (and the tail of `npm start`): a live discussion between
 * three agents on the real chat model, streamed to this terminal over
 * Socket.IO as it happens.
 *
 * Needs a running API and workers. Reads PARLEY_API_URL (default
 * http://127.0.0.1:3000) and the admin credentials PARLEY_BOOTSTRAP_ADMIN_USER
 * / PARLEY_BOOTSTRAP_ADMIN_PASSWORD. Logs in, creates the agents and the
 * room, prints how to watch the same room from elsewhere, starts it, and
 * exits 0 when the room finishes (1 on any failure, with the reason).
 *
 * This is a client of the public API only: it imports nothing of the server.
 */
import { io, type Socket } from 'socket.io-client';

const base = (process.env.PARLEY_API_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
const username = process.env.PARLEY_BOOTSTRAP_ADMIN_USER;
const password = process.env.PARLEY_BOOTSTRAP_ADMIN_PASSWORD;
const turns = Number(process.env.PARLEY_DEMO_TURNS ?? 5);
const numPredict = Number(process.env.PARLEY_DEMO_NUM_PREDICT ?? 60);

const tty = process.stdout.isTTY;
const paint = (code: string, s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const colours = ['36', '35', '33'];
const out = (s: string) => process.stdout.write(s);

function fail(message: string): never {
  process.stderr.write(`\n[demo] ${message}\n`);
  process.exit(1);
}

async function call<T = any>(method: string, path: string, token?: string, body?: unknown, form = false): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body ? { 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json' } : {}),
      },
      body: body ? (form ? new URLSearchParams(body as Record<string, string>).toString() : JSON.stringify(body)) : undefined,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    fail(
      `the API at ${base} is not reachable (${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}).\n       Start it with \`npm start\` (or \`npm run api\` and \`npm run workers\`), or set PARLEY_API_URL.`,
    );
  }
  const text = await res.text();
  const json = text ? (JSON.parse(text) as T & { detail?: string; title?: string }) : ({} as T & { detail?: string; title?: string });
  if (!res.ok) fail(`${method} ${path} answered ${res.status}: ${json.detail ?? json.title ?? text}`);
  return json;
}

if (!username || !password) fail('set PARLEY_BOOTSTRAP_ADMIN_USER and PARLEY_BOOTSTRAP_ADMIN_PASSWORD (`npm start` does this for you)');
if (!Number.isInteger(turns) || turns < 1 || turns > 50) fail('PARLEY_DEMO_TURNS must be an integer from 1 to 50');

const { access_token: token } = await call<{ access_token: string }>('POST', '/v1/auth/token', undefined, { grant_type: 'password', username, password }, true);

const cast = [
  {
    name: 'Captain Marlow',
    persona: 'You are Captain Marlow, a weathered sea captain. You are sure pirates would win, and you speak in short, salty sentences.',
  },
  { name: 'Professor Quill', persona: 'You are Professor Quill, a fussy historian. You insist ninjas would win, and you cite made-up historical facts.' },
  { name: 'Pixel', persona: 'You are Pixel, a cheerful robot who tries to find a compromise and loves puns.' },
];
const agents = [];
for (const c of cast)
  agents.push(await call<{ id: string; name: string }>('POST', '/v1/agents', token, { ...c, params: { num_predict: numPredict, temperature: 0.8 } }));
const room = await call<{ id: string; topic: string; links: { events: string; socketRoom: string } }>('POST', '/v1/discussions', token, {
  topic: 'Who would win a friendly sports day: pirates or ninjas?',
  agentIds: agents.map((a) => a.id),
  policy: { maxTurns: turns },
  visibility: 'public',
});
const colourOf = new Map(agents.map((a, i) => [a.id, colours[i % colours.length]!]));

out(
  `\n${paint('1', `Live discussion ${room.id}`)}\n${paint('2', `Topic: ${room.topic}  ·  ${agents.map((a) => a.name).join(', ')}  ·  ${turns} turns of up to ${numPredict} tokens`)}\n\n`,
);
out(`${paint('2', 'Watch the same room from elsewhere (the room is public: any signed-in user may watch):')}\n`);
out(paint('2', `  In a browser, the arena page:  ${base}/#/rooms/${room.id}\n`));
out(paint('2', `  Socket.IO  room "${room.links.socketRoom}":\n`));
out(
  paint(
    '2',
    `    node -e "const s=require('socket.io-client').io('${base}',{auth:{token:process.env.TOKEN}});s.on('connect',()=>s.emit('subscribe',{room:'${room.links.socketRoom}',lastSeq:0},console.log));['turn_started','tokens','turn_finished','status','human_message'].forEach(e=>s.on(e,d=>console.log(e,d)))"\n`,
  ),
);
out(paint('2', `  SSE:\n    curl -N ${base}${room.links.events} -H "authorization: Bearer $TOKEN"\n`));
out(paint('2', `  (TOKEN: curl -s ${base}/v1/auth/token -d grant_type=password -d username=... -d password=... | jq -r .access_token)\n`));
out(
  paint(
    '2',
    `  Join in:  curl ${base}/v1/discussions/${room.id}/messages -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"text":"..."}'\n\n`,
  ),
);

const socket: Socket = io(base, { path: '/socket.io', auth: { token }, transports: ['websocket'], reconnectionDelay: 500 });
let lastSeq = 0;
let atLineStart = true;
const finished = new Promise<{ status: string; reason?: string }>((resolve) => {
  socket.on('connect', () => {
    // On a reconnect, resume after the last event seen: no gap, no duplicate.
    socket.emit('subscribe', { room: room.links.socketRoom, lastSeq }, (ack: { ok: boolean; error?: { message: string } }) => {
      if (!ack.ok) fail(`could not join the room: ${ack.error?.message}`);
    });
  });
  socket.on('connect_error', (err: Error & { data?: { message?: string } }) =>
    out(paint('31', `\n[demo] socket: ${err.data?.message ?? err.message}; retrying\n`)),
  );
  const seen = (d: { seq: number }) => {
    if (d.seq <= lastSeq) return false;
    lastSeq = d.seq;
    return true;
  };
  socket.on('turn_started', (d: { seq: number; turn: number; agentId: string; agentName: string; model: string; attempt: number }) => {
    if (!seen(d)) return;
    out(
      `${atLineStart ? '' : '\n'}\n${paint(`1;${colourOf.get(d.agentId) ?? '37'}`, `── Turn ${d.turn} · ${d.agentName}`)} ${paint('2', `(${d.model}${d.attempt > 1 ? `, attempt ${d.attempt}` : ''})`)}\n`,
    );
    atLineStart = true;
  });
  socket.on('tokens', (d: { seq: number; agentId: string; text: string }) => {
    if (!seen(d)) return;
    out(paint(colourOf.get(d.agentId) ?? '37', d.text));
    atLineStart = d.text.endsWith('\n');
  });
  socket.on(
    'turn_finished',
    (d: { seq: number; status: string; usage: { promptTokens: number; completionTokens: number } | null; error?: { message: string } }) => {
      if (!seen(d)) return;
      const usage = d.usage ? `${d.usage.promptTokens} prompt + ${d.usage.completionTokens} completion tokens` : 'no usage';
      out(`${atLineStart ? '' : '\n'}${paint('2', `   [${d.status}; ${usage}${d.error ? `; ${d.error.message}` : ''}]`)}\n`);
      atLineStart = true;
    },
  );
  socket.on('human_message', (d: { seq: number; authorName: string; text: string }) => {
    if (!seen(d)) return;
    out(`${atLineStart ? '' : '\n'}${paint('1;32', `   ${d.authorName} (audience): ${d.text}`)}\n`);
    atLineStart = true;
  });
  socket.on('status', (d: { seq: number; status: string; reason?: string }) => {
    if (!seen(d)) return;
    out(paint('2', `${atLineStart ? '' : '\n'}   · room ${d.status}${d.reason ? `: ${d.reason}` : ''}\n`));
    atLineStart = true;
    if (d.status === 'finished' || d.status === 'stopped') resolve(d);
    if (d.status === 'paused' && d.reason && !d.reason.startsWith('paused by')) resolve(d);
  });
  socket.on('auth_error', (e: { message: string }) => fail(`the server ended the connection: ${e.message}`));
});
await new Promise<void>((resolve, reject) => {
  socket.once('connect', () => resolve());
  setTimeout(() => reject(new Error('timeout')), 15_000);
}).catch(() => fail(`could not open a Socket.IO connection to ${base}`));

await call('POST', `/v1/discussions/${room.id}/start`, token);
const end = await finished;
socket.close();
const summary = await call<{ tokensUsed: number; turn: number }>('GET', `/v1/discussions/${room.id}`, token);
out(
  `\n${paint('1', `Room ${end.status}`)} after ${summary.turn} turns, ${summary.tokensUsed} tokens. Transcript (with a bearer token): curl -H "authorization: Bearer $TOKEN" ${base}/v1/discussions/${room.id}/transcript\n`,
);
process.exit(end.status === 'finished' ? 0 : 1);
