import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { isIP } from 'node:net';
import { TrosynError } from '../../errors.js';
import { InvalidOptionError } from '../../sync/errors.js';

/** A certificate and its private key, both PEM. */
export interface PemCertificate {
  certPem: string;
  keyPem: string;
}

/**
 * How the admin port speaks TLS: `'hub'` serves the hub's own identity
 * certificate (self-signed; its SHA-256 fingerprint is what the admin checks in
 * the browser's warning), or a certificate and key the admin provides.
 */
export type AdminTls = 'hub' | PemCertificate;

/** What the admin port serves, decided from its options before it listens. */
export interface AdminServing {
  scheme: 'http' | 'https';
  /** The certificate served, for https. */
  tls?: AdminTls;
  /** Plain HTTP on an address other machines can reach: the admin asked for it, and is warned. */
  insecure: boolean;
}

/** The admin certificate or key the admin gave cannot be used. */
export class AdminCertificateError extends TrosynError {
  constructor(message: string, options?: ErrorOptions) {
    super('ADMIN_CERTIFICATE_INVALID', message, undefined, options);
  }
}

/**
 * True when `host` can only be reached from this machine: `localhost`, 127.0.0.0/8,
 * `::1` and its IPv4-mapped forms. `::` and `0.0.0.0` are every address, not loopback.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) {
    if (h === '::1' || /^0{0,4}(:0{0,4}){6}:0{0,3}1$/.test(h)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && (mapped[1] as string).startsWith('127.');
  }
  return false;
}

/**
 * Decides how the admin port serves, following Syncthing's GUI: plain HTTP on
 * loopback, HTTPS anywhere else, with the hub's certificate unless the admin gives
 * one. Plain HTTP on another address only with `insecureHttp`, since the admin
 * token and session cookie would cross the LAN in clear.
 */
export function adminServing(options: {
  host: string;
  tls?: AdminTls;
  insecureHttp?: boolean;
}): AdminServing {
  if (options.tls !== undefined && options.insecureHttp === true) {
    throw new InvalidOptionError(
      'adminApi.insecureHttp (--insecure-http)',
      'cannot be combined with a certificate (--http-cert, --http-key): choose HTTPS or plain HTTP',
    );
  }
  if (options.tls !== undefined) return { scheme: 'https', tls: options.tls, insecure: false };
  if (isLoopbackHost(options.host)) return { scheme: 'http', insecure: false };
  if (options.insecureHttp === true) return { scheme: 'http', insecure: true };
  return { scheme: 'https', tls: 'hub', insecure: false };
}

/**
 * Checks that a certificate and key the admin gave are PEM, parse, and belong
 * together, so a mistake fails the start with a message rather than every browser.
 */
export function checkAdminCertificate(given: PemCertificate): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(given.certPem);
  } catch (err) {
    throw new AdminCertificateError(
      `the admin certificate (--http-cert) is not a PEM certificate: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    createSecureContext({ cert: given.certPem, key: given.keyPem });
  } catch (err) {
    throw new AdminCertificateError(
      `the admin key (--http-key) cannot be used with the certificate (${cert.subject.replace(/\n/g, ', ')}): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** SHA-256 fingerprint of a PEM certificate as browsers show it: `AB:CD:...`, 32 pairs. */
export function certificateFingerprint(certPem: string): string {
  return new X509Certificate(certPem).fingerprint256;
}

/** `host:port` for a URL: IPv6 addresses in brackets. */
export function urlHost(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
