/** Path parameters and small bodies that several route groups share. */
import { z } from 'zod';
import { ModelName } from './model-name.ts';

/** `/…/:id` of a job, room, agent, session, key or user. */
export const IdParams = z.object({ id: z.uuid().toLowerCase() });
/** `/v1/discussions/:id/compare/:otherId`. */
export const CompareParams = z.object({ id: z.uuid().toLowerCase(), otherId: z.uuid().toLowerCase() });
/** `/v1/models/:name`. */
export const ModelNameParams = z.object({ name: ModelName });
/** How many sessions a revoke-all ended. */
export const Revoked = z.object({ revoked: z.number() });

/**
 * A moment as a client gives it: an RFC 3339 date-time with its offset. Read as the same instant in
 * UTC (`…Z`), which every store takes the same way: Postgres refuses offsets beyond ±15:59 that RFC
 * 3339 allows (`+22:22`), and answered 500 when one reached it.
 */
export const Instant = z.iso
  .datetime({ offset: true })
  .refine((s) => !Number.isNaN(Date.parse(s)), 'not a date that exists')
  // Postgres has no year 0, and an offset can carry 9999-12-31 into year 10000 in UTC: both reached it as 500s.
  .refine((s) => inStorableYears(Date.parse(s)), 'must fall between the years 0001 and 9999 in UTC')
  .transform((s) => new Date(s).toISOString());

/** Whether an instant (ms since the epoch) lies in the years 0001-9999 UTC, which every store and ISO 8601's basic form hold. */
export function inStorableYears(ms: number): boolean {
  if (!Number.isFinite(ms)) return false;
  const y = new Date(ms).getUTCFullYear();
  return y >= 1 && y <= 9999;
}

/**
 * No NUL (Postgres cannot store it; unpaired surrogates are refused at the edge as well), and at least
 * one character that is neither whitespace nor zero-width (U+200B-U+200D zero-width space and
 * (non-)joiner, U+2060 word joiner, U+FEFF): text made only of those shows nothing, so it is blank too.
 * Kept to syntax every regex dialect reads alike, so the OpenAPI document's pattern means what this means.
 */
const nonBlankText = /^[^\u0000]*[^\s\u200B-\u200D\u2060\uFEFF\u0000][^\u0000]*$/;

/**
 * Text that must say something: at most `max` characters as sent, not only whitespace, kept trimmed.
 * The checks run on the text as sent, so the schema in the OpenAPI document (maxLength, a pattern for
 * one non-blank character) says exactly what is accepted.
 */
export const nonBlank = (max: number) => z.string().min(1).max(max).regex(nonBlankText, 'must not be blank').trim();
