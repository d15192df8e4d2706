import { z } from 'zod';
import type { DeviceId, JsonObject, RevId, Revision, VersionVector } from '../store/types.js';
import { canonicalJson, isJsonObject, jsonDepthExceeds, MAX_JSON_DEPTH, sha256Hex } from './canonical.js';
import { InvalidBodyError, InvalidRevisionError, RecordTooLargeError } from './errors.js';
import { assertCollectionName, assertRecordId } from './ids.js';

/** Revision format version, part of every revision hash. */
const REVISION_FORMAT = 1;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const hlc = z.string().regex(/^[0-9a-f]{16}$/);

/** The shape of a revision on the wire; `verifyRevision` adds the semantic checks. */
export const revisionSchema = z.object({
  rev: hex64,
  collection: z.string().min(1).max(64),
  id: z.string().min(1).max(256),
  parents: z.array(hex64).max(1024),
  vv: z.record(hex64, z.number().int().positive()),
  hlc,
  author: hex64,
  hub: z.boolean(),
  deleted: z.boolean(),
  bodyHash: z.union([hex64, z.literal('')]),
  body: z.record(z.string(), z.unknown()).nullable(),
  fields: z.record(z.string(), hlc).optional(),
  pruned: z.boolean().optional(),
});

type RevisionContent = Omit<Revision, 'rev' | 'pruned'>;

/** The hash that identifies a revision: over its metadata and its body's hash. */
export function computeRevId(r: RevisionContent): RevId {
  // Equal to canonicalJson([format, collection, id, sorted parents, sorted vv entries,
  // hlc, author, hub, deleted, bodyHash, sorted field entries or null]), built directly
  // (it runs for every revision received): hex strings need no escaping, and the
  // common cases of no or one parent and one device skip the sorts and copies.
  const ps = r.parents;
  const parents =
    ps.length === 0 ? '[]' : ps.length === 1 ? `["${ps[0]}"]` : `["${[...ps].sort().join('","')}"]`;
  const devices = Object.keys(r.vv);
  if (devices.length > 1) devices.sort();
  let vv = '';
  for (let i = 0; i < devices.length; i++) {
    const k = devices[i] as string;
    vv += `${i > 0 ? ',' : ''}["${k}",${r.vv[k]}]`;
  }
  let fields = 'null';
  if (r.fields !== undefined) {
    fields = '';
    for (const k of Object.keys(r.fields).sort())
      fields += `${fields ? ',' : ''}[${JSON.stringify(k)},"${r.fields[k]}"]`;
    fields = `[${fields}]`;
  }
  const text = `[${REVISION_FORMAT},${JSON.stringify(r.collection)},${JSON.stringify(r.id)},${parents},[${vv}],"${r.hlc}","${r.author}",${r.hub},${r.deleted},"${r.bodyHash}",${fields}]`;
  return sha256Hex(text) as RevId;
}

/** Canonical text and hash of a body; throws on a non-object or an oversized body. */
export function encodeBody(body: unknown, maxBytes: number): { text: string; hash: string } {
  if (!isJsonObject(body)) {
    throw new InvalidBodyError(
      `must be a JSON object, got ${Array.isArray(body) ? 'an array' : body === null ? 'null' : typeof body}`,
    );
  }
  const text = canonicalJson(body);
  const bytes = Buffer.byteLength(text);
  if (bytes > maxBytes) throw new RecordTooLargeError(bytes, maxBytes);
  return { text, hash: sha256Hex(text) };
}

export interface NewRevision {
  collection: string;
  id: string;
  parents: RevId[];
  vv: VersionVector;
  hlc: string;
  author: DeviceId;
  hub: boolean;
  /** null for a delete. */
  body: JsonObject | null;
  fields?: Record<string, string>;
  maxBodyBytes: number;
}

/** Builds and hashes a new revision. */
export function createRevision(n: NewRevision): Revision {
  const deleted = n.body === null;
  let body: JsonObject | null = null;
  let bodyHash = '';
  if (n.body !== null) {
    const encoded = encodeBody(n.body, n.maxBodyBytes);
    bodyHash = encoded.hash;
    body = JSON.parse(encoded.text) as JsonObject;
  }
  const content: RevisionContent = {
    collection: n.collection,
    id: n.id,
    parents: [...n.parents].sort(),
    vv: n.vv,
    hlc: n.hlc,
    author: n.author,
    hub: n.hub,
    deleted,
    bodyHash,
    body,
  };
  if (n.fields !== undefined) content.fields = n.fields;
  return { rev: computeRevId(content), ...content };
}

/** 1 for the code units of lowercase hex digits. */
const HEX_DIGIT = new Uint8Array(128);
for (const c of '0123456789abcdef') HEX_DIGIT[c.charCodeAt(0)] = 1;

/**
 * True when `s` is a string of exactly `length` lowercase hex digits. A loop over a
 * table: about twice as fast as the equivalent regular expression, and it runs
 * several times per revision received.
 */
function isHex(s: unknown, length: number): boolean {
  if (typeof s !== 'string' || s.length !== length) return false;
  for (let i = 0; i < length; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || HEX_DIGIT[c] === 0) return false;
  }
  return true;
}

/**
 * The shape check of `revisionSchema`, written out by hand: it runs once per
 * revision in every batch, where zod cost more than the hashing (see the engine
 * benchmark). A test keeps the two in agreement.
 */
export function revisionShapeError(input: unknown): string | undefined {
  if (!isJsonObject(input)) return 'revision: expected an object';
  const r = input as Record<string, unknown>;
  if (!isHex(r.rev, 64)) return 'rev: expected 64 hex characters';
  if (typeof r.collection !== 'string' || r.collection.length === 0 || r.collection.length > 64)
    return 'collection: expected a string of 1-64 characters';
  if (typeof r.id !== 'string' || r.id.length === 0 || r.id.length > 256)
    return 'id: expected a string of 1-256 characters';
  if (!Array.isArray(r.parents) || r.parents.length > 1024)
    return 'parents: expected an array of at most 1024 revs';
  for (const p of r.parents) if (!isHex(p, 64)) return 'parents: expected 64 hex characters each';
  if (!isJsonObject(r.vv)) return 'vv: expected an object';
  for (const [k, v] of Object.entries(r.vv)) {
    if (!isHex(k, 64)) return 'vv: keys must be device IDs';
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
      return 'vv: counters must be positive integers';
  }
  if (!isHex(r.hlc, 16)) return 'hlc: expected 16 hex characters';
  if (!isHex(r.author, 64)) return 'author: expected a device ID';
  if (typeof r.hub !== 'boolean') return 'hub: expected a boolean';
  if (typeof r.deleted !== 'boolean') return 'deleted: expected a boolean';
  if (r.bodyHash !== '' && !isHex(r.bodyHash, 64)) return 'bodyHash: expected 64 hex characters or empty';
  if (r.body !== null && !isJsonObject(r.body)) return 'body: expected an object or null';
  if (r.fields !== undefined) {
    if (!isJsonObject(r.fields)) return 'fields: expected an object';
    for (const v of Object.values(r.fields)) if (!isHex(v, 16)) return 'fields: expected HLC values';
  }
  if (r.pruned !== undefined && typeof r.pruned !== 'boolean') return 'pruned: expected a boolean';
  return undefined;
}

/** A verified revision and, for a live one, its body's canonical JSON text. */
export interface VerifiedRevision {
  revision: Revision;
  bodyText: string | undefined;
}

/**
 * Checks a revision received from a peer: shape, names, body size, and that its
 * hash matches its content. Returns a clean copy (and the body's canonical text,
 * so the store need not serialise it again), or throws a named error
 * (INVALID_REVISION, INVALID_COLLECTION, INVALID_RECORD_ID, RECORD_TOO_LARGE).
 */
export function verifyRevision(input: unknown, maxBodyBytes: number): VerifiedRevision {
  const problem = revisionShapeError(input);
  if (problem !== undefined)
    throw new InvalidRevisionError(isJsonObject(input) ? input.rev : undefined, problem);
  const r = input as unknown as Revision;
  assertCollectionName(r.collection, true);
  assertRecordId(r.id);
  if ((r.vv[r.author] ?? 0) < 1)
    throw new InvalidRevisionError(r.rev, 'version vector has no entry for its author');
  let bodyText: string | undefined;
  if (r.deleted) {
    if (r.body !== null || r.bodyHash !== '')
      throw new InvalidRevisionError(r.rev, 'a tombstone carries a body');
  } else if (r.pruned) {
    if (r.body !== null) throw new InvalidRevisionError(r.rev, 'a pruned revision carries a body');
    if (r.bodyHash === '') throw new InvalidRevisionError(r.rev, 'a pruned revision has no body hash');
  } else {
    if (r.body === null) throw new InvalidRevisionError(r.rev, 'a live revision has no body');
    // Bodies travel with sorted keys, so plain JSON text is usually already canonical:
    // if it hashes to bodyHash it is the canonical text, and the slower walk is skipped.
    let plainText: string;
    try {
      plainText = JSON.stringify(r.body);
    } catch {
      throw new InvalidRevisionError(r.rev, 'body cannot be serialised (nested too deeply?)');
    }
    if (jsonDepthExceeds(r.body))
      throw new InvalidRevisionError(r.rev, `body nests deeper than ${MAX_JSON_DEPTH} levels`);
    if (sha256Hex(plainText) === r.bodyHash) {
      bodyText = plainText;
    } else {
      bodyText = canonicalJson(r.body);
      if (sha256Hex(bodyText) !== r.bodyHash)
        throw new InvalidRevisionError(r.rev, 'body does not match its hash');
    }
    const bytes = Buffer.byteLength(bodyText);
    if (bytes > maxBodyBytes) throw new RecordTooLargeError(bytes, maxBodyBytes);
  }
  if (computeRevId(r) !== r.rev)
    throw new InvalidRevisionError(r.rev, 'revision hash does not match its content');
  // Only the fields of a revision, whatever else the peer sent, parents sorted: the
  // input itself when it is exactly that already (as peers send it), else a copy.
  if (isClean(r)) return { revision: r, bodyText };
  const revision = wireRevision(r);
  if (revision.parents.length > 1) revision.parents = [...revision.parents].sort();
  return { revision, bodyText };
}

/** Fields every revision has; `fields` and `pruned` (when true) come on top. */
const REVISION_KEYS = 11;

/**
 * True when a revision that passed the shape check has no field but those of a
 * revision (`pruned` only when true) and its parents in order: what `wireRevision`
 * would copy it to. Every field the shape check requires is there, so the same
 * number of enumerable keys means no other key.
 */
function isClean(r: Revision): boolean {
  let keys = 0;
  for (const _ in r) keys++;
  const expected = REVISION_KEYS + (r.fields !== undefined ? 1 : 0) + (r.pruned === true ? 1 : 0);
  if (keys !== expected) return false;
  const parents = r.parents;
  for (let i = 1; i < parents.length; i++)
    if ((parents[i - 1] as string) >= (parents[i] as string)) return false;
  return true;
}

/** The revision as offered to a peer: a pruned stub keeps everything but its body. */
export function wireRevision(r: Revision): Revision {
  const out: Revision = {
    rev: r.rev,
    collection: r.collection,
    id: r.id,
    parents: r.parents,
    vv: r.vv,
    hlc: r.hlc,
    author: r.author,
    hub: r.hub,
    deleted: r.deleted,
    bodyHash: r.bodyHash,
    body: r.body,
  };
  if (r.fields !== undefined) out.fields = r.fields;
  if (r.pruned) out.pruned = true;
  return out;
}
