import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import type { DeviceId } from '../../src/store/types.js';

/** A random device ID. */
export function deviceId(): DeviceId {
  return randomBytes(32).toString('hex') as DeviceId;
}

/**
 * A UDP port that was free a moment ago on 127.0.0.1: each test gets its own, so
 * test files running side by side (and other programs) never hear each other.
 */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** Sends datagrams by unicast to 127.0.0.1:port from a throwaway socket. */
export async function sendUdp(port: number, ...datagrams: (string | Buffer)[]): Promise<void> {
  const socket = createSocket('udp4');
  try {
    for (const d of datagrams)
      await new Promise<void>((resolve, reject) =>
        socket.send(typeof d === 'string' ? Buffer.from(d) : d, port, '127.0.0.1', (err) =>
          err ? reject(err) : resolve(),
        ),
      );
  } finally {
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

/** Options every in-process test uses: IPv4 on loopback only, so nothing leaves the machine. */
export function loopbackOnly(port: number): { discoveryPort: number; families: [4]; interfaces: string[] } {
  return { discoveryPort: port, families: [4], interfaces: ['lo'] };
}
