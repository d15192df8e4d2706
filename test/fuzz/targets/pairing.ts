/**
 * Fuzz target: the pairing exchange as the hub receives it. A would-be child with
 * a certificate the hub does not know opens a real TLS connection to a real hub
 * and sends the input's writes: a hello, then pair.start, pair.exchange and
 * pair.confirm (mutated, reordered, truncated, mixed with other messages).
 *
 * The harness plays an honest child wherever the input lets it: tokens in the
 * input are replaced by this session's values (the lookup of the active code, the
 * child's nonce, its CPace share once the hub's nonce is known, its tag once the
 * hub's share is), so mutants reach every step of the exchange, the successful
 * pairing included.
 *
 * The oracle, per input: every message the hub sends decodes; each request is
 * answered or the connection closed, each ping too; a stream the hub must refuse
 * ends with an `error` and the close; every error code is in the error table and
 * none is INTERNAL_ERROR; the device is registered exactly when the hub answered
 * pair.confirm, which it may only do for the right tag, and then with its own
 * right tag. After the run a real child still pairs.
 */
import { join } from 'node:path';
import { pairWithHub } from '../../../src/child/pairing.js';
import type { Hub } from '../../../src/hub/hub.js';
import type { Message } from '../../../src/protocol/messages.js';
import { cpace, type CPaceKeys, type CPaceParty } from '../../../src/transport/cpace.js';
import { createIdentity, type DeviceIdentity } from '../../../src/transport/identity.js';
import {
  CODE_LOOKUP_LENGTH,
  normalizeCode,
  pairingChannel,
  pairingPassword,
} from '../../../src/transport/pairing-code.js';
import { startTestHub } from '../../fixtures/nodes.js';
import { tempDir } from '../../helpers.js';
import type { FuzzTarget } from '../engine.js';
import { type Input, messageFrame } from '../mutate.js';
import { expectErrorCode, FramePeer, fuzzHello, OracleError, SentFrames } from '../peer.js';

/** Tokens as long as the values that replace them, so no length field needs fixing. */
export const TOKENS = {
  lookup: '@LK@',
  nonce: '@NONCE@'.padEnd(44, '~'),
  share: '@SHARE@'.padEnd(44, '~'),
  tag: '@TAG@'.padEnd(88, '~'),
} as const;

/** How long the hub may take to answer one message (a bound against a hang, not a speed target). */
const ANSWER_LIMIT_MS = 10_000;

const unlimited = { burst: 1e9, perMinute: 1e9 };
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

interface Session {
  nonce: Buffer;
  party?: CPaceParty;
  keys?: CPaceKeys;
  paired: boolean;
  welcomed: boolean;
  /** The fuzzer sent an `error` message: the hub closes without one of its own. */
  sentError: boolean;
  /** The tag the last pair.confirm sent carried. */
  tagSent?: unknown;
}

export function pairingTarget(): FuzzTarget {
  const dir = tempDir('trosyn-fuzz-pairing-');
  let hub: Hub;
  let identity: DeviceIdentity;
  let code = '';
  let pairedDevices = 0;

  const substitute = (write: Buffer, s: Session): Buffer => {
    const values: [string, string][] = [
      [TOKENS.lookup, code.slice(0, CODE_LOOKUP_LENGTH)],
      [TOKENS.nonce, b64(s.nonce)],
      // Without the hub's nonce there is no share to compute: a valid encoding of nothing useful.
      [TOKENS.share, s.party ? b64(s.party.share) : b64(Buffer.alloc(32, 1))],
      [TOKENS.tag, s.keys ? b64(s.keys.ownTag) : b64(Buffer.alloc(64))],
    ];
    let out = write;
    for (const [token, value] of values) {
      for (let at = out.indexOf(token); at >= 0; at = out.indexOf(token, at + value.length)) {
        if (out === write) out = Buffer.from(write);
        out.write(value, at, 'latin1');
      }
    }
    return out;
  };

  /** What the hub makes of one message it was sent: waits for it and checks it. */
  const answerTo = async (peer: FramePeer, m: Message, s: Session): Promise<void> => {
    if (m.type === 'hello' && !s.welcomed) {
      s.welcomed = await peer.until(
        () => peer.messages().some((x) => x.type === 'welcome'),
        ANSWER_LIMIT_MS,
        'hello',
      );
      return;
    }
    if (m.type === 'ping' && s.welcomed) {
      await peer.until(
        () => peer.claim((x) => x.type === 'pong' && x.t === m.t) !== undefined,
        ANSWER_LIMIT_MS,
        'ping',
      );
      return;
    }
    if ((m.type === 'pong' || m.type === 'response') && s.welcomed) return; // ignored
    if (m.type !== 'request' || !s.welcomed) {
      // An error ends the connection; anything else asks something a pairing connection does not give.
      if (m.type === 'error') s.sentError = true;
      if (await peer.until(() => false, ANSWER_LIMIT_MS, `${m.type} on a pairing connection`))
        throw new OracleError('unreachable');
      if (m.type !== 'error' && !s.sentError && peer.errorCodes().length === 0)
        throw new OracleError(`the hub closed after ${m.type} without an error`);
      // Before the welcome the hub sends nothing but its error (PROTOCOL.md, "Handshake").
      if (!s.welcomed && peer.messages().some((x) => x.type !== 'error'))
        throw new OracleError(`the hub answered ${m.type} before the handshake`);
      return;
    }
    if (m.method === 'pair.confirm') s.tagSent = (m.params as { tag?: unknown } | undefined)?.tag;
    let response: Message | undefined;
    await peer.until(
      () => (response = peer.claim((x) => x.type === 'response' && x.re === m.id)) !== undefined,
      ANSWER_LIMIT_MS,
      `request ${m.method}`,
    );
    if (response?.type !== 'response' || !response.ok) return;
    const result = response.result as Record<string, unknown> | undefined;
    if (m.method === 'pair.start') {
      const nonce = Buffer.from(String((m.params as { nonce?: unknown } | undefined)?.nonce), 'base64');
      const hubNonce = Buffer.from(String(result?.nonce), 'base64');
      if (hubNonce.length !== 32)
        throw new OracleError(`pair.start answered a nonce of ${hubNonce.length} bytes`);
      s.party = cpace(
        {
          prs: pairingPassword(code),
          ci: pairingChannel(identity.deviceId, hub.deviceId),
          sid: Buffer.concat([nonce, hubNonce]),
        },
        'initiator',
      );
    } else if (m.method === 'pair.exchange') {
      if (!s.party) throw new OracleError('pair.exchange answered without a pair.start answered');
      try {
        s.keys = s.party.finish(Buffer.from(String(result?.share), 'base64'));
      } catch (err) {
        throw new OracleError(`the hub's share is not valid: ${(err as Error).message}`);
      }
    } else if (m.method === 'pair.confirm') {
      if (!s.keys) throw new OracleError('pair.confirm answered without an exchange');
      if (s.tagSent !== b64(s.keys.ownTag)) throw new OracleError('the hub accepted a wrong tag');
      if (String(result?.tag) !== b64(s.keys.peerTag)) throw new OracleError("the hub's tag is wrong");
      s.paired = true;
    } else {
      throw new OracleError(`a pairing connection answered ${m.method}`);
    }
  };

  const newCode = async () => {
    code = normalizeCode((await hub.registry.issueCode()).code);
  };

  const seeds = (): Input[] => {
    const hello = messageFrame(fuzzHello());
    const request = (id: number, method: string, params?: unknown) =>
      messageFrame({ type: 'request', id, method, ...(params !== undefined && { params }) });
    const start = request(1, 'pair.start', { lookup: TOKENS.lookup, nonce: TOKENS.nonce });
    const exchange = request(2, 'pair.exchange', { share: TOKENS.share });
    const confirm = request(3, 'pair.confirm', { tag: TOKENS.tag, name: 'fuzzer', appVersion: '0.0.0' });
    const split = (w: Buffer, at: number) => [w.subarray(0, at), w.subarray(at)];
    return [
      [hello, start, exchange, confirm],
      [
        hello,
        start,
        exchange,
        request(3, 'pair.confirm', { tag: b64(Buffer.alloc(64)), name: 'x', appVersion: '' }),
      ],
      [hello, request(1, 'pair.start', { lookup: 'ZZZZ', nonce: TOKENS.nonce }), exchange],
      [hello, exchange, confirm],
      [hello, start, start, exchange],
      [hello, start, request(2, 'pair.exchange', { share: b64(Buffer.alloc(32)) }), confirm],
      [
        hello,
        messageFrame({ type: 'ping', t: 1 }),
        start,
        messageFrame({ type: 'sync.open', log: '', upTo: 0 }),
      ],
      [hello, request(1, 'status')],
      [hello, ...split(start, 9), Buffer.concat([exchange, confirm])],
      [
        hello,
        start,
        messageFrame({ type: 'response', re: 9, ok: true }),
        messageFrame({ type: 'pong', t: 1 }),
        exchange,
        messageFrame({ type: 'error', code: 'CONNECTION_CLOSED', message: 'bye' }),
      ],
    ];
  };

  return {
    name: 'pairing',
    sources: ['src/hub/pairing.ts', 'src/transport/', 'src/protocol/', 'src/hub/registry.ts'],
    dictionary: [
      ...Object.values(TOKENS),
      'pair.start',
      'pair.exchange',
      'pair.confirm',
      'request',
      'response',
      'ping',
      'pong',
      'error',
      'hello',
      'sync.open',
      b64(Buffer.alloc(32)),
      b64(Buffer.alloc(64)),
      '0000',
    ],
    seeds,
    async start() {
      hub = await startTestHub(join(dir.path, 'hub'), {
        pairingLimits: { perAddress: unlimited, overall: unlimited },
        connectionLimit: unlimited,
      });
      identity = await createIdentity('fuzz-pairing');
      await newCode();
    },
    async run(input) {
      const s: Session = {
        nonce: Buffer.alloc(32, 7),
        paired: false,
        welcomed: false,
        sentError: false,
      };
      const peer = await FramePeer.connect(hub.port, identity);
      const sent = new SentFrames();
      try {
        for (const raw of input) {
          if (peer.closed) break;
          const bytes = substitute(raw, s);
          peer.write(bytes);
          for (const d of sent.push(bytes)) {
            if (d.kind === 'chunk') {
              await peer.until(() => false, ANSWER_LIMIT_MS, 'a chunk frame on a pairing connection');
              if (peer.errorCodes().length === 0)
                throw new OracleError('closed after a chunk frame without an error');
            } else await answerTo(peer, d.message, s);
            if (peer.closed) break;
          }
          if (sent.violation && !peer.closed) {
            await peer.until(() => false, ANSWER_LIMIT_MS, `a stream with ${sent.violation}`);
            if (!s.sentError && peer.errorCodes().length === 0)
              throw new OracleError(`the hub closed after ${sent.violation} without an error`);
          }
        }
        await peer.end(ANSWER_LIMIT_MS);
      } finally {
        peer.destroy();
      }
      if (peer.malformed)
        throw new OracleError(`the hub sent a frame that does not decode: ${peer.malformed}`);
      for (const c of peer.errorCodes()) expectErrorCode(c, 'error message');
      for (const m of peer.messages())
        if (m.type === 'response' && !m.ok) expectErrorCode(m.error.code, 'error response');
      const registered = await hub.registry.get(identity.deviceId);
      if (Boolean(registered) !== s.paired)
        throw new OracleError(
          registered
            ? 'the device was registered without a confirmed exchange'
            : 'confirmed but not registered',
        );
      if (s.paired) {
        pairedDevices++;
        identity = await createIdentity('fuzz-pairing');
      }
      if (!(await hub.registry.findActiveCode(code.slice(0, CODE_LOOKUP_LENGTH)))) await newCode();
    },
    async check() {
      const child = await createIdentity('after-fuzz');
      const fresh = normalizeCode((await hub.registry.issueCode()).code);
      const result = await pairWithHub({
        identity: child,
        code: fresh,
        address: { host: '127.0.0.1', port: hub.port },
        name: 'after-fuzz',
      });
      if (result.hubId !== hub.deviceId || result.state !== 'approved')
        throw new OracleError(`a real child could not pair after the run: ${JSON.stringify(result)}`);
      const devices = await hub.registry.list();
      if (devices.length !== pairedDevices + 1)
        throw new OracleError(
          `${devices.length} devices registered, ${pairedDevices + 1} pairings confirmed`,
        );
    },
    async stop() {
      await hub?.stop();
      dir.remove();
    },
  };
}
