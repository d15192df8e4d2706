/**
 * Signing the dashboard in and out, through inject() against a real hub (its
 * registry in SQLite): one-time links, the admin token at the form, the session
 * cookie and what it may do, CSRF, and the shared limit on wrong credentials.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { buildAdminApi, ensureAdminToken } from '../../src/hub/admin-api/server.js';
import { ADMIN_SESSION_COOKIE } from '../../src/hub/admin-api/session-routes.js';
import { issueSignInLink, signInUrl } from '../../src/hub/admin-api/sign-in.js';
import type { Hub } from '../../src/hub/hub.js';
import { startTestHub } from '../fixtures/nodes.js';
import { FakeClock, tempDir } from '../helpers.js';

const dir = tempDir('trosyn-admin-session-');
after(() => dir.remove());

const CSRF = { 'x-trosyn-csrf': '1' };
let hub: Hub;
let token: string;
let clock: FakeClock;
let app: FastifyInstance;

before(async () => {
  hub = await startTestHub(join(dir.path, 'hub'));
  token = (await ensureAdminToken(hub.registry)) as string;
  clock = new FakeClock(Date.now());
  app = buildAdminApi(hub, { clock });
});
after(async () => {
  await app.close();
  await hub.stop();
});

function signIn(body: unknown, headers: Record<string, string> = CSRF): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/api/session', headers, payload: body as object });
}

/** The session cookie a sign-in set, as a browser would send it back. */
function cookieOf(res: LightMyRequestResponse): string {
  const set = String(res.headers['set-cookie']);
  const value = new RegExp(`^${ADMIN_SESSION_COOKIE}=([^;]+)`).exec(set)?.[1];
  assert.ok(value, `a session cookie was set: ${set}`);
  return `${ADMIN_SESSION_COOKIE}=${value}`;
}

function withCookie(cookie: string, options: InjectOptions): Promise<LightMyRequestResponse> {
  return app.inject({ ...options, headers: { ...options.headers, cookie } });
}

describe('dashboard sign-in', () => {
  it('a one-time link signs in once; its secret travels in the fragment, never a query', async () => {
    const { secret, expiresAt } = await issueSignInLink(hub.registry, clock.now());
    assert.match(secret, /^tsl_[A-Za-z0-9_-]{43}$/);
    assert.equal(expiresAt, clock.now() + 10 * 60_000, 'valid ten minutes');
    const url = signInUrl('https://192.168.1.10:17701', secret);
    assert.equal(url, `https://192.168.1.10:17701/#signin=${secret}`);
    assert.equal(new URL(url).search, '', 'nothing in the query');

    const first = await signIn({ link: secret });
    assert.equal(first.statusCode, 201, first.body);
    assert.deepEqual(
      { ...JSON.parse(first.body), expiresAt: undefined },
      { signedIn: true, via: 'link', expiresAt: undefined },
    );
    const set = String(first.headers['set-cookie']);
    assert.match(set, /; HttpOnly/);
    assert.match(set, /; SameSite=Strict/);
    assert.match(set, /; Path=\//);
    assert.match(set, /; Max-Age=43200/, 'expires with the session, 12 hours');
    assert.doesNotMatch(set, /Secure/, 'plain HTTP on loopback: no Secure flag');
    assert.equal(first.headers['cache-control'], 'no-store');

    const again = await signIn({ link: secret });
    assert.equal(again.statusCode, 401, 'single use');
    assert.match(JSON.parse(again.body).message, /used already, has expired/);
  });

  it('a link expires after 10 minutes', async () => {
    const { secret } = await issueSignInLink(hub.registry, clock.now());
    clock.advance(10 * 60_000);
    assert.equal((await signIn({ link: secret })).statusCode, 401);
  });

  it('the session cookie opens every route, is kept in the registry, and ends at sign-out', async () => {
    const res = await signIn({ token });
    assert.equal(res.statusCode, 201);
    assert.equal(JSON.parse(res.body).via, 'token');
    const cookie = cookieOf(res);

    const devices = await withCookie(cookie, { method: 'GET', url: '/api/devices' });
    assert.equal(devices.statusCode, 200);
    const session = await withCookie(cookie, { method: 'GET', url: '/api/session' });
    assert.equal(JSON.parse(session.body).via, 'token');

    // A second app over the same hub (a restarted admin API) knows the session: it is stored.
    const restarted = buildAdminApi(hub, { clock });
    try {
      const status = await restarted.inject({ method: 'GET', url: '/api/status', headers: { cookie } });
      assert.equal(status.statusCode, 200, 'the session survives a restart of the API');
    } finally {
      await restarted.close();
    }

    const out = await withCookie(cookie, { method: 'DELETE', url: '/api/session', headers: CSRF });
    assert.equal(out.statusCode, 204);
    assert.match(String(out.headers['set-cookie']), new RegExp(`^${ADMIN_SESSION_COOKIE}=; .*Max-Age=0`));
    const after = await withCookie(cookie, { method: 'GET', url: '/api/devices' });
    assert.equal(after.statusCode, 401, 'signed out: the old cookie opens nothing');
    assert.match(JSON.parse(after.body).message, /sign in again/);
  });

  it('a session expires after 12 hours', async () => {
    const cookie = cookieOf(await signIn({ token }));
    clock.advance(12 * 3600_000);
    assert.equal((await withCookie(cookie, { method: 'GET', url: '/api/status' })).statusCode, 401);
  });

  it('signed out, every data route answers 401; the bearer token keeps working for scripts', async () => {
    for (const url of ['/api/status', '/api/devices', '/api/session', '/api/groups', '/api/conflicts']) {
      assert.equal((await app.inject({ method: 'GET', url })).statusCode, 401, url);
      const bogus = await withCookie(`${ADMIN_SESSION_COOKIE}=tss_forged`, { method: 'GET', url });
      assert.equal(bogus.statusCode, 401, `${url} with a forged cookie`);
    }
    const bearer = await app.inject({
      method: 'GET',
      url: '/api/session',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.deepEqual(JSON.parse(bearer.body), { signedIn: true, via: 'bearer', expiresAt: null });
  });

  it('a change made with the cookie needs the CSRF header and this origin; reads do not', async () => {
    const cookie = cookieOf(await signIn({ token }));
    const groupPut = {
      method: 'PUT' as const,
      url: '/api/groups/sales',
      payload: { read: ['*'], write: [] },
    };
    const bare = await withCookie(cookie, groupPut);
    assert.equal(bare.statusCode, 403);
    assert.equal(JSON.parse(bare.body).code, 'CSRF_REJECTED');
    const foreign = await withCookie(cookie, {
      ...groupPut,
      headers: { ...CSRF, origin: 'https://evil.example' },
    });
    assert.equal(foreign.statusCode, 403);
    const own = await withCookie(cookie, {
      ...groupPut,
      headers: { ...CSRF, origin: 'http://localhost:80', host: 'localhost:80' },
    });
    assert.equal(own.statusCode, 200, own.body);
    // The sign-in form too: another site must not sign the browser in to its own session.
    assert.equal((await signIn({ token }, {})).statusCode, 403);
    assert.equal((await signIn({ token }, { ...CSRF, origin: 'http://evil.example' })).statusCode, 403);
    // A script with the bearer token needs no header.
    const script = await app.inject({
      ...groupPut,
      url: '/api/groups/ops',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(script.statusCode, 200);
  });

  it('asks for one of token and link, and refuses both', async () => {
    assert.equal((await signIn({})).statusCode, 400);
    assert.equal((await signIn({ token, link: 'tsl_x' })).statusCode, 400);
  });

  it('wrong tokens at the form are limited with wrong bearer tokens, per address', async () => {
    const limited = buildAdminApi(hub, { clock, authFailureLimit: { burst: 3, perMinute: 1 } });
    try {
      const form = (t: string) =>
        limited.inject({ method: 'POST', url: '/api/session', headers: CSRF, payload: { token: t } });
      assert.equal((await form('tsa_wrong1')).statusCode, 401);
      assert.equal((await form('tsa_wrong2')).statusCode, 401);
      assert.equal((await form('tsa_wrong3')).statusCode, 401, 'three allowed at once');
      const bearer = await limited.inject({
        method: 'GET',
        url: '/api/status',
        headers: { authorization: 'Bearer tsa_wrong4' },
      });
      assert.equal(
        bearer.statusCode,
        429,
        'the fourth wrong credential, as a bearer token, locks the address',
      );
      const right = await form(token);
      assert.equal(right.statusCode, 429, 'locked out: even the right token waits');
      assert.ok(Number(right.headers['retry-after']) > 0);
      clock.advance(61_000);
      const cookie = cookieOf(await form(token));
      // Locked out again by wrong bearer tokens: the browser signed in before stays in.
      for (let i = 0; i < 3; i++)
        await limited.inject({
          method: 'GET',
          url: '/api/status',
          headers: { authorization: `Bearer tsa_x${i}` },
        });
      const locked = await limited.inject({
        method: 'GET',
        url: '/api/status',
        headers: { authorization: 'Bearer tsa_y' },
      });
      assert.equal(locked.statusCode, 429, 'the address is locked out');
      const browser = await limited.inject({ method: 'GET', url: '/api/status', headers: { cookie } });
      assert.equal(browser.statusCode, 200, 'a live session is no guess: it is served');
      const stale = await limited.inject({
        method: 'GET',
        url: '/api/status',
        headers: { cookie: `${ADMIN_SESSION_COOKIE}=tss_stale` },
      });
      assert.equal(stale.statusCode, 429, 'a dead session cookie waits like everyone else');
    } finally {
      await limited.close();
    }
  });
});
