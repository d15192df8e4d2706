#!/usr/bin/env node
// A TCP relay that delays what it forwards, for the chaos runs (the kernel here has
// no netem): every chunk read on one side is written to the other after a seeded
// random delay of mean +- jitter ms. Segments of one stream leave in order, each
// held back until the ones before it are out, which is what a receiving TCP makes of
// reordered packets (it holds later data until the gap is filled): the application
// above sees the same stalls and bursts.
//
//   node delay-proxy.mjs LISTEN_PORT TARGET_HOST TARGET_PORT SEED
//
// Standard input takes commands, one a line: `delay MEAN JITTER` (ms; `delay 0 0`
// forwards at once). Prints `listening` when ready and `delay MEAN JITTER` once a
// command is applied.
import { createServer, connect } from 'node:net';
import { createInterface } from 'node:readline';

const [listenPort, targetHost, targetPort, seedArg] = process.argv.slice(2);
if (!listenPort || !targetHost || !targetPort) {
  console.error('usage: delay-proxy.mjs LISTEN_PORT TARGET_HOST TARGET_PORT [SEED]');
  process.exit(2);
}

let state = Number(seedArg ?? 1) >>> 0;
/** mulberry32: the same seed, the same delays. */
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
}

let mean = 0;
let jitter = 0;

/** Forwards `from` to `to`, each chunk after its delay, strictly in order (one queue, one timer). */
function pipeDelayed(from, to) {
  const queue = [];
  let timer;
  let ended = false;
  const pump = () => {
    timer = undefined;
    const now = Date.now();
    while (queue.length > 0 && queue[0].at <= now) {
      const { chunk } = queue.shift();
      if (!to.destroyed) to.write(chunk);
    }
    if (queue.length > 0) timer = setTimeout(pump, queue[0].at - now);
    else if (ended) to.end();
  };
  from.on('data', (chunk) => {
    const delay = Math.max(0, mean + (random() * 2 - 1) * jitter);
    // Never before the chunk ahead of it: a stream's bytes keep their order.
    const at = Math.max(queue.at(-1)?.at ?? 0, Date.now() + delay);
    queue.push({ chunk, at });
    if (timer === undefined) pump();
  });
  from.on('end', () => {
    ended = true;
    if (timer === undefined) pump();
  });
}

const server = createServer((down) => {
  const up = connect({ host: targetHost, port: Number(targetPort) });
  // A hub that cannot be reached in time closes the client's side too: no half-open relay.
  up.setTimeout(10_000, () => up.destroy());
  up.once('connect', () => up.setTimeout(0));
  const close = () => {
    down.destroy();
    up.destroy();
  };
  down.on('error', close);
  up.on('error', close);
  down.on('close', close);
  up.on('close', close);
  pipeDelayed(down, up);
  pipeDelayed(up, down);
});
server.listen(Number(listenPort), '0.0.0.0', () => console.log('listening'));

createInterface({ input: process.stdin }).on('line', (line) => {
  const m = /^delay (\d+) (\d+)$/.exec(line.trim());
  if (!m) return;
  mean = Number(m[1]);
  jitter = Number(m[2]);
  console.log(`delay ${mean} ${jitter}`);
});
