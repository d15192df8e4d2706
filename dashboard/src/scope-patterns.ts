/**
 * The hub's rules for group names and scope patterns, checked in the page for quick
 * feedback. The hub checks them again and is the judge (src/hub/registry.ts and
 * src/hub/scopes.ts); a test holds these to the same lists of valid and invalid
 * patterns as the hub's.
 */

/** A collection name: what a pattern's stem must be (reserved `_` names included). */
const COLLECTION = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
/** A group name. */
const GROUP = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Why a group name is not valid, or undefined when it is. */
export function groupNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'Give the group a name.';
  if (!GROUP.test(name))
    return 'Use 1 to 64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit.';
  return undefined;
}

/** Why a collection name is not valid for the collection policy (reserved `_` names included), or undefined. */
export function collectionNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'Give the collection a name.';
  if (!COLLECTION.test(name)) return 'Use 1 to 64 characters of A-Z a-z 0-9 _ . - not starting with . or -.';
  return undefined;
}

/** Why a scope pattern is not valid, or undefined when it is: `*`, a collection name, or a name's start and one `*`. */
export function scopePatternProblem(pattern: string): string | undefined {
  if (pattern === '*') return undefined;
  const stem = pattern.endsWith('*') ? pattern.slice(0, -1) : pattern;
  if (COLLECTION.test(stem)) return undefined;
  return `"${pattern}" is not a collection name, * or a name's beginning followed by * (sales.* or sales*).`;
}

/** The patterns typed in a field: separated by commas, spaces or new lines. */
export function parsePatterns(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
}
