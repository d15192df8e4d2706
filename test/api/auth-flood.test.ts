import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildLocalApi } from '../../src/child/local-api/server.js';
import { buildAdminApi } from '../../src/hub/admin-api/server.js';
import { FakeClock, tempDir } from '../helpers.js';
import { bothApis } from './helpers.js';

/**
 * Guessing tokens from many addresses, over real sockets: every 127.0.0.x address
 * is this machine on Linux, so each guesser below really connects from its own
 * source address, which is what the limits count. The limits are the shipped
 * defaults; the clock is fake, so the counts are exact and do not depend on how
 * fast the machine is.
 */

const dir = tempDir('trosyn-auth-flood-');
let apis: Awaited<ReturnType<typeof bothApis>>;
before(async () => {
  apis = await bothApis(dir.path);
});
after(async () => {
  await apis.close();
  dir.remove();
});

const GUESSERS = 100;
const GUESSES_EACH = 4;
/** The default limit on wrong tokens from all addresses together, at once. */
const TOTAL_BURST = 100;

/** One GET /api/status from `from` with `token`, on a new connection; its status and Retry-After. */
function status(port: number, from: string, token: string): Promise<{ status: number; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/api/status',
        localAddress: from,
        agent: false,
        headers: { authorization: `Bearer ${token}` },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            ...(res.headers['retry-after'] !== undefined && { retryAfter: res.headers['retry-after'] }),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

for (const which of ['admin', 'local'] as const) {
  describe(`${which} API: wrong tokens from ${GUESSERS} loopback addresses`, () => {
    it('are limited in total: 429s once 100 have failed, while the known client is served throughout', async () => {
      const clock = new FakeClock();
      const app: FastifyInstance =
        which === 'admin'
          ? buildAdminApi(apis.hub, { clock })
          : buildLocalApi(apis.child, { dataDir: join(dir.path, 'child'), clock });
      const token = apis[which].token;
      await app.listen({ host: '127.0.0.1', port: 0 });
      try {
        const port = (app.server.address() as AddressInfo).port;
        // The admin's PC or the app: it has used the right token before the flood.
        const known = '127.0.0.1';
        assert.equal((await status(port, known, token)).status, 200);

        const answers: number[] = [];
        const servedDuring: number[] = [];
        // Ten guessers at a time, each sending its guesses one after another.
        for (let first = 0; first < GUESSERS; first += 10) {
          await Promise.all(
            Array.from({ length: 10 }, async (_, k) => {
              const from = `127.0.0.${first + k + 2}`;
              for (let g = 0; g < GUESSES_EACH; g++) {
                const res = await status(port, from, `wrong-${from}-${g}`);
                answers.push(res.status);
                if (res.status === 429) assert.ok(Number(res.retryAfter) >= 1, 'Retry-After');
              }
            }),
          );
          servedDuring.push((await status(port, known, token)).status);
        }

        const count = (s: number) => answers.filter((a) => a === s).length;
        assert.equal(answers.length, GUESSERS * GUESSES_EACH);
        // Per address alone, every one of these would be 401: no address went over its own limit.
        assert.equal(count(401), TOTAL_BURST, 'wrong tokens answered before the total limit');
        assert.equal(count(429), GUESSERS * GUESSES_EACH - TOTAL_BURST, 'the rest are refused');
        assert.deepEqual(
          servedDuring,
          servedDuring.map(() => 200),
          'the known client is served during the flood',
        );

        // The known client's own wrong token is still checked (401), not refused unseen.
        assert.equal((await status(port, known, 'a-typo')).status, 401);
        // A new address is refused even with the right token: checking it would let a
        // guesser tell a right guess from a wrong one.
        assert.equal((await status(port, '127.0.0.250', token)).status, 429);
        // Once an attempt has refilled (60 a minute: one second), the right token works anywhere.
        clock.advance(1000);
        assert.equal((await status(port, '127.0.0.250', token)).status, 200);
        assert.equal((await status(port, known, token)).status, 200);
      } finally {
        await app.close();
      }
    });
  });
}
