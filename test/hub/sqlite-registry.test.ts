import { join } from 'node:path';
import { SqliteRegistryBackend } from '../../src/hub/sqlite-registry.js';
import { runRegistryBackendSuite } from '../../src/hub/testing/registry-suite.js';
import { tempDir } from '../helpers.js';

runRegistryBackendSuite('SqliteRegistryBackend', async () => {
  const dir = tempDir();
  let files = 0;
  const open = async (path: string) => {
    const backend = new SqliteRegistryBackend({ path });
    await backend.start();
    return backend;
  };
  return {
    create: () => open(join(dir.path, `hub-${++files}.db`)),
    reopen: async (backend) => {
      await backend.stop();
      return open((backend as SqliteRegistryBackend).path);
    },
    cleanup: async () => dir.remove(),
  };
});
