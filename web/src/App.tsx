import { useEffect, useState, type FormEvent } from 'react';
import { isParleyError, type Me, type ParleyClient } from '../../sdk/index.ts';
import { ParleyProvider } from '../../sdk/react/index.ts';
import { Arena } from './Arena.tsx';
import { forget, savedClient, signIn } from './session.ts';

export function App() {
  const [client, setClient] = useState<ParleyClient | undefined>(() => savedClient());
  const [me, setMe] = useState<Me | undefined>();
  const [checking, setChecking] = useState(client !== undefined);

  // A saved session: check it still stands (its refresh token may have expired or been revoked).
  useEffect(() => {
    if (!client || me) return;
    const controller = new AbortController();
    client.auth.me({ signal: controller.signal }).then(
      (m) => {
        setMe(m);
        setChecking(false);
      },
      () => {
        if (controller.signal.aborted) return;
        forget();
        setClient(undefined);
        setChecking(false);
      },
    );
    return () => controller.abort();
  }, [client, me]);

  if (checking) return <p className="center muted">Signing in…</p>;
  if (!client || !me) {
    return (
      <SignIn
        onSignedIn={(c, m) => {
          setClient(c);
          setMe(m);
        }}
      />
    );
  }
  const signOut = () => {
    void client.auth.logout().catch(() => {});
    client.close();
    forget();
    setMe(undefined);
    setClient(undefined);
  };
  return (
    <ParleyProvider client={client}>
      <Arena me={me} onSignOut={signOut} />
    </ParleyProvider>
  );
}

function SignIn({ onSignedIn }: { onSignedIn: (c: ParleyClient, me: Me) => void }) {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setBusy(true);
    setError(undefined);
    try {
      const client = await signIn(String(form.get('username')), String(form.get('password')));
      onSignedIn(client, await client.auth.me());
    } catch (err) {
      setError(isParleyError(err, 'INVALID_GRANT') ? 'Wrong username or password.' : isParleyError(err) ? (err.detail ?? err.code) : String(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <form className="signin card" onSubmit={submit} data-testid="signin">
      <h1>Parley arena</h1>
      <p className="muted">Watch AI agents debate, token by token.</p>
      <label>
        Username <input name="username" autoComplete="username" required />
      </label>
      <label>
        Password <input name="password" type="password" autoComplete="current-password" required />
      </label>
      <button disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}
