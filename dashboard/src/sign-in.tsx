import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, type Session } from './api.js';

/** The fragment a sign-in link carries: `#signin=<secret>`. Browsers never send a fragment to a server. */
const LINK = /^#signin=([A-Za-z0-9_-]+)$/;

/** Reads a sign-in link's secret once and removes it from the address bar and history. */
export function takeLinkSecret(): string | undefined {
  const secret = LINK.exec(window.location.hash)?.[1];
  if (secret) window.history.replaceState(null, '', window.location.pathname + window.location.search);
  return secret;
}

function message(err: unknown): string {
  if (err instanceof ApiError && err.code === 'RATE_LIMITED')
    return `Too many wrong attempts. ${err.message}.`;
  if (err instanceof ApiError) return err.message;
  return 'The hub could not be reached. Check that it is running.';
}

/**
 * The only thing a signed-out visitor sees: a form for the admin token. A
 * one-time link (its secret in the fragment) signs in without it.
 */
export function SignIn({
  linkSecret,
  onSignedIn,
}: {
  linkSecret?: string;
  onSignedIn: (s: Session) => void;
}) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(linkSecret !== undefined);
  const input = useRef<HTMLInputElement>(null);
  const signedIn = useRef(onSignedIn);
  signedIn.current = onSignedIn;

  // Posted once: the link works only once.
  useEffect(() => {
    if (linkSecret === undefined) return;
    api<Session>('POST', '/session', { link: linkSecret }).then(signedIn.current, (err: unknown) => {
      setError(
        err instanceof ApiError && err.status === 401
          ? 'This sign-in link was used already or has expired. Sign in with the admin token, or run `trosyn-sync dashboard-link` on the hub for a new link.'
          : message(err),
      );
      setBusy(false);
    });
  }, [linkSecret]);

  useEffect(() => {
    if (!busy) input.current?.focus();
  }, [busy]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      onSignedIn(await api<Session>('POST', '/session', { token: token.trim() }));
    } catch (err) {
      setError(message(err));
      setBusy(false);
    }
  };

  return (
    <main class="sign-in">
      <h1>Sign in to Trosyn Sync</h1>
      {busy && linkSecret !== undefined && !error ? (
        <p role="status">Signing in with the link…</p>
      ) : (
        <form onSubmit={(e) => void submit(e)}>
          <p>
            Open the sign-in link the hub printed, or enter the admin token. A new link:{' '}
            <code>trosyn-sync dashboard-link</code> on the hub.
          </p>
          <label for="admin-token">Admin token</label>
          <input
            id="admin-token"
            ref={input}
            type="password"
            autocomplete="current-password"
            required
            value={token}
            onInput={(e) => setToken((e.target as HTMLInputElement).value)}
            aria-describedby={error ? 'sign-in-error' : undefined}
          />
          <button type="submit" disabled={busy}>
            Sign in
          </button>
        </form>
      )}
      {error && (
        <p id="sign-in-error" role="alert" class="error">
          {error}
        </p>
      )}
    </main>
  );
}
