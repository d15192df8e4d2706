import type { ComponentChildren } from 'preact';
import { useLayoutEffect, useState } from 'preact/hooks';

/** The app's pages are paths (`/`, `/devices`): reloadable and linkable; the hub serves index.html for each. */
export function usePath(): string {
  const [path, setPath] = useState(window.location.pathname);
  // Listening from the first render on, not after the first paint: a link clicked
  // in between changed the address while nothing listened, and the page stayed.
  useLayoutEffect(() => {
    const update = () => setPath(window.location.pathname);
    window.addEventListener('popstate', update);
    window.addEventListener('trosyn:navigate', update);
    update();
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener('trosyn:navigate', update);
    };
  }, []);
  return path;
}

export function navigate(href: string): void {
  window.history.pushState(null, '', href);
  window.dispatchEvent(new Event('trosyn:navigate'));
}

/** A real link (middle-click, copy, open in a new tab all work) that navigates in place. */
export function Link({
  href,
  children,
  current,
}: {
  href: string;
  children: ComponentChildren;
  current?: boolean;
}) {
  return (
    <a
      href={href}
      aria-current={current ? 'page' : undefined}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(href);
      }}
    >
      {children}
    </a>
  );
}
