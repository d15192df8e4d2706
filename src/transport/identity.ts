import { webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { silentLogger } from '../observability/logger.js';
import type { DeviceId } from '../store/types.js';
import { deviceIdOf, deviceIdOfPem } from './device-id.js';

export { deviceIdOfPem };
import { IdentityError } from './errors.js';

/**
 * The certificate library, loaded only to make an identity (once per device): it
 * and its dependencies hold about 20 MB that an agent which only loads its
 * identity never needs.
 */
let x509Library: Promise<typeof import('@peculiar/x509')> | undefined;
function loadX509(): Promise<typeof import('@peculiar/x509')> {
  x509Library ??= (async () => {
    // @peculiar/x509 resolves its parts through tsyringe, which needs this polyfill loaded first.
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return x509Library;
}

/** A device's key pair and self-signed certificate; its ID is the certificate's hash. */
export interface DeviceIdentity {
  deviceId: DeviceId;
  /** PEM certificate, presented on every TLS connection. */
  certPem: string;
  /** PEM (PKCS#8) private key; never logged, stored owner-readable only. */
  keyPem: string;
}

const KEY_FILE = 'key.pem';
const CERT_FILE = 'cert.pem';
/** Identity certificates are pinned, not chained to a CA, so they live long. */
const VALIDITY_YEARS = 30;

/** Makes a fresh ECDSA P-256 key pair and a self-signed certificate. */
export async function createIdentity(commonName = 'trosyn-sync'): Promise<DeviceIdentity> {
  const x509 = await loadX509();
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const notBefore = new Date(Date.now() - 24 * 3600_000);
  const notAfter = new Date(notBefore.getTime() + VALIDITY_YEARS * 365 * 24 * 3600_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${commonName.replace(/[,=+<>#;"\\]/g, ' ')}`,
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    signingAlgorithm: algorithm,
    notBefore,
    notAfter,
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true)],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const keyPem = x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
  return {
    deviceId: deviceIdOf(new Uint8Array(cert.rawData)),
    certPem: cert.toString('pem'),
    keyPem,
  };
}

/** Whether `dir` holds an identity (its key or its certificate). */
export function hasIdentity(dir: string): boolean {
  return existsSync(join(dir, KEY_FILE)) || existsSync(join(dir, CERT_FILE));
}

/**
 * Keeps `identity` in `dir` (made owner-only), as loadOrCreateIdentity reads it;
 * never replaces one already there.
 */
export function writeIdentity(dir: string, identity: DeviceIdentity): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  writeFileSync(join(dir, KEY_FILE), identity.keyPem, { mode: 0o600, flag: 'wx' });
  writeFileSync(join(dir, CERT_FILE), identity.certPem, { mode: 0o644, flag: 'wx' });
}

/**
 * Loads the identity kept in `dir` (`key.pem`, `cert.pem`), creating it on first
 * start. The directory is owner-only (0700) and the key file owner-readable only
 * (0600); looser permissions found on start are tightened, with a warning.
 */
export async function loadOrCreateIdentity(
  dir: string,
  options: { commonName?: string; logger?: Logger } = {},
): Promise<DeviceIdentity> {
  const logger = options.logger ?? silentLogger;
  const keyPath = join(dir, KEY_FILE);
  const certPath = join(dir, CERT_FILE);
  if (!existsSync(keyPath) || !existsSync(certPath)) {
    if (existsSync(keyPath) !== existsSync(certPath)) {
      throw new IdentityError(
        dir,
        `only one of ${KEY_FILE} and ${CERT_FILE} exists; restore the other from backup or remove both to make a new identity (the device must then pair again)`,
      );
    }
    const identity = await createIdentity(options.commonName);
    writeIdentity(dir, identity);
    logger.info({ deviceId: identity.deviceId }, 'created device identity');
    return identity;
  }
  const mode = statSync(keyPath).mode & 0o777;
  if (mode & 0o077) {
    chmodSync(keyPath, 0o600);
    logger.warn(
      { path: keyPath, mode: mode.toString(8) },
      'private key was readable by others; permissions tightened to 0600',
    );
  }
  try {
    const keyPem = readFileSync(keyPath, 'utf8');
    const certPem = readFileSync(certPath, 'utf8');
    return { deviceId: deviceIdOfPem(certPem), certPem, keyPem };
  } catch (err) {
    throw new IdentityError(dir, `cannot read the identity: ${(err as Error).message}`, err);
  }
}
