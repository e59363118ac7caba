/**
 * The append-only audit log. One row per security-relevant action, with the
 * actor, IP, user agent, target and outcome. Writing an audit row never
 * fails the action it records: a failed write is logged loudly instead.
 */
import { createAuditLog } from '../../platform/auth/index.ts';
import type { Db } from '../../platform/connections/index.ts';
import type { Logger } from '../../platform/observability/index.ts';

export const AuditAction = [
  'auth.login',
  'auth.refresh',
  'auth.refresh_reuse',
  'auth.logout',
  'auth.session_revoked',
  /** 401, 403 and 429 answers on the auth and admin routes and the queue board, aggregated (api/auth/denials.ts). */
  'auth.denied',
  'user.created',
  'user.role_changed',
  'user.disabled',
  'user.password_changed',
  'user.password_reset',
  /** PARLEY_BOOTSTRAP_ADMIN_* promoted an existing account (its sessions and keys revoked). */
  'user.bootstrap_promoted',
  'apikey.created',
  'apikey.revoked',
  'job.cancel_other',
  'job.retry_other',
  'model.pull',
  'model.create',
  'model.copy',
  'model.delete',
  'model.load',
  'model.unload',
  'admin.action',
  /** A write through the queue board (retry, clean, promote, pause, …). */
  'queues.board_action',
  'keys.rotated',
] as const;
export type AuditAction = (typeof AuditAction)[number];

export interface AuditEvent {
  action: AuditAction;
  outcome: 'success' | 'failure' | 'denied';
  actorId?: string | null;
  actorName?: string | null;
  ip?: string;
  userAgent?: string;
  targetType?: string;
  targetId?: string;
  details?: Record<string, unknown>;
}

export type Audit = (e: AuditEvent) => Promise<void>;

export function createAudit(db: Db, log: Logger, onWrite?: (e: AuditEvent) => void): Audit {
  const auditLog = createAuditLog(db);
  return async (e) => {
    onWrite?.(e);
    try {
      await auditLog.insert({
        action: e.action,
        outcome: e.outcome,
        actorId: e.actorId ?? null,
        actorName: e.actorName ?? null,
        ip: e.ip ?? null,
        userAgent: e.userAgent?.slice(0, 512) ?? null,
        targetType: e.targetType ?? null,
        targetId: e.targetId ?? null,
        details: e.details ?? null,
      });
    } catch (err) {
      log.error({ err, audit: e }, 'AUDIT WRITE FAILED');
    }
  };
}

/** Where a request came from, as the audit log records it. */
export interface RequestMeta {
  ip?: string;
  userAgent?: string;
}

/** The actor and origin members of an audit event. */
export function auditedBy(
  actor: { userId: string; username: string } | undefined,
  meta: RequestMeta = {},
): Pick<AuditEvent, 'actorId' | 'actorName' | 'ip' | 'userAgent'> {
  return { actorId: actor?.userId ?? null, actorName: actor?.username ?? null, ip: meta.ip, userAgent: meta.userAgent };
}
