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
import type { Db } from '../../platform/connections/index.ts';

export const ALGORITHM = 'ES256' as const;

export interface KeyRing {
  signing: { kid: string; privatePem: string };
  /** Parsed once per load: parsing a PEM on every verification costs about 0.3 ms of CPU. */
  verifying: Map<string, KeyObject>;
}

export function newKey(): { kid: string; private_pem: string; public_pem: string; alg: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    kid: `k${Date.now().toString(36)}${randomBytes(3).toString('hex')}`,
    alg: ALGORITHM,
    private_pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    public_pem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export async function loadKeyRing(db: Db, opts: { retiredGraceMs: number }): Promise<KeyRing> {
  let rows = await db('signing_keys').select('*').orderBy('created_at', 'desc');
  if (!rows.some((r: { retired_at: Date | null }) => r.retired_at === null)) {
    // First start: make a key. Two processes racing both insert; both keys verify, the newest signs.
    await db('signing_keys').insert(newKey()).onConflict('kid').ignore();
    rows = await db('signing_keys').select('*').orderBy('created_at', 'desc');
  }
  const active = rows.find((r: { retired_at: Date | null }) => r.retired_at === null)!;
  const oldest = Date.now() - opts.retiredGraceMs;
  const live = rows.filter((r: { retired_at: Date | null }) => r.retired_at === null || r.retired_at.getTime() > oldest);
  return {
    signing: { kid: active.kid, privatePem: active.private_pem },
    verifying: new Map(live.map((r: { kid: string; public_pem: string }) => [r.kid, createPublicKey(r.public_pem)])),
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
  const retired = await db.transaction(async (tx) => {
    const rows = (await tx('signing_keys').whereNull('retired_at').update({ retired_at: tx.fn.now() }).returning('kid')) as { kid: string }[];
    await tx('signing_keys').insert(key);
    return rows.map((r) => r.kid);
  });
  return { kid: key.kid, retired };
}
