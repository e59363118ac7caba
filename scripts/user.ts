/**
 * `npm run user -- create <username> --role <admin|operator|member|viewer>`
 * `npm run user -- reset-password <username>`
 *
 * Creates a user in DATABASE_URL, or sets an existing user's password and
 * revokes every session of the account (a reset: for a forgotten password,
 * or one that leaked). The password never comes from argv (it would sit in
 * shell history and `ps`): it is read from the environment variable
 * PARLEY_NEW_USER_PASSWORD, else from stdin (one line; hidden when stdin is
 * a terminal). Both are audited (`user.created`, `user.password_reset`) with
 * the user agent `cli`.
 *
 *   PARLEY_NEW_USER_PASSWORD='…' npm run user -- create alice --role member
 *   printf '%s\n' "$PW" | npm run user -- create bob --role operator
 *   printf '%s\n' "$PW" | npm run user -- reset-password alice
 *
 * Exit codes: 0 done, 1 refused (invalid, taken, no such user), 2 usage.
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { createAudit } from '../api/auth/audit.ts';
import { Role } from '../api/auth/permissions.ts';
import { createAuth } from '../api/auth/index.ts';
import { AppError } from '../api/domain/errors.ts';
import { loadConfig } from '../platform/config.ts';
import { connectDb } from '../platform/connections/index.ts';
import { createLogger } from '../platform/observability/index.ts';
import { connectRedis } from '../platform/connections/index.ts';

const usage =
  'usage: npm run user -- create <username> --role <admin|operator|member|viewer>\n       npm run user -- reset-password <username>\n       password from PARLEY_NEW_USER_PASSWORD or stdin, never from arguments';

function fail(message: string, code: number): never {
  console.error(message);
  process.exit(code);
}

async function readPassword(): Promise<string> {
  // The CLI's own input, not product configuration: read here rather than through loadConfig.
  const fromEnv = process.env.PARLEY_NEW_USER_PASSWORD;
  if (fromEnv) return fromEnv;
  if (process.stdin.isTTY) return readHidden('Password (not echoed): ');
  // Piped: the first line, without its line ending.
  for await (const line of createInterface({ input: process.stdin, terminal: false })) return line;
  return '';
}

/** Reads one line from the terminal in raw mode, so the password is never echoed. */
function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  let value = '';
  return new Promise((resolve) => {
    const done = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') {
          stdin.setRawMode(false);
          process.exit(130);
        }
        value = ch === '\u007f' || ch === '\b' ? value.slice(0, -1) : value + ch;
      }
    };
    stdin.on('data', onData);
  });
}

const { positionals, values } = (() => {
  try {
    return parseArgs({ allowPositionals: true, options: { role: { type: 'string' }, help: { type: 'boolean', short: 'h' }, password: { type: 'string' } } });
  } catch (err) {
    return fail(`${(err as Error).message}\n${usage}`, 2);
  }
})();
if (values.help) fail(usage, 0);
if (values.password !== undefined)
  fail('refusing --password: arguments leak into shell history and the process list; use PARLEY_NEW_USER_PASSWORD or stdin', 2);
const [command, username, ...rest] = positionals;
if ((command !== 'create' && command !== 'reset-password') || !username || rest.length) fail(usage, 2);
if (command === 'reset-password' && values.role !== undefined) fail(`reset-password keeps the role; change it with PATCH /v1/admin/users/:id\n${usage}`, 2);
const role = Role.safeParse(values.role ?? 'member');
if (!role.success) fail(`--role must be one of ${Role.options.join(', ')}\n${usage}`, 2);

const password = await readPassword();
if (!password) fail('no password: set PARLEY_NEW_USER_PASSWORD or pipe it on stdin', 2);

const config = loadConfig();
const log = createLogger('user-cli', config.logLevel === 'info' ? 'warn' : config.logLevel);
const db = connectDb(config.databaseUrl, { pool: 2 });
const redis = connectRedis(config.redisUrl, { name: 'parley-user-cli' });
try {
  const auth = createAuth({ db, redis, config, audit: createAudit(db, log), keyPrefix: config.keyPrefix });
  if (command === 'reset-password') {
    const { user, sessionsRevoked } = await auth.users.resetPassword({ username }, password, { meta: { userAgent: 'cli' } });
    console.log(JSON.stringify({ id: user.id, username: user.username, sessionsRevoked }));
  } else {
    const user = await auth.users.create({ username, password, role: role.data }, { meta: { userAgent: 'cli' } });
    console.log(JSON.stringify({ id: user.id, username: user.username, role: user.role }));
  }
} catch (err) {
  if (err instanceof AppError) {
    const fields = err.errors?.map((e) => `${e.path}: ${e.message}`).join('; ');
    process.exitCode = 1;
    console.error(`${command === 'create' ? 'not created' : 'not reset'}: ${err.detail ?? fields ?? err.code}${err.detail && fields ? ` (${fields})` : ''}`);
  } else {
    throw err;
  }
} finally {
  await db.destroy();
  await redis.quit().catch(() => {});
}
