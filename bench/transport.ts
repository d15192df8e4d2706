/**
 * Transport cost: the same 100,000 records (sampleBody, about 300 bytes of JSON)
 * synced hub -> child through SyncSession
 *   (a) over createChannelPair, the in-memory channel (the baseline), and
 *   (b) over real TLS 1.3 on 127.0.0.1 between a Hub and a Child,
 * both in this one process (one event loop serves both ends in each case), into
 * fresh SQLite replicas with the product's default durability (`full`), configured
 * as Child configures its own. Rounds alternate and medians are compared:
 * ratio = tls / in-memory. A third run per round applies into a replica with the
 * library defaults, which shows what the Child's replica settings cost.
 *
 * Beside it, what bounds the transport:
 * - raw TLS: a plain Node TLS 1.3 socket pair on loopback pushing 256 MiB in
 *   64 KiB writes, in this process and with the receiver in another process;
 * - each compression codec on real `sync.changes` frames (initial-sync batches of
 *   up to 1000 revisions and live batches of one): ratio and MB/s of the codec alone
 *   and of MessageCodec encode/decode (JSON, framing and validation included);
 * - the TLS sync with each codec forced. Hub and Child do not expose the codec
 *   offer (LocalPeer.compression), so this run composes the pieces they are made
 *   of: TransportServer, connectToHub, syncChannel and SyncSession.
 *
 * MB = 10^6 bytes throughout.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { createChild } from '../src/child/factory.js';
import { createHub } from '../src/hub/factory.js';
import type { Hub } from '../src/hub/hub.js';
import { MessageCodec } from '../src/protocol/codec.js';
import { type CompressionCodec, compress, decompress, supportedCodecs } from '../src/protocol/compression.js';
import { FrameDecoder } from '../src/protocol/frame.js';
import type { SyncChangesMessage, SyncMessage } from '../src/protocol/messages.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { DeviceId, Seq } from '../src/store/types.js';
import { createChannelPair } from '../src/sync/channel.js';
import { randomDeviceId } from '../src/sync/ids.js';
import { Replica, type WriteOp } from '../src/sync/replica.js';
import { SyncSession } from '../src/sync/session.js';
import { StaticAuthenticator } from '../src/transport/authenticator.js';
import { connectToHub } from '../src/transport/client.js';
import { type DeviceIdentity, loadOrCreateIdentity } from '../src/transport/identity.js';
import { TransportServer } from '../src/transport/server.js';
import { syncChannel } from '../src/transport/sync-channel.js';
import { APP_VERSION } from '../src/version.js';
import { median, perSec, round, sampleBody, scratch, sourceVersion } from './common.js';
import { Fixture, machineCpuMs } from './proc.js';

const QUICK = process.argv.includes('--quick');
const RECORDS = Number(process.env.BENCH_RECORDS ?? (QUICK ? 10_000 : 100_000));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 3 : 5));
const RAW_TLS_BYTES = (QUICK ? 64 : 256) * 2 ** 20;
const RAW_TLS_WRITE = 64 * 2 ** 10;
/** Live frames (one revision each) for the codec figures. */
const LIVE_FRAMES = QUICK ? 1000 : 5000;
const MB = 1e6;
const TARGET = 0.7;
const LOCALHOST = '127.0.0.1';

export async function run(): Promise<Record<string, unknown>> {
  // Connection.send leaves a 'close' (and 'error') listener behind each time it waits
  // for 'drain'; Node warns once per connection. Counted and reported, not printed.
  const leaks = { warnings: 0, example: '' };
  const printers = process.listeners('warning');
  process.removeAllListeners('warning');
  const onWarning = (warning: Error) => {
    if (warning.name !== 'MaxListenersExceededWarning') return console.warn(warning);
    leaks.warnings++;
    leaks.example ||= warning.message;
  };
  process.on('warning', onWarning);
  try {
    return { ...(await measure()), listenerLeak: leaks };
  } finally {
    process.off('warning', onWarning);
    for (const printer of printers) process.on('warning', printer);
  }
}

async function measure(): Promise<Record<string, unknown>> {
  const dir = scratch('trosyn-bench-transport-');
  const hubDir = join(dir, 'hub');
  const hubIdentity = await loadOrCreateIdentity(join(hubDir, 'identity'), { commonName: 'trosyn-hub' });

  // The hub's store, written once; the in-memory rounds read it through a second handle.
  const preloadMs = await preload(hubDir, hubIdentity.deviceId);
  const source = new Replica({
    store: new SqliteStore({ path: join(hubDir, 'trosyn.db') }),
    deviceId: hubIdentity.deviceId,
    role: 'hub',
  });
  await source.start();
  console.log(`records ${RECORDS.toLocaleString()} preloaded in ${(preloadMs / 1000).toFixed(1)} s`);

  const auth = new StaticAuthenticator([]);
  const hub = createHub(
    { dataDir: hubDir, host: LOCALHOST, port: 0, discovery: false },
    { authenticator: auth },
  );
  await hub.start();

  const memMs: number[] = [];
  const plainMs: number[] = [];
  const tlsRuns: TlsRun[] = [];
  // What else ran on the machine meanwhile (its CPU time less this process's), as a noise gauge.
  const machine0 = machineCpuMs();
  const own0 = process.cpuUsage();
  const wall0 = performance.now();
  try {
    for (let r = 0; r < ROUNDS; r++) {
      memMs.push(await inMemorySync(source, join(dir, `mem-${r}.db`)));
      tlsRuns.push(await hubChildSync(hub, auth, join(dir, `child-${r}`)));
      plainMs.push(await inMemorySync(source, join(dir, `plain-${r}.db`), true));
      console.log(
        `round ${r + 1}: in-memory ${perSec(RECORDS, memMs[r] as number).toLocaleString()} records/s, TLS ${perSec(RECORDS, (tlsRuns[r] as TlsRun).ms).toLocaleString()} records/s, in-memory into a plain replica ${perSec(RECORDS, plainMs[r] as number).toLocaleString()} records/s`,
      );
    }
  } finally {
    await hub.stop();
  }

  const own = process.cpuUsage(own0);
  const otherCpuMsPerSec = Math.round(
    Math.max(0, machineCpuMs().busy - machine0.busy - (own.user + own.system) / 1000) /
      ((performance.now() - wall0) / 1000),
  );
  const inMemoryRecordsPerSec = perSec(RECORDS, median(memMs));
  const inMemoryPlainReplicaRecordsPerSec = perSec(RECORDS, median(plainMs));
  const tlsRecordsPerSec = perSec(RECORDS, median(tlsRuns.map((t) => t.ms)));
  const ratio = round(tlsRecordsPerSec / inMemoryRecordsPerSec);

  const rawInProcess: number[] = [];
  const rawTwoProcesses: number[] = [];
  const childIdentity = await loadOrCreateIdentity(join(dir, 'raw-client', 'identity'));
  for (let r = 0; r < ROUNDS; r++) {
    rawInProcess.push(await rawTlsInProcess(hubIdentity, childIdentity));
    rawTwoProcesses.push(await rawTlsTwoProcesses(childIdentity, join(dir, 'sink')));
  }
  const rawTlsMBps = round(RAW_TLS_BYTES / MB / (median(rawInProcess) / 1000), 1);
  const rawTlsMBpsTwoProcesses = round(RAW_TLS_BYTES / MB / (median(rawTwoProcesses) / 1000), 1);
  console.log(
    `raw TLS 1.3 loopback ${rawTlsMBps} MB/s in one process, ${rawTlsMBpsTwoProcesses} MB/s across two`,
  );

  const codecs = await codecFigures(source);
  const forced = await forcedCodecSync(source, hubIdentity, dir);
  await source.stop();

  const tlsMedian = [...tlsRuns].sort((a, b) => a.ms - b.ms)[Math.floor(tlsRuns.length / 2)] as TlsRun;
  const wireMBps = round(tlsMedian.frameBytes / MB / (tlsMedian.ms / 1000), 2);
  console.log('');
  console.log(
    `records                      ${RECORDS.toLocaleString()} (sampleBody), median of ${ROUNDS}, durability full`,
  );
  console.log(
    `in-memory SyncSession pair   ${inMemoryRecordsPerSec.toLocaleString()} records/s   (baseline, 1.00)`,
  );
  console.log(
    `Hub -> Child over TLS        ${tlsRecordsPerSec.toLocaleString()} records/s   (ratio ${ratio}; target >= ${TARGET}: ${ratio >= TARGET ? 'met' : 'NOT met'}; ${tlsMedian.codec}, ${wireMBps} MB/s of frames)`,
  );
  console.log(
    `in-memory, plain replica     ${inMemoryPlainReplicaRecordsPerSec.toLocaleString()} records/s   (x${round(inMemoryPlainReplicaRecordsPerSec / inMemoryRecordsPerSec)}: library defaults, without the Child's replica settings)`,
  );
  console.log(
    `raw TLS 1.3 socket pair      ${rawTlsMBps} MB/s (one process), ${rawTlsMBpsTwoProcesses} MB/s (two)`,
  );
  for (const c of codecs.sync) {
    console.log(
      `codec ${c.codec.padEnd(5)} initial-sync frames: ratio ${c.ratio}, compress ${c.compressMBps} MB/s, decompress ${c.decompressMBps} MB/s, encode ${c.encodeMBps} MB/s, decode ${c.decodeMBps} MB/s`,
    );
  }
  for (const f of forced.runs) {
    console.log(
      `TLS sync with ${f.codec.padEnd(5)}        ${f.recordsPerSec.toLocaleString()} records/s   (x${round(f.recordsPerSec / inMemoryRecordsPerSec)} in-memory; ${f.wireMBps} MB/s of frames)`,
    );
  }

  return {
    records: RECORDS,
    tlsRecordsPerSec,
    inMemoryRecordsPerSec,
    ratio,
    target: TARGET,
    met: ratio >= TARGET,
    rawTlsMBps,
    rawTlsMBpsTwoProcesses,
    tlsWireMBps: wireMBps,
    inMemoryPlainReplicaRecordsPerSec,
    setup: {
      inProcess: true,
      what: 'hub -> child initial sync of the same records; (a) SyncSession pair over createChannelPair into a replica configured as Child configures its own (role child, watchExternalWritesMs 250); (b) Hub and Child over TLS 1.3 on 127.0.0.1 (handshake codec, StaticAuthenticator); both ends in this one process in both cases. inMemoryPlainReplica: (a) into a replica with library defaults',
      timing:
        'in-memory: both sessions started to both caught up; TLS: Child.start() to its caught-up event (opening its store, TCP, TLS, handshake included)',
      durability: 'full (product default) on the receiving replica in both cases',
      rawTls: `${RAW_TLS_BYTES / 2 ** 20} MiB in ${RAW_TLS_WRITE / 1024} KiB writes over a TLS 1.3 socket pair (Node defaults, the hub's and a child's certificates); one process, and the receiver in a second process`,
      rounds: ROUNDS,
      units: 'MB = 10^6 bytes',
      otherCpuMsPerSec: `${otherCpuMsPerSec} ms of CPU per second used by other processes on this 2-core machine during the sync rounds`,
    },
    inMemoryMsPerRound: memMs.map(Math.round),
    inMemoryPlainReplicaMsPerRound: plainMs.map(Math.round),
    tls: {
      msPerRound: tlsRuns.map((t) => Math.round(t.ms)),
      connectedToCaughtUpMsPerRound: tlsRuns.map((t) => Math.round(t.afterConnectMs)),
      codec: tlsMedian.codec,
      frameBytes: tlsMedian.frameBytes,
      frameBytesPerRecord: round(tlsMedian.frameBytes / RECORDS, 1),
      hubConnectionCloseListenersAfterSync: tlsMedian.closeListeners,
    },
    rawTlsMsPerRound: {
      inProcess: rawInProcess.map(Math.round),
      twoProcesses: rawTwoProcesses.map(Math.round),
    },
    codecs,
    forcedCodecSync: forced,
    preloadMs: Math.round(preloadMs),
    source: sourceVersion(),
  };
}

async function preload(hubDir: string, deviceId: DeviceId): Promise<number> {
  const replica = new Replica({
    store: new SqliteStore({ path: join(hubDir, 'trosyn.db'), synchronous: 'off' }),
    deviceId,
    role: 'hub',
  });
  await replica.start();
  const start = performance.now();
  for (let i = 0; i < RECORDS; i += 5000) {
    const ops: WriteOp[] = [];
    for (let j = i; j < Math.min(i + 5000, RECORDS); j++)
      ops.push({ op: 'put', collection: 'requests', id: `r${j}`, body: sampleBody(j) });
    await replica.writeMany(ops);
  }
  const ms = performance.now() - start;
  await replica.stop();
  return ms;
}

/**
 * How Child configures its replica (src/child/child.ts): the baseline and the
 * forced-codec runs apply into the same kind of replica as the Child does, so that
 * the ratio measures the transport and not a replica setting.
 */
const CHILD_REPLICA = { role: 'child', watchExternalWritesMs: 250 } as const;

/** A fresh receiving replica; `plain` leaves out the Child's settings (library defaults). */
async function openTarget(
  path: string,
  deviceId: DeviceId = randomDeviceId(),
  plain = false,
): Promise<Replica> {
  const replica = new Replica({
    store: new SqliteStore({ path }),
    deviceId,
    ...(plain ? {} : CHILD_REPLICA),
  });
  await replica.start();
  return replica;
}

async function expectRecords(replica: Replica, what: string): Promise<void> {
  const { records } = await replica.stats();
  if (records !== RECORDS) throw new Error(`${what}: target holds ${records} records, expected ${RECORDS}`);
}

/** (a) Two SyncSessions over the in-memory channel pair; both started to both caught up. */
async function inMemorySync(source: Replica, path: string, plain = false): Promise<number> {
  const target = await openTarget(path, randomDeviceId(), plain);
  const [a, b] = createChannelPair<SyncMessage>();
  const hubSide = new SyncSession({ replica: source, channel: a, peer: target.deviceId });
  const childSide = new SyncSession({ replica: target, channel: b, peer: source.deviceId });
  const start = performance.now();
  await Promise.all([hubSide.start(), childSide.start()]);
  await Promise.all([hubSide.whenCaughtUp(), childSide.whenCaughtUp()]);
  const ms = performance.now() - start;
  await childSide.stop();
  await hubSide.stop();
  await expectRecords(target, 'in-memory');
  await target.stop();
  return ms;
}

interface TlsRun {
  /** 'close' listeners on the hub's connection to the child after the sync (leaked by send). */
  closeListeners: number;
  ms: number;
  afterConnectMs: number;
  codec: string;
  frameBytes: number;
}

/** (b) A fresh Child of the running Hub; Child.start() to its caught-up event. */
async function hubChildSync(hub: Hub, auth: StaticAuthenticator, dataDir: string): Promise<TlsRun> {
  const identity = await loadOrCreateIdentity(join(dataDir, 'identity'), { commonName: 'bench-child' });
  auth.allow(identity.deviceId);
  const child = createChild({
    dataDir,
    hubId: hub.deviceId,
    hubAddresses: () => [{ host: LOCALHOST, port: hub.port }],
    discovery: false,
  });
  let connectedAt = 0;
  child.once('connected', () => (connectedAt = performance.now()));
  const caughtUp = once(child, 'caught-up');
  const start = performance.now();
  await child.start();
  await caughtUp;
  const end = performance.now();
  // The hub's server is private; its connection to this child holds the frame counts.
  const server = (hub as unknown as { server?: TransportServer }).server;
  const conn = server?.list().find((c) => c.peer === identity.deviceId);
  const stats = conn?.getStats();
  const closeListeners = conn?.listenerCount('close') ?? 0;
  await expectRecords(child.replica, 'Hub -> Child');
  await child.stop();
  return {
    ms: end - start,
    afterConnectMs: end - connectedAt,
    codec: supportedCodecs()[0] as string,
    frameBytes: stats ? stats.bytesIn + stats.bytesOut : 0,
    closeListeners,
  };
}

function tlsSecure(identity: DeviceIdentity) {
  return {
    key: identity.keyPem,
    cert: identity.certPem,
    minVersion: 'TLSv1.3' as const,
    maxVersion: 'TLSv1.3' as const,
    rejectUnauthorized: false,
  };
}

/** Writes RAW_TLS_BYTES into `socket` in RAW_TLS_WRITE pieces, waiting for drain. */
async function push(socket: TLSSocket): Promise<void> {
  const chunk = Buffer.alloc(RAW_TLS_WRITE, 0x5a);
  for (let sent = 0; sent < RAW_TLS_BYTES; sent += RAW_TLS_WRITE) {
    if (!socket.write(chunk)) await once(socket, 'drain');
  }
}

/** A plain TLS 1.3 socket pair in this process: ms to move RAW_TLS_BYTES. */
async function rawTlsInProcess(server: DeviceIdentity, client: DeviceIdentity): Promise<number> {
  let received = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (done = resolve));
  const tlsServer = createServer({ ...tlsSecure(server), requestCert: true }, (socket) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= RAW_TLS_BYTES) done();
    });
  });
  tlsServer.listen(0, LOCALHOST);
  await once(tlsServer, 'listening');
  const socket = connect({
    ...tlsSecure(client),
    host: LOCALHOST,
    port: (tlsServer.address() as AddressInfo).port,
    checkServerIdentity: () => undefined,
  });
  await once(socket, 'secureConnect');
  const start = performance.now();
  await push(socket);
  await all;
  const ms = performance.now() - start;
  socket.destroy();
  tlsServer.close();
  return ms;
}

/** The same with the receiver in another process, which answers one byte when it has everything. */
async function rawTlsTwoProcesses(client: DeviceIdentity, dir: string): Promise<number> {
  const { fixture, ready } = await Fixture.start('tls-sink', 'tls-sink', [dir, String(RAW_TLS_BYTES)]);
  try {
    const socket = connect({
      ...tlsSecure(client),
      host: LOCALHOST,
      port: ready.port as number,
      checkServerIdentity: () => undefined,
    });
    await once(socket, 'secureConnect');
    const answered = once(socket, 'data');
    const start = performance.now();
    await push(socket);
    await answered;
    const ms = performance.now() - start;
    socket.destroy();
    return ms;
  } finally {
    await fixture.stop();
  }
}

interface CodecFigure {
  codec: CompressionCodec;
  frames: number;
  jsonBytes: number;
  compressedBytes: number;
  /** Bytes out / bytes in. */
  ratio: number;
  /** The codec alone (compress / decompress), MB of JSON per second; null for 'none'. */
  compressMBps: number | null;
  decompressMBps: number | null;
  /** MessageCodec.encode (JSON.stringify, codec, frame) and FrameDecoder + decode (codec, JSON.parse, schema). */
  encodeMBps: number;
  decodeMBps: number;
}

/**
 * Each codec on real sync.changes messages from the hub's change log: the
 * initial-sync batches (as SyncSession cuts them: 1000 revisions or 1 MiB) and
 * LIVE_FRAMES live batches of one revision.
 */
async function codecFigures(
  source: Replica,
): Promise<{ sync: CodecFigure[]; live: CodecFigure[]; note: string }> {
  const syncMessages: SyncChangesMessage[] = [];
  for (let since = 0; ;) {
    const batch = await source.changesSince({ since: since as Seq, limit: 1000, maxBytes: 1024 * 1024 });
    if (batch.revisions.length === 0) break;
    syncMessages.push({ type: 'sync.changes', log: 'c'.repeat(32), ...batch });
    since = batch.upTo;
  }
  const liveMessages: SyncChangesMessage[] = [];
  for (let i = 0; i < LIVE_FRAMES; i++) {
    const since = Math.floor((i * RECORDS) / LIVE_FRAMES);
    const batch = await source.changesSince({ since: since as Seq, limit: 1 });
    liveMessages.push({ type: 'sync.changes', log: 'c'.repeat(32), ...batch, more: false });
  }
  const measureAll = (messages: SyncChangesMessage[]) =>
    supportedCodecs().map((codec) => {
      const rounds = Array.from({ length: ROUNDS }, () => measureCodec(codec, messages));
      const first = rounds[0] as CodecFigure;
      const pick = (key: 'encodeMBps' | 'decodeMBps') => median(rounds.map((r) => r[key]));
      const pickCodec = (key: 'compressMBps' | 'decompressMBps') =>
        first[key] === null ? null : median(rounds.map((r) => r[key] as number));
      return {
        ...first,
        compressMBps: pickCodec('compressMBps'),
        decompressMBps: pickCodec('decompressMBps'),
        encodeMBps: pick('encodeMBps'),
        decodeMBps: pick('decodeMBps'),
      };
    });
  return {
    sync: measureAll(syncMessages),
    live: measureAll(liveMessages),
    note: 'MessageCodec leaves payloads of 512 bytes or less uncompressed, and sends a payload raw when compression does not make it smaller',
  };
}

function measureCodec(codec: CompressionCodec, messages: SyncChangesMessage[]): CodecFigure {
  const json = messages.map((m) => Buffer.from(JSON.stringify(m), 'utf8'));
  const jsonBytes = json.reduce((n, b) => n + b.length, 0);
  const max = 16 * 2 ** 20;

  let t = performance.now();
  const packed = json.map((b) => compress(codec, b));
  const compressMs = performance.now() - t;
  t = performance.now();
  for (const [i, p] of packed.entries()) {
    const out = decompress(codec, p, max);
    if (out.length !== (json[i] as Buffer).length) throw new Error(`${codec} round trip lost bytes`);
  }
  const decompressMs = performance.now() - t;

  const encoder = new MessageCodec({ compression: codec });
  t = performance.now();
  const frames = messages.map((m) => encoder.encode(m));
  const encodeMs = performance.now() - t;
  const decoder = new MessageCodec();
  const cutter = new FrameDecoder();
  t = performance.now();
  let decoded = 0;
  for (const frame of frames)
    for (const f of cutter.push(frame)) if (decoder.decode(f).kind === 'message') decoded++;
  const decodeMs = performance.now() - t;
  if (decoded !== messages.length)
    throw new Error(`${codec}: decoded ${decoded} of ${messages.length} frames`);

  const frameBytes = frames.reduce((n, f) => n + f.length, 0);
  const mbps = (ms: number) => round(jsonBytes / MB / (ms / 1000), 1);
  // 'none' hands the buffer back untouched: it has no speed to speak of.
  const codecMBps = (ms: number) => (codec === 'none' ? null : mbps(ms));
  return {
    codec,
    frames: messages.length,
    jsonBytes,
    compressedBytes: frameBytes,
    ratio: round(frameBytes / jsonBytes, 3),
    compressMBps: codecMBps(compressMs),
    decompressMBps: codecMBps(decompressMs),
    encodeMBps: mbps(encodeMs),
    decodeMBps: mbps(decodeMs),
  };
}

/**
 * The TLS sync with each codec forced through LocalPeer.compression on both ends
 * (TransportServer + connectToHub + SyncSession, which is what Hub and Child run):
 * connect to caught-up, median of ROUNDS.
 */
async function forcedCodecSync(
  source: Replica,
  hubIdentity: DeviceIdentity,
  dir: string,
): Promise<{
  note: string;
  runs: Array<{
    codec: string;
    recordsPerSec: number;
    wireMBps: number;
    frameBytes: number;
    msPerRound: number[];
  }>;
}> {
  const runs = [];
  for (const codec of supportedCodecs()) {
    const ms: number[] = [];
    let frameBytes = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const result = await forcedOnce(source, hubIdentity, codec, join(dir, `forced-${codec}-${r}`));
      ms.push(result.ms);
      frameBytes = result.frameBytes;
    }
    const m = median(ms);
    runs.push({
      codec,
      recordsPerSec: perSec(RECORDS, m),
      wireMBps: round(frameBytes / MB / (m / 1000), 2),
      frameBytes,
      msPerRound: ms.map(Math.round),
    });
  }
  return {
    note: 'Hub and Child do not let the codec offer be set (LocalPeer.compression is not among their options): these runs compose TransportServer, connectToHub, syncChannel and SyncSession as Hub and Child do, in this process, timed from connectToHub() to both sessions caught up',
    runs,
  };
}

async function forcedOnce(
  source: Replica,
  hubIdentity: DeviceIdentity,
  codec: CompressionCodec,
  dataDir: string,
): Promise<{ ms: number; frameBytes: number }> {
  const identity = await loadOrCreateIdentity(join(dataDir, 'identity'));
  const target = await openTarget(join(dataDir, 'trosyn.db'), identity.deviceId);
  const sessions: SyncSession[] = [];
  let hubSideCaughtUp: Promise<void> | undefined;
  const local = { name: 'bench', appVersion: APP_VERSION, heartbeatMs: 15_000, compression: [codec] };
  const server = new TransportServer({
    identity: hubIdentity,
    local: { ...local, role: 'hub' },
    authenticator: new StaticAuthenticator([identity.deviceId]),
    host: LOCALHOST,
    port: 0,
    onConnection: (conn, peer) => {
      const session = new SyncSession({ replica: source, channel: syncChannel(conn), peer: peer.deviceId });
      sessions.push(session);
      hubSideCaughtUp = session.start().then(() => session.whenCaughtUp());
    },
  });
  await server.start();
  try {
    const start = performance.now();
    const hub = await connectToHub(
      { host: LOCALHOST, port: server.port },
      { identity, local: { ...local, role: 'child' }, hubId: hubIdentity.deviceId },
    );
    if (hub.handshake.compression !== codec)
      throw new Error(`asked for ${codec}, got ${hub.handshake.compression}`);
    const session = new SyncSession({ replica: target, channel: syncChannel(hub.conn), peer: hub.hubId });
    sessions.push(session);
    await session.start();
    await session.whenCaughtUp();
    await hubSideCaughtUp;
    const ms = performance.now() - start;
    const stats = hub.conn.getStats();
    for (const s of sessions) await s.stop();
    await expectRecords(target, `forced ${codec}`);
    return { ms, frameBytes: stats.bytesIn + stats.bytesOut };
  } finally {
    await server.stop();
    await target.stop();
  }
}
