/**
 * Starts one API process and one worker process with the service env, waits
 * until the API is ready, runs the live demo, then keeps the platform up
 * until Ctrl-C (or exits after the demo with --exit-after-demo).
 *
 * The bootstrap admin comes from PARLEY_BOOTSTRAP_ADMIN_USER / _PASSWORD; if
 * unset, an `admin` account is made with a random password kept in
 * .data/admin.env (git-ignored) so later runs reuse it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const dataDir = process.env.PARLEY_DATA_DIR ?? join(root, '.data');
const port = process.env.PORT ?? '3000';
const exitAfterDemo = process.argv.includes('--exit-after-demo');
const skipDemo = process.argv.includes('--no-demo');

function adminCredentials(): { user: string; password: string } {
  if (process.env.PARLEY_BOOTSTRAP_ADMIN_USER && process.env.PARLEY_BOOTSTRAP_ADMIN_PASSWORD) {
    return { user: process.env.PARLEY_BOOTSTRAP_ADMIN_USER, password: process.env.PARLEY_BOOTSTRAP_ADMIN_PASSWORD };
  }
  const file = join(dataDir, 'admin.env');
  if (existsSync(file)) {
    const vars = Object.fromEntries(
      readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('=', 2) as [string, string]),
    );
    if (vars.PARLEY_BOOTSTRAP_ADMIN_USER && vars.PARLEY_BOOTSTRAP_ADMIN_PASSWORD)
      return { user: vars.PARLEY_BOOTSTRAP_ADMIN_USER, password: vars.PARLEY_BOOTSTRAP_ADMIN_PASSWORD };
  }
  const password = randomBytes(18).toString('base64url');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `PARLEY_BOOTSTRAP_ADMIN_USER=admin\nPARLEY_BOOTSTRAP_ADMIN_PASSWORD=${password}\n`, { mode: 0o600 });
  return { user: 'admin', password };
}

const admin = adminCredentials();
const env = {
  ...process.env,
  PORT: port,
  PARLEY_BOOTSTRAP_ADMIN_USER: admin.user,
  PARLEY_BOOTSTRAP_ADMIN_PASSWORD: admin.password,
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
};
const children: ChildProcess[] = [];

function run(name: string, script: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
  child.on('exit', (code, signal) => {
    if (!shuttingDown) {
      process.stderr.write(`[start] ${name} exited (${code ?? signal}); stopping\n`);
      void shutdown(1);
    }
  });
  children.push(child);
  return child;
}

let shuttingDown = false;
async function shutdown(code: number): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r)))));
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

async function waitReady(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the API at ${url} did not become ready`);
}

const base = `http://127.0.0.1:${port}`;
run('api', 'api/main.ts');
run('workers', 'workers/main.ts');
await waitReady(base);
const passwordSource = process.env.PARLEY_BOOTSTRAP_ADMIN_PASSWORD ? 'PARLEY_BOOTSTRAP_ADMIN_PASSWORD (your environment)' : join(dataDir, 'admin.env');
process.stdout.write(
  [
    '',
    `Parley is up at ${base}`,
    `  arena      ${base}/            sign in as the admin below (or any user), watch rooms live, chat`,
    `  API docs   ${base}/docs        queues  ${base}/admin/queues?token=<access token>        metrics  ${base}/metrics (with the token below)`,
    `  admin      ${admin.user}, password in ${passwordSource}`,
    '  a token    (15-minute access token; the token endpoint allows 5 tries per username a minute)',
    ...(process.env.PARLEY_BOOTSTRAP_ADMIN_PASSWORD ? [] : [`    set -a; . '${join(dataDir, 'admin.env')}'; set +a`]),
    `    TOKEN=$(curl -s ${base}/v1/auth/token -d grant_type=password --data-urlencode username="$PARLEY_BOOTSTRAP_ADMIN_USER" --data-urlencode password="$PARLEY_BOOTSTRAP_ADMIN_PASSWORD" | jq -r .access_token)`,
    `  the demo again: PARLEY_API_URL=${base} PARLEY_BOOTSTRAP_ADMIN_USER=... PARLEY_BOOTSTRAP_ADMIN_PASSWORD=... npm run demo`,
    ...(process.env.PARLEY_BOOTSTRAP_ADMIN_PASSWORD
      ? []
      : [`    (or: set -a; . '${join(dataDir, 'admin.env')}'; set +a; PARLEY_API_URL=${base} npm run demo)`]),
    '',
    '',
  ].join('\n'),
);

if (!skipDemo) {
  const demo = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], { cwd: root, env: { ...env, PARLEY_API_URL: base }, stdio: 'inherit' });
  const code = await new Promise<number>((r) => demo.on('exit', (c) => r(c ?? 1)));
  if (code !== 0) {
    process.stderr.write(`[start] the demo exited with ${code}\n`);
    process.stderr.write(
      `[start] if an admin account existed before, the bootstrap admin was not created: set PARLEY_BOOTSTRAP_ADMIN_USER and PARLEY_BOOTSTRAP_ADMIN_PASSWORD to an admin's credentials\n`,
    );
  }
  if (exitAfterDemo) await shutdown(code);
}
process.stdout.write(`\nThe platform keeps running. Ctrl-C stops the API and workers; \`npm run services -- down\` stops the services.\n`);
