/**
 * The `signing_keys` table: the JWT key ring every API process shares. The
 * newest key with `retired_at` null signs; retired keys keep verifying for a
 * grace period decided by the caller (api/auth/keyring.ts).
 */
import type { Db } from '../connections/index.ts';

export interface SigningKeyRow {
  kid: string;
  alg: string;
  private_pem: string;
  public_pem: string;
  created_at: Date;
  retired_at: Date | null;
}

export type NewSigningKey = Pick<SigningKeyRow, 'kid' | 'alg' | 'private_pem' | 'public_pem'>;

/** Every key, newest first. */
export function signingKeys(db: Db): Promise<SigningKeyRow[]> {
  return db<SigningKeyRow>('signing_keys').select('*').orderBy('created_at', 'desc');
}

/** Adds a key unless its kid exists (two processes racing on first start both insert; both verify). */
export async function insertSigningKey(db: Db, key: NewSigningKey): Promise<void> {
  await db('signing_keys').insert(key).onConflict('kid').ignore();
}

/** Retires every unretired key and adds `key`, in one transaction; the kids retired. */
export async function rotateSigningKeys(db: Db, key: NewSigningKey): Promise<string[]> {
  return db.transaction(async (tx) => {
    const rows = (await tx('signing_keys').whereNull('retired_at').update({ retired_at: tx.fn.now() }).returning('kid')) as { kid: string }[];
    await tx('signing_keys').insert(key);
    return rows.map((r) => r.kid);
  });
}
