import { useEffect, useState } from 'preact/hooks';

/**
 * The query of the page's address (`/conflicts?conflict=3`): which item a page
 * shows, so it can be reloaded and linked. Follows `navigate()` and back/forward.
 */
export function useQuery(): URLSearchParams {
  const [search, setSearch] = useState(window.location.search);
  useEffect(() => {
    const update = () => setSearch(window.location.search);
    window.addEventListener('popstate', update);
    window.addEventListener('trosyn:navigate', update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener('trosyn:navigate', update);
    };
  }, []);
  return new URLSearchParams(search);
}

/** A path with a query, leaving out empty values. */
export function withQuery(path: string, params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
