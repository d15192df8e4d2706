import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { newApiToken } from '../../http/bearer.js';
import { silentLogger } from '../../observability/logger.js';

/** Name of the token file in the child's data directory. */
export const API_TOKEN_FILE = 'api-token';

/** Local API tokens start with this, so a leaked one is recognisable. */
export const API_TOKEN_PREFIX = 'tsc_';

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{32,256}$/;

/**
 * The local API token in `<dataDir>/api-token`: created on first use (owner-only,
 * mode 0600), read back after. Apps on this machine, in any language, read the
 * file to call the API; the file's permissions are what keep other users out.
 */
export function ensureApiToken(dataDir: string, logger: Logger = silentLogger): string {
  const path = join(dataDir, API_TOKEN_FILE);
  if (!existsSync(dataDir)) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (existsSync(path)) {
    const token = readFileSync(path, 'utf8').trim();
    if (TOKEN_SHAPE.test(token)) {
      // Windows has no POSIX modes; its ACLs come from the data directory.
      if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) {
        chmodSync(path, 0o600);
        logger.warn({ path }, 'the API token file was readable by other users; made it owner-only');
      }
      return token;
    }
    logger.warn({ path }, 'the API token file held no valid token; writing a new one');
  }
  const token = newApiToken(API_TOKEN_PREFIX);
  writeFileSync(path, token, { mode: 0o600 });
  // The mode of writeFileSync applies only to a new file; an existing one keeps its own.
  if (process.platform !== 'win32') chmodSync(path, 0o600);
  return token;
}
