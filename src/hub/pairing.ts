import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { type Clock, systemClock } from '../lifecycle.js';
import { silentLogger } from '../observability/logger.js';
import type { DeviceId } from '../store/types.js';
import type { Connection } from '../transport/connection.js';
import { cpace, type CPaceKeys, tagsEqual } from '../transport/cpace.js';
import { PAIRING_NONCE_BYTES, pairingChannel, pairingPassword } from '../transport/pairing-code.js';
import { shortDeviceId } from '../transport/device-id.js';
import { TransportError } from '../transport/errors.js';
import type { PeerInfo } from '../transport/server.js';
import { RateLimiter, type RateLimit } from '../transport/rate-limit.js';
import type { DeviceRecord, DeviceRegistry, PairingCodeRecord } from './registry.js';

/** Exactly `bytes` bytes in padded base64. */
const b64 = (bytes: number) =>
  z
    .string()
    .length(4 * Math.ceil(bytes / 3))
    .regex(/^[A-Za-z0-9+/]*={0,2}$/)
    .refine((s) => Buffer.from(s, 'base64').length === bytes, `must be ${bytes} bytes in base64`);
const startParams = z.object({ lookup: z.string().min(1).max(8), nonce: b64(PAIRING_NONCE_BYTES) });
/** A ristretto255 encoding: 32 bytes. */
const exchangeParams = z.object({ share: b64(32) });
/** HMAC-SHA-512: 64 bytes. */
const confirmParams = z.object({
  tag: b64(64),
  name: z.string().min(1).max(128),
  appVersion: z.string().max(64),
});

export interface PairingServiceOptions {
  registry: DeviceRegistry;
  hubId: DeviceId;
  hubName: string;
  /** pair.start attempts per source address. Default burst 5, 10 per minute. */
  perAddress?: RateLimit;
  /** pair.start attempts from everyone together. Default burst 20, 60 per minute. */
  overall?: RateLimit;
  /** A pairing connection that has not finished within this closes. Default 60 s. */
  timeoutMs?: number;
  onPaired?: (device: DeviceRecord) => void;
  /** Every pairing exchange that ends: `paired`, or the error code it failed with. */
  onAttempt?: (outcome: 'paired' | string) => void;
  clock?: Clock;
  logger?: Logger;
}

/**
 * The hub's side of pairing. An unknown device that connects may run one pairing
 * exchange and nothing else: it names a code by its first group, both sides run
 * CPace with the whole code as the password over a channel bound to both device
 * IDs, and each proves the key with a tag. The child speaks first; only a device
 * whose tag is right is registered. A wrong tag counts against the code, which
 * burns after a few; once the code is spent, every session still open on it gets
 * the same answer whatever its tag, so parallel sessions add no guesses.
 */
export class PairingService {
  private readonly options: PairingServiceOptions;
  private readonly logger: Logger;
  private readonly perAddress: RateLimiter;
  private readonly overall: RateLimiter;

  constructor(options: PairingServiceOptions) {
    this.options = options;
    this.logger = options.logger ?? silentLogger;
    const clock = options.clock ? { clock: options.clock } : {};
    this.perAddress = new RateLimiter(options.perAddress ?? { burst: 5, perMinute: 10 }, clock);
    this.overall = new RateLimiter(options.overall ?? { burst: 20, perMinute: 60 }, clock);
  }

  /** Serves the pairing exchange on a connection from an unknown device. */
  attach(conn: Connection, peer: PeerInfo): void {
    const timer = (this.options.clock ?? systemClock).setTimeout(
      () => conn.close(new TransportError('PAIRING_TIMEOUT', 'pairing did not finish in time')),
      this.options.timeoutMs ?? 60_000,
    );
    conn.once('close', () => timer.cancel());
    // A pairing connection carries the pairing requests and nothing else: any other
    // message, or a request for any other method, ends it.
    conn.setHandler((message) =>
      conn.close(new TransportError('UNEXPECTED_MESSAGE', `${message.type} on a pairing connection`)),
    );
    conn.handle('*', (_params, method) => {
      conn.close(new TransportError('UNEXPECTED_MESSAGE', `request ${method} on a pairing connection`));
      return undefined;
    });
    const channel = pairingChannel(peer.deviceId, this.options.hubId);
    let state:
      | { step: 'new' }
      | { step: 'started'; code: PairingCodeRecord; sid: Buffer }
      | { step: 'exchanged'; code: PairingCodeRecord; keys: CPaceKeys }
      | { step: 'done' } = { step: 'new' };

    // One outcome per exchange begun: paired, the code it failed with, or how its connection ended.
    let begun = false;
    let reported = false;
    const report = (outcome: string) => {
      if (!begun || reported) return;
      reported = true;
      this.options.onAttempt?.(outcome);
    };
    const reporting =
      <R>(handler: (params: unknown) => R | Promise<R>) =>
      async (params: unknown): Promise<R> => {
        try {
          return await handler(params);
        } catch (err) {
          report((err as { code?: string }).code ?? 'INTERNAL_ERROR');
          throw err;
        }
      };
    conn.once('close', (cause) =>
      report((cause as { code?: string } | undefined)?.code ?? 'CONNECTION_CLOSED'),
    );

    conn.handle(
      'pair.start',
      reporting(async (params) => {
        begun = true;
        const p = parse(startParams, params);
        if (state.step !== 'new')
          throw new TransportError('UNEXPECTED_MESSAGE', 'pairing already started on this connection');
        state = { step: 'done' };
        if (!this.perAddress.take(peer.address) || !this.overall.take('*')) {
          this.logger.warn({ address: peer.address }, 'pairing attempt rate-limited');
          throw new TransportError(
            'PAIRING_RATE_LIMITED',
            'too many pairing attempts; wait a minute and try again',
          );
        }
        if ((await this.options.registry.get(peer.deviceId))?.state === 'revoked') {
          throw new TransportError('DEVICE_REVOKED', 'this device was revoked and cannot pair again');
        }
        const code = await this.options.registry.findActiveCode(p.lookup);
        if (!code) throw codeInvalid();
        const childNonce = Buffer.from(p.nonce, 'base64');
        const hubNonce = randomBytes(PAIRING_NONCE_BYTES);
        state = { step: 'started', code, sid: Buffer.concat([childNonce, hubNonce]) };
        return { nonce: hubNonce.toString('base64'), hubName: this.options.hubName };
      }),
    );

    conn.handle(
      'pair.exchange',
      reporting((params) => {
        const p = parse(exchangeParams, params);
        if (state.step !== 'started')
          throw new TransportError('UNEXPECTED_MESSAGE', 'pair.exchange before pair.start');
        const { code, sid } = state;
        state = { step: 'done' };
        const party = cpace({ prs: pairingPassword(code.secret), ci: channel, sid }, 'responder');
        // An invalid share (K = G.I) aborts the exchange; it tests no guess, so it is not counted.
        const keys = party.finish(Buffer.from(p.share, 'base64'));
        state = { step: 'exchanged', code, keys };
        return { share: Buffer.from(party.share).toString('base64') };
      }),
    );

    conn.handle(
      'pair.confirm',
      reporting(async (params) => {
        const p = parse(confirmParams, params);
        if (state.step !== 'exchanged')
          throw new TransportError('UNEXPECTED_MESSAGE', 'pair.confirm before pair.exchange');
        const { code, keys } = state;
        state = { step: 'done' };
        const settled = await this.options.registry.settlePairingAttempt(code.codeId, {
          tagMatched: tagsEqual(keys.peerTag, Buffer.from(p.tag, 'base64')),
          device: { deviceId: peer.deviceId, name: p.name, appVersion: p.appVersion, address: peer.address },
        });
        if (settled.outcome === 'code-invalid') throw codeInvalid();
        if (settled.outcome === 'wrong-code') {
          this.logger.warn(
            {
              address: peer.address,
              device: shortDeviceId(peer.deviceId),
              code: code.lookup,
              after: settled.codeState,
            },
            'pairing failed: wrong code or intercepted',
          );
          throw new TransportError(
            'PAIRING_FAILED',
            'pairing failed: the code does not match, or the connection is being intercepted',
          );
        }
        const device = settled.result;
        report('paired');
        this.options.onPaired?.(device);
        // The child checks this tag before pinning the hub: it proves the hub knew the code too.
        return {
          tag: Buffer.from(keys.ownTag).toString('base64'),
          state: device.state,
          group: device.group,
        };
      }),
    );
  }
}

function codeInvalid(): TransportError {
  return new TransportError(
    'PAIRING_CODE_INVALID',
    'the pairing code is unknown, already used, burned or expired; ask for a new one',
  );
}

function parse<T>(schema: z.ZodType<T>, params: unknown): T {
  const result = schema.safeParse(params);
  if (!result.success)
    throw new TransportError(
      'INVALID_MESSAGE',
      `invalid pairing request: ${result.error.issues[0]?.message ?? 'malformed'}`,
    );
  return result.data;
}
