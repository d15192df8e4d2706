import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { TrosynError } from '../errors.js';
import type { DeviceId } from '../store/types.js';
import { isDeviceId } from '../sync/ids.js';

/** The hub a child paired with: kept in `hub.json` in the child's data directory. */
export interface PairedHub {
  hubId: DeviceId;
  hubName: string;
  /** Addresses given at pairing (static); discovery and the last good address add to them. */
  addresses: Array<{ host: string; port: number }>;
  pairedAt: number;
  group: string;
}

const FILE = 'hub.json';
const schema = z.object({
  hubId: z.string().refine(isDeviceId),
  hubName: z.string(),
  addresses: z.array(z.object({ host: z.string().min(1), port: z.number().int().min(1).max(65535) })),
  pairedAt: z.number(),
  group: z.string(),
});

/** This data directory has not been paired with a hub yet. */
export class NotPairedError extends TrosynError {
  constructor(dataDir: string) {
    super(
      'NOT_PAIRED',
      `${dataDir} is not paired with a hub: run \`trosyn-sync pair CODE\` with a code from the hub first`,
      { dataDir },
    );
  }
}

export function loadPairedHub(dataDir: string): PairedHub | undefined {
  const path = join(dataDir, FILE);
  if (!existsSync(path)) return undefined;
  const parsed = schema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
  if (!parsed.success)
    throw new TrosynError('PAIRED_HUB_INVALID', `${path} is damaged; pair again`, { path });
  return parsed.data as PairedHub;
}

/** Writes hub.json atomically (temp file, then rename), owner-only. */
export function savePairedHub(dataDir: string, hub: PairedHub): void {
  const path = join(dataDir, FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(hub, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}
