import { randomBytes } from 'node:crypto';
import { createChannelPair } from '../../src/sync/channel.js';
import { runMessageChannelSuite } from '../../src/sync/testing/channel-suite.js';

interface TestMessage {
  n: number;
  pad?: string;
}

runMessageChannelSuite<TestMessage>('in-memory pair', {
  // Delivery does not wait for a handler's promise: the pair has nothing to slow.
  capabilities: { backpressure: false },
  open: async () => {
    const [a, b] = createChannelPair<TestMessage>();
    return { a, b, cleanup: async () => a.close() };
  },
  message: (n, padBytes = 0) => (padBytes > 0 ? { n, pad: randomBytes(padBytes).toString('base64') } : { n }),
  numberOf: (m) => m.n,
});
