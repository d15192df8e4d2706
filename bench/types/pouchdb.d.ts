/**
 * The few parts of PouchDB 9 and express-pouchdb 4 that the PouchDB comparison
 * uses; neither package ships type definitions for these versions.
 */
declare module 'pouchdb' {
  interface Database {
    bulkDocs(docs: object[]): Promise<unknown[]>;
    info(): Promise<{ doc_count: number; update_seq: number | string; adapter?: string }>;
    close(): Promise<void>;
  }
  interface ReplicationResult {
    ok: boolean;
    docs_read: number;
    docs_written: number;
    doc_write_failures: number;
  }
  interface PouchDBStatic {
    new (name: string, options?: Record<string, unknown>): Database;
    replicate(
      source: Database | string,
      target: Database | string,
      options?: Record<string, unknown>,
    ): Promise<ReplicationResult>;
    defaults(options: Record<string, unknown>): PouchDBStatic;
  }
  const PouchDB: PouchDBStatic;
  export default PouchDB;
}

declare module 'express-pouchdb' {
  import type { RequestListener } from 'node:http';
  const expressPouchdb: (pouchdb: unknown, options?: Record<string, unknown>) => RequestListener;
  export default expressPouchdb;
}
