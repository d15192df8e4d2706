import { join } from 'node:path';
import { registryAt } from '../fixtures/registry.js';
import { StaticAuthenticator } from '../../src/transport/authenticator.js';
import { runAuthenticatorSuite } from '../../src/transport/testing/authenticator-suite.js';
import { tempDir } from '../helpers.js';

runAuthenticatorSuite('StaticAuthenticator', async () => {
  const auth = new StaticAuthenticator([]);
  return {
    authenticator: auth,
    allow: (id) => auth.allow(id),
    withdraw: (id) => auth.revoke(id),
    cleanup: () => undefined,
  };
});

runAuthenticatorSuite('DeviceRegistry', async () => {
  const dir = tempDir();
  const registry = registryAt(join(dir.path, 'hub.db'));
  await registry.start();
  return {
    authenticator: registry,
    allow: async (id) => {
      await registry.register({ deviceId: id, name: 'device', group: 'default' });
    },
    withdraw: async (id) => {
      await registry.revoke(id);
    },
    cleanup: async () => {
      await registry.stop();
      dir.remove();
    },
  };
});
