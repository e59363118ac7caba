/**
 * JWT signing keys. ES256 only: the allow-list has no HMAC algorithm, so a
 * token "signed" with HS256 using our public key as the secret is refused.
 * Keys live in Postgres (`signing_keys`), shared by every API process; the
 * newest unretired key signs. Verification picks the key by the token's
 * `kid`: unretired keys, and retired ones for `retiredGraceMs` after their
 * retirement (long enough for every token they signed to expire), so a
 * rotation never logs anyone out and a retired key stops mattering soon after.
 */
import { generateKeyPairSync, randomBytes, createPublicKey, type KeyObject } from 'node:crypto';
import { insertSigningKey, rotateSigningKeys, signingKeys, type NewSigningKey } from '../../platform/auth/index.ts';
import type { Db } from '../../platform/connections/index.ts';

export const ALGORITHM = 'ES256' as const;

export interface KeyRing {
  signing: { kid: string; privatePem: string };
  /** Parsed once per load: parsing a PEM on every verification costs about 0.3 ms of CPU. */
  verifying: Map<string, KeyObject>;
}

export function newKey(): NewSigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    kid: `k${Date.now().toString(36)}${randomBytes(3).toString('hex')}`,
    alg: ALGORITHM,
    private_pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    public_pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export async function loadKeyRing(db: Db, opts: { retiredGraceMs: number }): Promise<KeyRing> {
  let rows = await signingKeys(db);
  if (!rows.some((r) => r.retired_at === null)) {
    // First start: make a key. Two processes racing both insert; both keys verify, the newest signs.
    await insertSigningKey(db, newKey());
    rows = await signingKeys(db);
  }
  const active = rows.find((r) => r.retired_at === null)!;
  const oldest = Date.now() - opts.retiredGraceMs;
  const live = rows.filter((r) => r.retired_at === null || r.retired_at.getTime() > oldest);
  return {
    signing: { kid: active.kid, privatePem: active.private_pem },
    verifying: new Map(live.map((r) => [r.kid, createPublicKey(r.public_pem)])),
  };
}

/** How long a process trusts its copy of the key ring. */
export const KEYRING_TTL_MS = 60_000;

/**
 * How long a retired key keeps verifying: while tokens it signed can still be alive. Tokens live
 * the access TTL (plus a minute of clock slack), and another process may go on signing with the
 * key for up to KEYRING_TTL_MS after the rotation.
 */
export function keyVerificationGraceMs(accessTtlSeconds: number): number {
  return (accessTtlSeconds + 60) * 1000 + KEYRING_TTL_MS;
}

/** Adds a new signing key and retires the old ones (they keep verifying), in one transaction: the new kid and the kids it retired. */
export async function rotateSigningKey(db: Db): Promise<{ kid: string; retired: string[] }> {
  const key = newKey();
  return { kid: key.kid, retired: await rotateSigningKeys(db, key) };
}

/** Reloads on an unknown kid are at most this frequent, so forged kids cannot hammer Postgres. */
const KEYRING_MISS_RELOAD_MS = 5_000;

/**
 * This process's copy of the ring: reread every KEYRING_TTL_MS, and on a kid it does not know (at
 * most every KEYRING_MISS_RELOAD_MS), so a rotation made by another process reaches this one. A
 * failed load is forgotten, so the next call tries again.
 */
export function createKeyRingCache(db: Db, accessTtlSeconds: number) {
  const retiredGraceMs = keyVerificationGraceMs(accessTtlSeconds);
  let ring: { at: number; value: Promise<KeyRing> } | undefined;
  let lastMissReload = 0;
  const current = (maxAgeMs = KEYRING_TTL_MS): Promise<KeyRing> => {
    if (!ring || Date.now() - ring.at >= maxAgeMs) {
      const value = loadKeyRing(db, { retiredGraceMs });
      const entry = { at: Date.now(), value };
      ring = entry;
      value.catch(() => {
        if (ring === entry) ring = undefined;
      });
    }
    return ring.value;
  };
  return {
    /** The ring to sign with. */
    current,
    /** The public key for `kid`, rereading the ring once if it is unknown (rate-limited). */
    async verifyingKey(kid: string): Promise<KeyObject | undefined> {
      const key = (await current()).verifying.get(kid);
      if (key || Date.now() - lastMissReload <= KEYRING_MISS_RELOAD_MS) return key;
      lastMissReload = Date.now();
      return (await current(0)).verifying.get(kid);
    },
  };
}

export type KeyRingCache = ReturnType<typeof createKeyRingCache>;
