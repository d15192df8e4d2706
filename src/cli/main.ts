#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072 node --max-semi-space-size=4 --expose-gc
// V8's young generation grows to 16 MB per semi-space under the allocation rate of
// a file transfer: held at 4 MB, an agent's peak memory is 20-40 MB lower for the
// same CPU (measured with bench/files.ts). Every launcher passes the flag: this
// line, `npm start`, and the service files.
// glibc's malloc raises its mmap threshold each time a large buffer is freed, and
// then keeps a transfer's chunk buffers (64-256 KiB) in a heap it rarely returns:
// held at 128 KiB, a child's peak during a 2 GiB fetch is about 30 MB lower for the
// same throughput (bench/files.ts). Other C libraries ignore the two variables.
// `--expose-gc` lets a transfer collect its dead buffers young (src/scavenge.ts).
//
// The launcher loads the program itself afterwards, so that running out of file
// descriptors while Node reads its modules is a clear error (src/cli/descriptors.ts).
import { tooFewDescriptors } from './descriptors.js';

let program: typeof import('./program.js');
try {
  program = await import('./program.js');
} catch (err) {
  const few = tooFewDescriptors(err);
  if (!few) throw err;
  process.stderr.write(`trosyn-sync: DESCRIPTORS_TOO_FEW: ${few}\n`);
  process.exit(1);
}
await program.run(process.argv);
