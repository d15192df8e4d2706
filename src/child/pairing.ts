import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { DeviceId } from '../store/types.js';
import { connectToHub, type HubAddress } from '../transport/client.js';
import type { Connection } from '../transport/connection.js';
import { cpace, type CPaceKeys, tagsEqual } from '../transport/cpace.js';
import { TransportError } from '../transport/errors.js';
import {
  CODE_LOOKUP_LENGTH,
  isWellFormedCode,
  normalizeCode,
  PAIRING_NONCE_BYTES,
  pairingChannel,
  pairingPassword,
} from '../transport/pairing-code.js';
import type { DeviceIdentity } from '../transport/identity.js';
import { APP_VERSION } from '../version.js';

export interface PairOptions {
  identity: DeviceIdentity;
  /** The code shown on the hub, e.g. `7K2M-QX4P-9TZB` (case and dashes do not matter). */
  code: string;
  address: HubAddress;
  /** The hub's device ID when known (from its QR code): then nothing else is even tried. */
  expectedHubId?: DeviceId;
  /** This device's name as the hub will show it. */
  name: string;
  timeoutMs?: number;
  logger?: Logger;
}

export interface PairResult {
  hubId: DeviceId;
  hubName: string;
  /** approved: may sync now; pending: the admin must approve first. */
  state: 'approved' | 'pending';
  group: string;
}

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);
const startReply = z.object({ nonce: base64, hubName: z.string() });
const exchangeReply = z.object({ share: base64 });
const confirmReply = z.object({
  tag: base64,
  state: z.enum(['approved', 'pending', 'revoked']),
  group: z.string(),
});

/**
 * The child's side of one pairing exchange on an open connection, step by step
 * (PairingService is the hub's). The hub's certificate is not trusted yet, so the
 * TLS session alone proves nothing; the exchange does: only a hub that knows the
 * code and saw this device's certificate can produce the tag checked last.
 */
export class PairingExchange {
  private readonly conn: Connection;
  private readonly code: string;
  private readonly channel: Uint8Array;
  private readonly timeout: { timeoutMs: number };
  private readonly childNonce = randomBytes(PAIRING_NONCE_BYTES);
  private sid: Uint8Array | undefined;
  private keys: CPaceKeys | undefined;
  private hubName = '';

  /** `childId` is this device's ID, `hubId` the one the hub presented in this TLS session. */
  constructor(
    conn: Connection,
    options: { code: string; childId: DeviceId; hubId: DeviceId; timeoutMs?: number },
  ) {
    this.conn = conn;
    this.code = normalizeCode(options.code);
    this.channel = pairingChannel(options.childId, options.hubId);
    this.timeout = { timeoutMs: options.timeoutMs ?? 10_000 };
  }

  /** pair.start: names the code by its first group; both nonces make the session id. */
  async start(): Promise<{ hubName: string }> {
    const started = startReply.parse(
      await this.conn.request(
        'pair.start',
        { lookup: this.code.slice(0, CODE_LOOKUP_LENGTH), nonce: this.childNonce.toString('base64') },
        this.timeout,
      ),
    );
    const hubNonce = Buffer.from(started.nonce, 'base64');
    if (hubNonce.length !== PAIRING_NONCE_BYTES)
      throw new TransportError('PAIRING_FAILED', 'the hub sent a nonce of the wrong size');
    this.sid = Buffer.concat([this.childNonce, hubNonce]);
    this.hubName = started.hubName;
    return { hubName: started.hubName };
  }

  /** pair.exchange: CPace's two messages, Ya out and Yb back; derives ISK and both tags. */
  async exchange(): Promise<void> {
    if (!this.sid) throw new TransportError('UNEXPECTED_MESSAGE', 'pair.exchange before pair.start');
    const party = cpace({ prs: pairingPassword(this.code), ci: this.channel, sid: this.sid }, 'initiator');
    const exchanged = exchangeReply.parse(
      await this.conn.request(
        'pair.exchange',
        { share: Buffer.from(party.share).toString('base64') },
        this.timeout,
      ),
    );
    this.keys = party.finish(Buffer.from(exchanged.share, 'base64'));
  }

  /** pair.confirm: sends this side's tag, and checks the hub's before anything is trusted. */
  async confirm(name: string): Promise<Omit<PairResult, 'hubId'>> {
    if (!this.keys) throw new TransportError('UNEXPECTED_MESSAGE', 'pair.confirm before pair.exchange');
    const confirmed = confirmReply.parse(
      await this.conn.request(
        'pair.confirm',
        { tag: Buffer.from(this.keys.ownTag).toString('base64'), name, appVersion: APP_VERSION },
        this.timeout,
      ),
    );
    if (!tagsEqual(this.keys.peerTag, Buffer.from(confirmed.tag, 'base64'))) {
      throw new TransportError(
        'PAIRING_FAILED',
        'the hub could not prove it knows the code: the connection may be intercepted; nothing was pinned',
      );
    }
    if (confirmed.state === 'revoked')
      throw new TransportError('DEVICE_REVOKED', 'this device was revoked by the hub admin');
    return { hubName: this.hubName, state: confirmed.state, group: confirmed.group };
  }
}

/**
 * Pairs this device with a hub: connects with its certificate (unknown to the hub),
 * runs the exchange, and returns the hub's device ID for pinning only once the
 * hub's tag checked out.
 */
export async function pairWithHub(options: PairOptions): Promise<PairResult> {
  const code = normalizeCode(options.code);
  if (!isWellFormedCode(code)) {
    throw new TransportError(
      'PAIRING_CODE_MALFORMED',
      'a pairing code has 12 letters and digits, like 7K2M-QX4P-9TZB',
    );
  }
  const hub = await connectToHub(options.address, {
    identity: options.identity,
    local: { name: options.name, role: 'child', appVersion: APP_VERSION, heartbeatMs: 15_000 },
    hubId: options.expectedHubId,
    timeoutMs: options.timeoutMs ?? 10_000,
    ...(options.logger && { logger: options.logger }),
  });
  try {
    const exchange = new PairingExchange(hub.conn, {
      code,
      childId: options.identity.deviceId,
      hubId: hub.hubId,
      ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
    });
    await exchange.start();
    await exchange.exchange();
    return { hubId: hub.hubId, ...(await exchange.confirm(options.name)) };
  } finally {
    hub.conn.close();
  }
}
