import type { FuzzTarget } from '../engine.js';
import { pairingTarget } from './pairing.js';

/** The product's fuzz targets, by name (`npm run fuzz -- --target NAME`). */
export const TARGETS: Record<string, () => FuzzTarget> = {
  pairing: pairingTarget,
};
