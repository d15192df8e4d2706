import type { DeviceId, JsonObject, Revision } from '../../store/types.js';
import { encodeHlc } from '../hlc.js';
import { createRevision } from '../revision.js';
import { incrementVector, joinVectors } from '../version-vector.js';

/** What a test revision is written as; every field has a plain default. */
export interface RevisionSpec {
  collection?: string;
  id?: string;
  /** The body; null writes a tombstone. Default `{}`. */
  body?: JsonObject | null;
  author: DeviceId;
  /** The revisions it supersedes: its vector is theirs joined, plus one for the author. */
  parents?: readonly Revision[];
  /** Wall-clock ms of its HLC. */
  wall: number;
  hub?: boolean;
  fields?: Record<string, string>;
}

/**
 * A valid, hashed revision as a replica would write it: the one builder tests and
 * acceptance suites use, so a change to the revision format is made in one place.
 */
export function buildRevision(spec: RevisionSpec): Revision {
  const parents = spec.parents ?? [];
  return createRevision({
    collection: spec.collection ?? 'notes',
    id: spec.id ?? 'r',
    parents: parents.map((p) => p.rev),
    vv: incrementVector(joinVectors(parents.map((p) => p.vv)), spec.author),
    hlc: encodeHlc(spec.wall, 0),
    author: spec.author,
    hub: spec.hub ?? false,
    body: spec.body === undefined ? {} : spec.body,
    ...(spec.fields && { fields: spec.fields }),
    maxBodyBytes: 1 << 20,
  });
}
