import { InvalidBodyError } from '../sync/errors.js';
import type { Replica } from '../sync/replica.js';

/**
 * Refuses, with the reason, a record body the engine could store but not keep
 * intact. A `__proto__` key is plain data everywhere (see json-body.ts), except
 * as a top-level field of a collection with the `merge` strategy: merging copies
 * fields by assignment, and assigning `__proto__` sets an object's prototype
 * instead of adding a field, so the first conflict on such a record would fail.
 * Nested `__proto__` keys are not merged field by field and are kept as they are.
 */
export function assertStorableBody(replica: Replica, collection: string, body: unknown): void {
  if (typeof body !== 'object' || body === null || !Object.hasOwn(body, '__proto__')) return;
  if (replica.resolverFor(collection).name !== 'merge') return;
  throw new InvalidBodyError(
    `a top-level field named "__proto__" cannot be kept in collection ${JSON.stringify(collection)}, ` +
      'whose conflict strategy (merge) merges fields one by one; rename the field ' +
      '(nested "__proto__" keys, and other strategies, keep it as plain data)',
  );
}
