/**
 * The methods each route path takes, so a request with a known path and an
 * unknown method can be told 405 and which methods to use, rather than a 404
 * that suggests the path is wrong. Fastify's router does not answer this.
 */
export class RouteMethods {
  private readonly routes: Array<{ segments: string[]; methods: Set<string> }> = [];

  /** Records a route as fastify declares it: one method or several, and a path like `/api/records/:collection`. */
  add(method: string | string[], url: string): void {
    const segments = url.split('/');
    let entry = this.routes.find((r) => sameSegments(r.segments, segments));
    if (!entry) {
      entry = { segments, methods: new Set() };
      this.routes.push(entry);
    }
    for (const m of Array.isArray(method) ? method : [method]) entry.methods.add(m.toUpperCase());
  }

  /** The methods some route takes on this concrete path (still percent-encoded), sorted; empty when none. */
  allowed(path: string): string[] {
    const segments = path.split('/');
    const methods = new Set<string>();
    for (const route of this.routes) {
      if (matches(route.segments, segments)) for (const m of route.methods) methods.add(m);
    }
    return [...methods].sort();
  }
}

/** Two declared paths are the same route path when they differ only in parameter names. */
function sameSegments(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((s, i) => (isParam(s) ? isParam(b[i] ?? '') : s === b[i]));
}

/** A concrete path matches a declared one segment by segment; a parameter matches any non-empty segment. */
function matches(declared: string[], concrete: string[]): boolean {
  return (
    declared.length === concrete.length &&
    declared.every((s, i) => (isParam(s) ? (concrete[i] ?? '') !== '' : s === concrete[i]))
  );
}

function isParam(segment: string): boolean {
  return segment.startsWith(':');
}
