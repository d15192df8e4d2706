/**
 * The SHA-256 of an open file, computed on a worker thread that reads the file
 * itself, while the calling thread reads the same bytes to cut and hash chunks: a
 * large file's two hashing passes run on two cores. The worker reads the file
 * descriptor it is given (threads share the process's descriptors) into one buffer
 * it reuses, so it holds no more than that buffer.
 */
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');
const { createHash } = require('node:crypto');
const hash = createHash('sha256');
const buffer = Buffer.allocUnsafe(1 << 20);
let size = 0;
for (;;) {
  const n = readSync(workerData.fd, buffer, 0, buffer.length, size);
  if (n === 0) break;
  hash.update(buffer.subarray(0, n));
  size += n;
}
parentPort.postMessage({ sha256: hash.digest('hex'), size });
`;

/** What the worker read: the SHA-256 of the file's bytes and how many there were. */
export interface FileDigest {
  sha256: string;
  size: number;
}

/**
 * Hashes the file open as `fd` from its start to its end on a worker thread. Rejects
 * with the read's error (the caller names the file). The descriptor must stay open
 * until this settles.
 */
export function sha256OfFileInWorker(fd: number): Promise<FileDigest> {
  return new Promise<FileDigest>((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { fd } });
    let settled = false;
    worker.once('message', (digest: FileDigest) => {
      settled = true;
      resolve(digest);
    });
    worker.once('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the hashing thread ended (exit code ${code}) before it finished`));
    });
  });
}
