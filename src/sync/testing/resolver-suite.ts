/**
 * The acceptance suite every ConflictResolver must pass: whatever it decides, it
 * must decide the same on every replica.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import type { DeviceId, JsonObject, Revision } from '../../store/types.js';
import type { ConflictResolver } from '../conflict.js';
import { buildRevision } from './revisions.js';

function device(): DeviceId {
  return randomBytes(32).toString('hex') as DeviceId;
}

function rev(
  parents: Revision[],
  author: DeviceId,
  wall: number,
  body: JsonObject | null,
  hub = false,
): Revision {
  return buildRevision({ collection: 'c', id: 'r', parents, author, wall, body, hub });
}

/** Sets of concurrent heads covering edits, deletes, hub writes and clock ties. */
function scenarios(): Revision[][] {
  const [a, b, c] = [device(), device(), device()];
  const base = rev([], a, 1000, { title: 't', n: 1, tags: ['x'] });
  return [
    [
      rev([base], a, 2000, { title: 'A', n: 1, tags: ['x'] }),
      rev([base], b, 3000, { title: 't', n: 2, tags: ['x'] }),
    ],
    [rev([base], a, 2000, { title: 'A' }), rev([base], b, 2000, { title: 'B' })],
    [rev([base], a, 2000, null), rev([base], b, 1500, { title: 'B', n: 1, tags: ['x'] })],
    [
      rev([base], a, 2000, { title: 'hub' }, true),
      rev([base], b, 5000, { title: 'child' }),
      rev([base], c, 4000, null),
    ],
    [rev([base], a, 2000, null), rev([base], b, 2500, null)],
  ];
}

function permutations<T>(items: T[]): T[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((x, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((p) => [x, ...p]),
  );
}

const sortByRev = (heads: Revision[]) => [...heads].sort((x, y) => (x.rev < y.rev ? -1 : 1));

export function runConflictResolverSuite(name: string, make: () => ConflictResolver): void {
  describe(`ConflictResolver acceptance: ${name}`, () => {
    it('has a name', () => {
      assert.ok(make().name.length > 0);
    });

    it('picks one of the heads as the winner', () => {
      for (const heads of scenarios()) {
        const res = make().resolve(sortByRev(heads), { collection: 'c', id: 'r' });
        assert.ok(
          heads.some((h) => h.rev === res.winner),
          'winner must be one of the heads',
        );
      }
    });

    it('gives the same answer for the same heads, whatever order they arrived in', () => {
      for (const heads of scenarios()) {
        const answers = new Set(
          permutations(heads).map((p) =>
            JSON.stringify(make().resolve(sortByRev(p), { collection: 'c', id: 'r' })),
          ),
        );
        assert.equal(answers.size, 1);
      }
    });

    it('is consistent: deleted has no body, a live result has an object body, derived flags a new body', () => {
      for (const heads of scenarios()) {
        const res = make().resolve(sortByRev(heads), { collection: 'c', id: 'r' });
        if (res.deleted) assert.equal(res.body, null);
        else assert.ok(res.body !== null && typeof res.body === 'object' && !Array.isArray(res.body));
        const winner = heads.find((h) => h.rev === res.winner);
        if (!res.derived && !res.deleted) assert.deepEqual(res.body, winner?.body);
      }
    });

    it('does not modify the heads it is given', () => {
      for (const heads of scenarios()) {
        const before = JSON.stringify(heads);
        make().resolve(sortByRev(heads), { collection: 'c', id: 'r' });
        assert.equal(JSON.stringify(heads), before);
      }
    });
  });
}
