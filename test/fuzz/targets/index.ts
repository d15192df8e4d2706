import type { FuzzTarget } from '../engine.js';

/** The product's fuzz targets, by name (`npm run fuzz -- --target NAME`). */
export const TARGETS: Record<string, () => FuzzTarget> = {};
