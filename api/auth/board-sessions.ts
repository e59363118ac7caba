/**
 * Cookie sessions of the queue board (api/http/bull-board.ts). A browser
 * cannot attach a Bearer header to a page load, so `?token=<access token>`
 * is exchanged at once for an opaque id that travels in a cookie instead;
 * the token itself is never stored in the browser.
 *
 * Redis: `<prefix>:board:<sha256(id)>` = JSON `{ "sid": <session id>, "uid": <user id> }`,
 * EX = the smaller of the configured lifetime and the access token's remaining life.
 * Every request through the cookie checks that session again (revocation, expiry, account, role),
 * so logging out or disabling the account also ends the board at its next request.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

const keyOf = (prefix: string, id: string) => `${prefix}:board:${createHash('sha256').update(id).digest('hex')}`;

export function createBoardSessions(deps: { redis: Redis; keyPrefix: string; ttlSeconds: number }) {
  return {
    /** A new cookie id for session `sid` of user `uid`, living at most until `notAfter` (epoch ms). */
    async issue(sid: string, uid: string, notAfter: number): Promise<{ id: string; maxAgeSeconds: number }> {
      const maxAgeSeconds = Math.max(1, Math.min(deps.ttlSeconds, Math.floor((notAfter - Date.now()) / 1000)));
      const id = randomBytes(32).toString('base64url');
      await deps.redis.set(keyOf(deps.keyPrefix, id), JSON.stringify({ sid, uid }), 'EX', maxAgeSeconds);
      return { id, maxAgeSeconds };
    },

    async resolve(id: string): Promise<{ sid: string; uid: string } | undefined> {
      if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
      const raw = await deps.redis.get(keyOf(deps.keyPrefix, id));
      return raw ? (JSON.parse(raw) as { sid: string; uid: string }) : undefined;
    },
  };
}

export type BoardSessions = ReturnType<typeof createBoardSessions>;
