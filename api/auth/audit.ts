/**
 * The append-only audit log. One row per security-relevant action, with the
 * actor, IP, user agent, target and outcome. Writing an audit row never
 * fails the action it records: a failed write is logged loudly instead.
 */
import type { Db } from '../../platform/connections/index.ts';
import type { Logger } from '../../platform/observability/index.ts';

export const AuditAction = [
  'auth.login',
  'auth.refresh',
  'auth.refresh_reuse',
  'auth.logout',
  'auth.session_revoked',
  'user.created',
  'user.role_changed',
  'user.disabled',
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
  return async (e) => {
    onWrite?.(e);
    try {
      await db('audit_events').insert({
        action: e.action,
        outcome: e.outcome,
        actor_id: e.actorId ?? null,
        actor_name: e.actorName ?? null,
        ip: e.ip ?? null,
        user_agent: e.userAgent?.slice(0, 512) ?? null,
        target_type: e.targetType ?? null,
        target_id: e.targetId ?? null,
        details: e.details ? JSON.stringify(e.details) : null,
      });
    } catch (err) {
      log.error({ err, audit: e }, 'AUDIT WRITE FAILED');
    }
  };
}
