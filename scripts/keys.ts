/**
 * `npm run keys -- list | rotate`: the access-token signing keys in DATABASE_URL.
 *
 *   list    one JSON line per key, newest first: kid, alg, createdAt,
 *           retiredAt, and whether it signs (`signing`) or still verifies
 *           (`verifying`: unretired, or retired within the grace period).
 *   rotate  retires the signing key and adds a new one, in one transaction
 *           (api/auth/keyring.ts `rotateSigningKey`); prints `{ "kid": …, "retired": […] }` and
 *           audits `keys.rotated` (user agent `cli`). Nobody is logged out:
 *           tokens of the old key verify until they expire. Every API process
 *           signs with the new key within a minute (its ring's reload
 *           period) and accepts its tokens at once (an unknown kid rereads
 *           the ring).
 *
 * Private keys never leave the database through this command.
 * Exit codes: 0 done, 2 usage.
 */
import { parseArgs } from 'node:util';
import { createAudit } from '../api/auth/audit.ts';
import { keyVerificationGraceMs, rotateSigningKey } from '../api/auth/keyring.ts';
import { loadConfig } from '../platform/config.ts';
import { signingKeys } from '../platform/auth/index.ts';
import { connectDb } from '../platform/connections/index.ts';
import { createLogger } from '../platform/observability/index.ts';

const usage = 'usage: npm run keys -- list | rotate';
const { positionals, values } = (() => {
  try {
    return parseArgs({ allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    console.error(`${(err as Error).message}\n${usage}`);
    process.exit(2);
  }
})();
const [command, ...rest] = positionals;
if (values.help || !command || rest.length || !['list', 'rotate'].includes(command)) {
  console.error(usage);
  process.exit(values.help ? 0 : 2);
}

const config = loadConfig();
const log = createLogger('keys-cli', config.logLevel === 'info' ? 'warn' : config.logLevel);
const db = connectDb(config.databaseUrl, { pool: 2 });
try {
  if (command === 'rotate') {
    const { kid, retired } = await rotateSigningKey(db);
    await createAudit(
      db,
      log,
    )({ action: 'keys.rotated', outcome: 'success', actorId: null, userAgent: 'cli', targetType: 'signing_key', targetId: kid, details: { retired } });
    console.log(JSON.stringify({ kid, retired }));
  } else {
    const grace = keyVerificationGraceMs(config.auth.accessTtlSeconds);
    for (const r of await signingKeys(db)) {
      const retiredAt = r.retired_at;
      console.log(
        JSON.stringify({
          kid: r.kid,
          alg: r.alg,
          createdAt: r.created_at.toISOString(),
          retiredAt: retiredAt?.toISOString() ?? null,
          signing: retiredAt === null,
          verifying: retiredAt === null || retiredAt.getTime() > Date.now() - grace,
        }),
      );
    }
  }
} finally {
  await db.destroy();
}
