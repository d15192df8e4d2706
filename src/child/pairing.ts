import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { DeviceId } from '../store/types.js';
import { connectToHub, type HubAddress } from '../transport/client.js';
import { confirmationTag, cpace, tagsEqual } from '../transport/cpace.js';
import { TransportError } from '../transport/errors.js';
import {
  isWellFormedCode,
  normalizeCode,
  pairingChannel,
  pairingTranscript,
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

const startReply = z.object({ nonce: z.string(), hubName: z.string() });
const exchangeReply = z.object({ share: z.string() });
const confirmReply = z.object({
  tag: z.string(),
  state: z.enum(['approved', 'pending', 'revoked']),
  group: z.string(),
});

/**
 * The child's side of pairing (see PairingService). The hub's certificate is not
 * known yet, so the TLS session alone proves nothing; the exchange does: only a
 * hub that knows the code and saw this device's certificate can produce the tag
 * checked last, and only then is the hub's device ID returned for pinning.
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
  const { conn } = hub;
  try {
    const timeout = { timeoutMs: options.timeoutMs ?? 10_000 };
    const childNonce = randomBytes(32);
    const started = startReply.parse(
      await conn.request(
        'pair.start',
        { lookup: code.slice(0, 4), nonce: childNonce.toString('base64') },
        timeout,
      ),
    );
    const sid = Buffer.concat([childNonce, Buffer.from(started.nonce, 'base64')]);
    const channel = pairingChannel(options.identity.deviceId, hub.hubId);
    const party = cpace({ password: code, channel, sid }, 'initiator');
    const exchanged = exchangeReply.parse(
      await conn.request('pair.exchange', { share: Buffer.from(party.share).toString('base64') }, timeout),
    );
    const hubShare = Buffer.from(exchanged.share, 'base64');
    const isk = party.finish(hubShare);
    const transcript = pairingTranscript(channel, sid, party.share, hubShare);
    const confirmed = confirmReply.parse(
      await conn.request(
        'pair.confirm',
        {
          tag: confirmationTag(isk, 'initiator', transcript).toString('base64'),
          name: options.name,
          appVersion: APP_VERSION,
        },
        timeout,
      ),
    );
    if (!tagsEqual(confirmationTag(isk, 'responder', transcript), Buffer.from(confirmed.tag, 'base64'))) {
      throw new TransportError(
        'PAIRING_FAILED',
        'the hub could not prove it knows the code: the connection may be intercepted; nothing was pinned',
      );
    }
    if (confirmed.state === 'revoked')
      throw new TransportError('DEVICE_REVOKED', 'this device was revoked by the hub admin');
    return { hubId: hub.hubId, hubName: started.hubName, state: confirmed.state, group: confirmed.group };
  } finally {
    conn.close();
  }
}
