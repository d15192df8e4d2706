import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { componentLogger, createLogger } from '../../src/observability/logger.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, destination };
}

describe('logger', () => {
  it('nested components give one component key with the full path, and keep other bindings', () => {
    const { lines, destination } = capture();
    const root = createLogger({ name: 'trosyn', destination });
    const session = componentLogger(componentLogger(root, 'hub'), 'sync', { peer: 'ABC' });
    session.info('hello');
    const line = lines[0] as string;
    assert.equal(line.match(/"component"/g)?.length, 1);
    assert.equal(JSON.parse(line).component, 'trosyn:hub:sync');
    assert.equal(JSON.parse(line).peer, 'ABC');
  });

  it('never writes secrets', () => {
    const { lines, destination } = capture();
    const log = componentLogger(createLogger({ name: 'trosyn', destination }), 'api');
    log.info(
      {
        token: 'tsa_secret1',
        req: { headers: { authorization: 'Bearer tsa_secret2' } },
        pairingCode: 'ABCD-EFGH-JKMN',
        privateKey: '-----BEGIN',
      },
      'request',
    );
    const text = lines.join('\n');
    for (const secret of ['tsa_secret1', 'tsa_secret2', 'ABCD-EFGH-JKMN', 'BEGIN'])
      assert.ok(!text.includes(secret), `${secret} leaked`);
    assert.match(text, /\[redacted\]/);
  });
});
