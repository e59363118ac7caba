/**
 * Signing in, and staying signed in across reloads: the session (access and
 * refresh token) lives in sessionStorage, so it survives a reload of this tab
 * but not the tab itself. Refresh tokens rotate; every new one is saved.
 */
import { createClient, type ParleyClient, type Session } from '../../sdk/index.ts';

const KEY = 'parley.session';

function save(s: Session | null): void {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
}

export function savedClient(): ParleyClient | undefined {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return undefined;
  try {
    const s = JSON.parse(raw) as Session;
    return createClient({
      baseUrl: location.origin,
      auth: { refreshToken: s.refreshToken, accessToken: s.accessToken, expiresAt: s.expiresAt, onSession: save },
    });
  } catch {
    save(null);
    return undefined;
  }
}

export async function signIn(username: string, password: string): Promise<ParleyClient> {
  const client = createClient({ baseUrl: location.origin, auth: { username, password, onSession: save } });
  await client.auth.me();
  return client;
}

export function forget(): void {
  save(null);
}
