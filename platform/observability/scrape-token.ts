/**
 * The static bearer token a Prometheus scraper presents (PARLEY_METRICS_TOKEN).
 * Compared in constant time over SHA-256 digests, so neither the length nor a
 * prefix of the token leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** True when `authorization` is exactly `Bearer <token>`. */
export function isScrapeToken(authorization: string | undefined, token: string | undefined): boolean {
  if (!token || !authorization) return false;
  const m = /^Bearer\s+(\S+)$/i.exec(authorization);
  return m !== null && timingSafeEqual(digest(m[1]!), digest(token));
}
