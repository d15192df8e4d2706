import { z } from 'zod';
import { TrosynError } from '../errors.js';
import type { JsonObject } from '../store/types.js';

/** Longest file name, in characters. */
export const MAX_FILE_NAME = 255;

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * A file version as its record's body: what the file is (name, size, type, time,
 * SHA-256 of the whole content) and where its content is (the chunks of its chunk
 * list). The record machinery gives it versions, history, conflicts and scopes; the
 * chunks travel and are stored apart.
 */
export const fileBodySchema = z.object({
  name: z.string().min(1).max(MAX_FILE_NAME),
  size: z.number().int().nonnegative(),
  type: z.string().max(255),
  modifiedAt: z.number().int().nonnegative(),
  sha256: hex64,
  chunkCount: z.number().int().nonnegative(),
  /** The chunks the chunk list is kept as, in order (see manifest.ts). */
  manifest: z.array(hex64).max(100_000),
});

export type FileBody = z.infer<typeof fileBodySchema>;

/** A file name that cannot be a file's name here. */
export class InvalidFileNameError extends TrosynError {
  constructor(name: string, reason: string) {
    super('INVALID_FILE_NAME', `invalid file name ${JSON.stringify(name.slice(0, 80))}: ${reason}`, {
      reason,
    });
  }
}

/** A record that is not a file version (its body does not describe one). */
export class NotAFileError extends TrosynError {
  constructor(collection: string, id: string) {
    super('NOT_A_FILE', `${collection}/${id} is a record, not a file version`, { collection, id });
  }
}

// C0 and C1 control characters and the line and paragraph separators: the
// characters a record id may not have either (src/sync/ids.ts), so a name that passes
// here is always a valid record id and nothing is stored for a name the record refuses.
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
/** Half of a UTF-16 surrogate pair without its other half: no character at all. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Checks a file name: 1 to 255 characters, no control characters, whole Unicode
 * characters, `/` only between folder names, and no `.` or `..` folder, so that a
 * name written to disk as a path stays inside the folder it is written to.
 */
export function assertFileName(name: string): void {
  if (typeof name !== 'string' || name.length === 0)
    throw new InvalidFileNameError(String(name), 'it is empty');
  if (name.length > MAX_FILE_NAME)
    throw new InvalidFileNameError(name, `it has ${name.length} characters; at most ${MAX_FILE_NAME}`);
  if (CONTROL.test(name)) throw new InvalidFileNameError(name, 'it has control characters');
  if (LONE_SURROGATE.test(name))
    throw new InvalidFileNameError(name, 'it is not valid Unicode (half of a surrogate pair)');
  if (name.includes('\\')) throw new InvalidFileNameError(name, 'use / between folders, not \\');
  for (const part of name.split('/')) {
    if (part === '') throw new InvalidFileNameError(name, 'it starts or ends with /, or has //');
    if (part === '.' || part === '..') throw new InvalidFileNameError(name, `it has a "${part}" folder`);
  }
}

/** The file version a record's body describes, or undefined when it is no file. */
export function asFileBody(body: JsonObject | null | undefined): FileBody | undefined {
  const parsed = fileBodySchema.safeParse(body);
  return parsed.success ? parsed.data : undefined;
}
