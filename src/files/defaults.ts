/**
 * The collection files go to unless another is named. In a module of its own, so
 * that the command line can name it without loading the files code.
 */
export const DEFAULT_FILES_COLLECTION = 'files';
