/**
 * Retention of the auth records that grow with use rather than with users:
 *
 * - sessions that expired or were revoked more than `sessionDays` ago (their
 *   refresh tokens go with them, by the foreign key's cascade);
 * - failed sign-ins in the audit log (`auth.login` and `auth.refresh` with
 *   outcome `failure`) older than `failedLoginDays`.
 *
 * The audit log is append-only. Its trigger lets exactly one kind of row be
 * deleted, failed sign-ins, and only inside `purge_failed_logins()` (a
 * SECURITY DEFINER function, migration 20261127000006), so the API's role
 * needs no DELETE right on `audit_events`.
 *
 * Each call deletes at most `batch` rows of each kind, so a round never holds
 * long locks; the periodic job runs again soon enough to catch up.
 */
import type { Db } from '../connections/index.ts';

export interface RetentionPolicy {
  sessionDays: number;
  failedLoginDays: number;
  /** @defaultValue 5000 rows per kind per call */
  batch?: number;
}

const DAY_MS = 86_400_000;

export async function purgeAuthRecords(db: Db, policy: RetentionPolicy, now = new Date()): Promise<{ sessions: number; failedLogins: number }> {
  const batch = policy.batch ?? 5000;
  const sessionCutoff = new Date(now.getTime() - policy.sessionDays * DAY_MS);
  const sessions = await db('sessions')
    .whereIn(
      'id',
      db('sessions')
        .select('id')
        // A session ends at its revocation, or else at its expiry (index sessions_retention).
        .whereRaw('coalesce(revoked_at, expires_at) < ?', [sessionCutoff])
        .limit(batch),
    )
    .delete();
  const loginCutoff = new Date(now.getTime() - policy.failedLoginDays * DAY_MS);
  const { rows } = (await db.raw('select purge_failed_logins(?, ?) as n', [loginCutoff, batch])) as { rows: { n: number }[] };
  return { sessions, failedLogins: rows[0]?.n ?? 0 };
}
