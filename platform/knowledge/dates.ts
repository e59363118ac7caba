/**
 * Times as sources write them: ISO 8601 (`2023-05-08`, `2023-05-08T13:56:00Z`,
 * with an offset or without) and free text (`1:56 pm on 8 May, 2023`,
 * `May 8th, 2023 at 10:15`, `8 May 2023`). The verbatim string is always
 * kept; the instant is given when the text pins one down. A time without a
 * zone is read as UTC: the source said nothing better.
 */
import type { ParsedTime } from '../../shared/index.ts';

const monthNames = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const month = String.raw`(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?`;
const clock = String.raw`(?:\d{1,2}(?::\d{2}){0,2}\s*(?:[ap]\.?m\.?)|\d{1,2}:\d{2}(?::\d{2})?)`;
const dayMonthYear = String.raw`\d{1,2}(?:st|nd|rd|th)?\s+${month},?\s+\d{4}`;
const monthDayYear = String.raw`${month}\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}`;
const calendar = String.raw`(?:${dayMonthYear}|${monthDayYear})`;
const iso = String.raw`\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?`;
const freeText = String.raw`(?:${clock}\s*(?:on\s+|,\s*)?${calendar}|${calendar}(?:\s*(?:at|,)?\s*${clock})?)`;

/** Every date or time in a text, leftmost first, longest at a position. */
const anyTime = new RegExp(String.raw`(?<![\w:-])(?:${iso}|${freeText})(?![\w:])`, 'gi');
const wholeIso = new RegExp(`^${iso}$`);

export interface FoundTime {
  start: number;
  end: number;
  time: ParsedTime;
}

export function findTimes(text: string): FoundTime[] {
  const out: FoundTime[] = [];
  for (const m of text.matchAll(anyTime)) out.push({ start: m.index, end: m.index + m[0].length, time: parseTime(m[0]) });
  return out;
}

/** Parses one time string; `iso: null` when it cannot be read (the verbatim string is kept either way). */
export function parseTime(verbatim: string): ParsedTime {
  const s = verbatim.trim();
  const none: ParsedTime = { verbatim, iso: null, precision: null };
  if (wholeIso.test(s)) {
    const parsed = parseIso(s);
    return parsed ? { ...parsed, verbatim } : none;
  }
  const date = new RegExp(calendar, 'i').exec(s);
  if (!date) return none;
  const ymd = calendarParts(date[0]);
  if (!ymd) return none;
  const rest = s.slice(0, date.index) + ' ' + s.slice(date.index + date[0].length);
  const t = new RegExp(clock, 'i').exec(rest);
  let h = 0;
  let min = 0;
  let sec = 0;
  let precision: ParsedTime['precision'] = 'day';
  if (t) {
    const parts = /^(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?\s*([ap])?/i.exec(t[0].trim())!;
    h = Number(parts[1]);
    min = Number(parts[2] ?? 0);
    sec = Number(parts[3] ?? 0);
    const half = parts[4]?.toLowerCase();
    if (half) {
      if (h < 1 || h > 12) return none;
      h = (h % 12) + (half === 'p' ? 12 : 0);
    }
    if (h > 23 || min > 59 || sec > 59) return none;
    precision = parts[3] ? 'second' : 'minute';
  }
  const instant = isoOf(utc(ymd.y, ymd.m, ymd.d, h, min, sec));
  return instant ? { verbatim, iso: instant, precision } : none;
}

/**
 * Milliseconds of a UTC moment, for any year: `Date.UTC` reads years 0-99 as 1900-1999, so
 * "8 May 0023" would have become 1923.
 */
function utc(y: number, mo: number, d: number, h = 0, min = 0, sec = 0, ms = 0): number {
  const t = new Date(Date.UTC(2000, mo, d, h, min, sec, ms));
  t.setUTCFullYear(y, mo, d);
  return t.getTime();
}

/**
 * The instant in ISO form, or null outside the years 0001-9999 in UTC: items carry it as a date-time of
 * four-digit years, and one offset past 9999-12-31 ("+010000-…") made every later read of the owner's
 * knowledge fail. The verbatim text is kept either way.
 */
function isoOf(ms: number): string | null {
  if (!Number.isFinite(ms)) return null;
  const y = new Date(ms).getUTCFullYear();
  return y >= 1 && y <= 9999 ? new Date(ms).toISOString() : null;
}

function calendarParts(text: string): { y: number; m: number; d: number } | null {
  const dm = /^(\d{1,2})(?:st|nd|rd|th)?\s+([a-z]+)\.?,?\s+(\d{4})$/i.exec(text);
  const md = /^([a-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})$/i.exec(text);
  const [d, mName, y] = dm ? [dm[1], dm[2], dm[3]] : md ? [md[2], md[1], md[3]] : [];
  if (!d || !mName || !y) return null;
  const m = monthNames.indexOf(mName.slice(0, 3).toLowerCase());
  return validDay(Number(y), m, Number(d)) ? { y: Number(y), m, d: Number(d) } : null;
}

function validDay(y: number, m: number, d: number): boolean {
  if (m < 0 || d < 1) return false;
  return d <= new Date(utc(y, m + 1, 0)).getUTCDate();
}

function parseIso(s: string): ParsedTime | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.exec(s)!;
  const [y, mo, d] = [Number(m[1]), Number(m[2]) - 1, Number(m[3])];
  if (!validDay(y, mo, d)) return null;
  if (m[4] === undefined) {
    const day = isoOf(utc(y, mo, d));
    return day ? { verbatim: s, iso: day, precision: 'day' } : null;
  }
  const [h, min, sec] = [Number(m[4]), Number(m[5]), Number(m[6] ?? 0)];
  if (h > 23 || min > 59 || sec > 59) return null;
  let ms = utc(y, mo, d, h, min, sec, m[7] ? Math.round(Number(m[7]) * 1000) : 0);
  const zone = m[8];
  if (zone && zone !== 'Z') {
    const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
    ms -= (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3])) * 60_000;
  }
  const instant = isoOf(ms);
  return instant ? { verbatim: s, iso: instant, precision: m[6] ? 'second' : 'minute' } : null;
}
