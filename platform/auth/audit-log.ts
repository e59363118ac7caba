/**
 * The `audit_events` table: append-only (a trigger refuses UPDATE, DELETE and
 * TRUNCATE), with one narrow exception for retention, see retention.ts.
 */
import type { AuditEventView, AuditQuery } from '../../shared/index.ts';
import type { Db } from '../connections/index.ts';

export interface AuditRow {
  action: string;
  outcome: 'success' | 'failure' | 'denied';
  actorId: string | null;
  actorName: string | null;
  ip: string | null;
  userAgent: string | null;
  targetType: string | null;
  targetId: string | null;
  details: Record<string, unknown> | null;
}

export function createAuditLog(db: Db) {
  return {
    async insert(e: AuditRow): Promise<void> {
      await db('audit_events').insert({
        action: e.action,
        outcome: e.outcome,
        actor_id: e.actorId,
        actor_name: e.actorName,
        ip: e.ip,
        user_agent: e.userAgent,
        target_type: e.targetType,
        target_id: e.targetId,
        details: e.details ? JSON.stringify(e.details) : null,
      });
    },

    /** Newest first; `nextBefore` pages on (null at the end). */
    async page(query: AuditQuery): Promise<{ items: AuditEventView[]; nextBefore: number | null }> {
      const q = db('audit_events')
        .select('*')
        .orderBy('id', 'desc')
        .limit(query.limit + 1);
      if (query.action) q.where('action', query.action);
      if (query.actorId) q.where('actor_id', query.actorId);
      if (query.outcome) q.where('outcome', query.outcome);
      if (query.since) q.where('at', '>=', query.since);
      if (query.until) q.where('at', '<', query.until);
      if (query.before) q.where('id', '<', query.before);
      const rows = await q;
      const page = rows.slice(0, query.limit);
      return {
        items: page.map((r) => ({
          id: r.id,
          at: (r.at as Date).toISOString(),
          action: r.action,
          outcome: r.outcome,
          actorId: r.actor_id,
          actorName: r.actor_name,
          ip: r.ip,
          userAgent: r.user_agent,
          targetType: r.target_type,
          targetId: r.target_id,
          details: r.details,
        })),
        nextBefore: rows.length > query.limit ? (page.at(-1)?.id as number) : null,
      };
    },
  };
}

export type AuditLog = ReturnType<typeof createAuditLog>;
