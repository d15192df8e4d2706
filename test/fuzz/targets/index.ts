import type { FuzzTarget } from '../engine.js';
import { chunksTarget } from './chunks.js';
import { pairingTarget } from './pairing.js';
import { sessionTarget } from './session.js';

/** The product's fuzz targets, by name (`npm run fuzz -- --target NAME`). */
export const TARGETS: Record<string, () => FuzzTarget> = {
  pairing: pairingTarget,
  chunks: chunksTarget,
  session: sessionTarget,
};
