/**
 * Page cursors of time-ordered lists (jobs by queue time, rooms by creation):
 * base64url of `<ISO instant>|<uuid>`, the last row of the page. A cursor is
 * read back only in exactly the form this API writes, so nothing a client
 * makes up reaches Postgres (a year Postgres lacks, or a 36-character string
 * that is not a UUID, answered 500).
 */
import { AppError } from './errors.ts';

/** Microseconds since 2026-12-08 (Postgres keeps them; rows of one millisecond were skipped); milliseconds before, still read. */
const instant = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3})(\d{3})?Z$/;
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** `at`: the row's instant as ISO 8601 UTC with microseconds, as the stores select it (`microsecondInstant`). */
export function encodeCursor(at: string, id: string): string {
  return Buffer.from(`${at}|${id}`).toString('base64url');
}

/** The cursor's instant and id; VALIDATION_FAILED (400) for anything this API did not give out. */
export function decodeCursor(cursor: string): { at: string; id: string } {
  const [at, id, ...rest] = Buffer.from(cursor, 'base64url').toString().split('|');
  const m = at ? instant.exec(at) : null;
  const ms = m ? Date.parse(`${m[1]}Z`) : Number.NaN;
  if (!at || !id || rest.length || Number.isNaN(ms) || new Date(ms).toISOString() !== `${m![1]}Z` || at < '0001' || !uuid.test(id)) {
    throw new AppError('VALIDATION_FAILED', {
      detail: 'The cursor is not one this API gave out: pass `nextCursor` from the previous page as it is',
      errors: [{ path: 'query.cursor', message: 'not a cursor from this API' }],
    });
  }
  return { at, id };
}
