import { TrosynError } from '../errors.js';

/** A data directory that cannot be used: not a directory, not writable, or in use. */
export class DataDirError extends TrosynError {}

export class DataDirNotADirectoryError extends DataDirError {
  constructor(path: string) {
    super(
      'DATA_DIR_NOT_A_DIRECTORY',
      `${path} is a file, not a data directory; pass a directory with --data (it is created if missing)`,
      { path },
    );
  }
}

export class DataDirNotWritableError extends DataDirError {
  constructor(path: string, cause: unknown) {
    super(
      'DATA_DIR_NOT_WRITABLE',
      `cannot write in the data directory ${path} (${(cause as NodeJS.ErrnoException).code ?? String(cause)}); run as the user that owns it, or choose another with --data`,
      { path },
      { cause },
    );
  }
}

export class DataDirLockedError extends DataDirError {
  constructor(path: string, holder: { pid?: number; role?: string } | undefined) {
    super(
      'DATA_DIR_LOCKED',
      `another ${holder?.role ?? 'agent'} is running on ${path}${holder?.pid ? ` (process ${holder.pid})` : ''}; stop it first, or use another data directory`,
      { path, ...(holder?.pid !== undefined && { pid: holder.pid }) },
    );
  }
}
