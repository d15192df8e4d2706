/**
 * Where a PostgreSQL database is, as a person gives it and as a data directory
 * remembers it: a URL (`postgres://user:password@host:port/database`,
 * `postgresql://...`, `postgres://user@/database?host=/run/postgresql` for a unix
 * socket) or libpq's keyword/value form (`host=/run/postgresql dbname=trosyn
 * user=trosyn`). Pure text handling: nothing here connects.
 */

/** A database location split from its password. */
export interface PostgresLocation {
  /** The location as a `postgres://` URL that holds no password: what may be written down and shown. */
  url: string;
  /** The password the text carried, if any: used, never stored. */
  password: string | undefined;
}

/** A location that is not a PostgreSQL URL or keyword/value string; the message never repeats a password. */
export class PostgresLocationError extends Error {}

/** Whether `text` is meant as a PostgreSQL location (a URL of that scheme, or keyword/value pairs). */
export function looksLikePostgres(text: string): boolean {
  return /^postgres(ql)?:\/\//i.test(text.trim()) || /^\s*[a-z_]+\s*=/i.test(text);
}

/**
 * Splits a location into a password-free URL and its password (from the URL's user
 * part, a `password` parameter, or a `password=` pair). Throws PostgresLocationError
 * for anything else, without echoing the text.
 */
export function parsePostgresLocation(text: string): PostgresLocation {
  const trimmed = text.trim();
  if (/^postgres(ql)?:\/\//i.test(trimmed)) return splitUrl(trimmed);
  if (/^[a-z_]+\s*=/i.test(trimmed)) return keywordsToUrl(trimmed);
  throw new PostgresLocationError(
    'not a PostgreSQL location: give postgres://user@host:port/database, postgres://user@/database?host=/socket/dir, or host=/socket/dir dbname=NAME user=NAME',
  );
}

/** The URL with `password` added (as a parameter, which node-postgres reads), for the connection only. */
export function withPassword(url: string, password: string | undefined): string {
  if (password === undefined || password === '') return url;
  return `${url}${url.includes('?') ? '&' : '?'}password=${encodeURIComponent(password)}`;
}

function splitUrl(text: string): PostgresLocation {
  const match = /^(postgres(?:ql)?:\/\/)([^/?#]*)(.*)$/i.exec(text);
  if (!match) throw new PostgresLocationError('not a postgres:// URL');
  const [, scheme = 'postgres://', authority = '', rest = ''] = match;
  let password: string | undefined;
  let userHost = authority;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userInfo = authority.slice(0, at);
    const colon = userInfo.indexOf(':');
    if (colon >= 0) {
      password = decode(userInfo.slice(colon + 1));
      userHost = `${userInfo.slice(0, colon)}@${authority.slice(at + 1)}`;
    }
  }
  // A password given as a parameter leaves the URL as well.
  const q = rest.indexOf('?');
  let path = rest;
  if (q >= 0) {
    path = rest.slice(0, q);
    const kept: string[] = [];
    for (const pair of rest.slice(q + 1).split('&')) {
      if (pair === '') continue;
      const [key = '', value = ''] = pair.split(/=(.*)/s);
      if (decode(key) === 'password') password = decode(value);
      else kept.push(pair);
    }
    if (kept.length > 0) path += `?${kept.join('&')}`;
  }
  const url = `${scheme.toLowerCase()}${userHost}${path}`;
  try {
    // Only to refuse what is no URL at all; node-postgres reads the host-less socket form itself.
    new URL(url.replace('@/', '@localhost/'));
  } catch {
    throw new PostgresLocationError('the postgres:// URL cannot be read (check its brackets, @ and /)');
  }
  return { url, password: password === '' ? undefined : password };
}

/** libpq's `key=value key='quoted value'` form as a URL; unknown keys become URL parameters. */
function keywordsToUrl(text: string): PostgresLocation {
  const pairs = new Map<string, string>();
  const re = /\s*([a-z_]+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|(\S*))/giy;
  let at = 0;
  for (;;) {
    re.lastIndex = at;
    const m = re.exec(text);
    if (!m) break;
    pairs.set((m[1] ?? '').toLowerCase(), m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? ''));
    at = re.lastIndex;
  }
  if (text.slice(at).trim() !== '')
    throw new PostgresLocationError(
      'the keyword/value location cannot be read: write key=value pairs separated by spaces, quoting a value with spaces in single quotes',
    );
  const take = (key: string): string | undefined => {
    const value = pairs.get(key);
    pairs.delete(key);
    return value === '' ? undefined : value;
  };
  const password = take('password');
  const host = take('host');
  const port = take('port');
  const user = take('user');
  const database = take('dbname');
  const params: string[] = [];
  const socket = host?.startsWith('/') === true;
  if (socket && host) params.push(`host=${encodeURIComponent(host)}`);
  if ((socket || !host) && port) params.push(`port=${encodeURIComponent(port)}`);
  for (const [key, value] of pairs) params.push(`${key}=${encodeURIComponent(value)}`);
  const hostPart =
    socket || !host ? '' : `${host.includes(':') ? `[${host}]` : host}${port ? `:${port}` : ''}`;
  const userPart = user ? `${encodeURIComponent(user)}@` : '';
  const url = `postgres://${userPart}${hostPart}/${database ? encodeURIComponent(database) : ''}${
    params.length > 0 ? `?${params.join('&')}` : ''
  }`;
  return { url, password };
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
