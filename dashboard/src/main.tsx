import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, type Session, whenSignedOut } from './api.js';
import { Conflicts } from './conflicts.js';
import { Devices } from './devices.js';
import { Events } from './events.js';
import { Files } from './files.js';
import { Groups } from './groups.js';
import { useHubState } from './hub-state.js';
import { Overview } from './overview.js';
import { Pairing } from './pairing.js';
import { Records } from './records.js';
import { Link, usePath } from './router.js';
import { Settings } from './settings.js';
import { SignIn, takeLinkSecret } from './sign-in.js';

const PAGES = [
  { href: '/', title: 'Overview' },
  { href: '/devices', title: 'Devices' },
  { href: '/conflicts', title: 'Conflicts' },
  { href: '/records', title: 'Records' },
  { href: '/files', title: 'Files' },
  { href: '/pairing', title: 'Pairing' },
  { href: '/groups', title: 'Groups' },
  { href: '/events', title: 'Events' },
  { href: '/settings', title: 'Settings' },
];

/** The signed-in dashboard: navigation, the live indicator, the current page. */
function Dashboard({ onSignOut }: { onSignOut: () => void }) {
  const [state, refresh] = useHubState();
  const path = usePath();
  const page = PAGES.find((p) => p.href === path) ?? PAGES[0];

  // A new page: its title for the tab, and focus on its heading for keyboard and screen-reader users.
  useEffect(() => {
    document.title = `${page?.title ?? ''} · Trosyn Sync`;
    document.querySelector<HTMLElement>('main h1')?.focus();
  }, [page]);

  const signOut = async () => {
    await api('DELETE', '/session').catch(() => undefined);
    onSignOut();
  };

  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <span class="brand">Trosyn Sync{state.status ? ` · ${state.status.name}` : ''}</span>
        <nav aria-label="Pages">
          <ul>
            {PAGES.map((p) => (
              <li key={p.href}>
                <Link href={p.href} current={p === page}>
                  {p.title}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <span role="status" class={`live live-${state.live}`}>
          {state.live === 'live' ? 'Live' : state.live === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
        </span>
        <button type="button" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <main id="main">
        {state.loadError && (
          <p role="alert" class="error">
            Could not load the hub's state: {state.loadError}
          </p>
        )}
        {page?.href === '/devices' ? (
          <Devices state={state} refresh={refresh} />
        ) : page?.href === '/conflicts' ? (
          <Conflicts state={state} />
        ) : page?.href === '/records' ? (
          <Records state={state} />
        ) : page?.href === '/files' ? (
          <Files state={state} />
        ) : page?.href === '/pairing' ? (
          <Pairing state={state} refresh={refresh} />
        ) : page?.href === '/groups' ? (
          <Groups state={state} refresh={refresh} />
        ) : page?.href === '/events' ? (
          <Events state={state} />
        ) : page?.href === '/settings' ? (
          <Settings state={state} />
        ) : (
          <Overview state={state} />
        )}
      </main>
    </>
  );
}

type Gate =
  | { kind: 'checking' }
  | { kind: 'signed-out'; linkSecret?: string }
  | { kind: 'signed-in'; session: Session };

/** Signed out, the page is the sign-in form and nothing else; signed in, the dashboard. */
function App() {
  const [gate, setGate] = useState<Gate>(() => {
    const linkSecret = takeLinkSecret();
    return linkSecret ? { kind: 'signed-out', linkSecret } : { kind: 'checking' };
  });

  const signedOut = useCallback(() => setGate({ kind: 'signed-out' }), []);
  const signedIn = useCallback((session: Session) => setGate({ kind: 'signed-in', session }), []);
  useEffect(() => whenSignedOut(signedOut), [signedOut]);

  // A link pasted into a tab already open here changes only the fragment: no page load.
  useEffect(() => {
    const onHash = () => {
      const linkSecret = takeLinkSecret();
      if (linkSecret) setGate({ kind: 'signed-out', linkSecret });
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    if (gate.kind !== 'checking') return;
    api<Session>('GET', '/session').then(signedIn, signedOut);
  }, [gate.kind, signedIn, signedOut]);

  if (gate.kind === 'checking') return <p role="status">Loading…</p>;
  if (gate.kind === 'signed-out')
    return (
      <SignIn
        key={gate.linkSecret ?? 'form'}
        {...(gate.linkSecret && { linkSecret: gate.linkSecret })}
        onSignedIn={signedIn}
      />
    );
  return <Dashboard onSignOut={signedOut} />;
}

render(<App />, document.getElementById('app') as HTMLElement);
