/**
 * Resource faults: a hub and two children on loopback under writes on every node,
 * and one node's data directory (a small tmpfs of its own) filled to the last byte
 * or turned read-only while the agents run. During the fault the node must name the
 * cause with an error code, keep serving what it can (reads, status, its API) and
 * stay up; when the fault clears, sync must resume by itself, no restart. After
 * convergence every acknowledged write is on every node and every SQLite file
 * passes `PRAGMA integrity_check`.
 *
 * The tmpfs is mounted on this machine (root only) and unmounted in `finally`, so
 * the CLI and the final checks read the same files the agent writes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { commandExists } from '../netns/harness.js';
import { freePort, runCli } from '../e2e/helpers.js';
import { noise, sha } from '../fixtures/bytes.js';
import { COLLECTION, Cluster, type ChaosNode, errorCode } from './cluster.js';
import { type ExperimentResult, outcome } from './result.js';
import { SeededRandom } from './seeded.js';

/** The fault done to one node's data directory. */
export type ResourceFault = 'disk-full' | 'read-only';

/** Options of {@link resourceFault}. */
export interface ResourceOptions {
  seed: number;
  /** A fresh directory for the nodes' data. */
  dir: string;
  fault: ResourceFault;
  /** The node whose data directory the fault hits. */
  target: 'hub' | 'child';
  /** How long the fault lasts once it shows (ms). */
  faultMs: number;
  /** Time allowed to converge after the fault clears (ms). Default 60 s. */
  convergeTimeoutMs?: number;
  log?: (line: string) => void;
}

/** The codes a write may fail with while the fault lasts: anything else is a violation. */
const EXPECTED_CODES: Record<ResourceFault, string[]> = {
  'disk-full': ['STORE_WRITE_FAILED', 'CHUNK_STORE_FULL'],
  'read-only': ['STORE_WRITE_FAILED', 'STORE_OPEN_FAILED', 'CHUNK_STORE_FAILED'],
};

/** Why resource faults cannot run on this machine, or undefined. */
export function resourceSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root, to mount a small tmpfs';
  if (!commandExists('mount') || !commandExists('umount')) return 'needs mount and umount (util-linux)';
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Fills the filesystem of `dir` with one file until it refuses more; returns the bytes written. */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(64 * 1024, 0x5a);
  let written = 0;
  try {
    for (let i = 0; i < 1 << 16; i++) written += writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  return written;
}

/** GET on a child's local API; resolves with the status and body. */
async function childApi(node: ChaosNode, path: string): Promise<{ status: number; body: unknown }> {
  const token = readFileSync(join(node.data, 'api-token'), 'utf8').trim();
  const res = await fetch(`http://127.0.0.1:${node.apiPort}${path}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/**
 * What the faulty node still serves: the status, and a record acknowledged before
 * the fault, read back; a list of what failed ([] when all answered).
 */
async function stillServing(cluster: Cluster, node: ChaosNode, fault: ResourceFault): Promise<string[]> {
  const out: string[] = [];
  const before = cluster.acked.find((w) => w.node === node.name && w.phase === 'before');
  const proc = node.agent?.proc;
  if (!proc || proc.exitCode !== null || proc.signalCode !== null)
    out.push(`${node.name}'s agent is not running`);
  if (node.role === 'child') {
    const status = await childApi(node, '/api/status').catch((err: Error) => ({
      status: 0,
      body: err.message,
    }));
    if (status.status !== 200) out.push(`status answered ${status.status}: ${JSON.stringify(status.body)}`);
    if (before) {
      const read = await childApi(node, `/api/records/${COLLECTION}/${before.id}`).catch((err: Error) => ({
        status: 0,
        body: err.message,
      }));
      if (read.status !== 200) out.push(`a read answered ${read.status}: ${JSON.stringify(read.body)}`);
    }
  }
  if (node.role === 'hub' && fault === 'disk-full') {
    // A child that meets the hub's full disk is told why: the code, not a bare closed connection.
    const child = cluster.children[0] as ChaosNode;
    const status = await childApi(child, '/api/status').catch(() => undefined);
    const code = (status?.body as { connection?: { lastError?: { code?: string } } } | undefined)?.connection
      ?.lastError?.code;
    if (code !== 'STORE_WRITE_FAILED')
      out.push(
        `${child.name}'s status gives ${code ?? 'no error'} as the last error, not the hub's STORE_WRITE_FAILED`,
      );
  }
  // The CLI opens the store beside the agent: reads and status must work with the disk full.
  const status = await runCli(['status', '--data', node.data]).catch((err: Error) => err);
  if (status instanceof Error) out.push(`trosyn-sync status failed: ${status.message}`);
  if (before) {
    const got = await runCli(['get', COLLECTION, before.id, '--data', node.data]).catch((err: Error) => err);
    if (got instanceof Error) out.push(`trosyn-sync get failed: ${got.message}`);
  }
  // And the files recorded: listing them opens the chunk store and the content index.
  const listed = await runCli(['files', 'ls', '--data', node.data]).catch((err: Error) => err);
  if (listed instanceof Error) out.push(`trosyn-sync files ls failed: ${listed.message}`);
  return out;
}

/** Runs one resource fault; resolves with the figures (it does not judge them: see `problems`). */
export async function resourceFault(o: ResourceOptions): Promise<ExperimentResult> {
  const began = Date.now();
  const rng = new SeededRandom(o.seed);
  const port = await freePort();
  const cluster = new Cluster(o.dir, 2, {
    hubArgs: ['--host', '127.0.0.1', '--port', String(port), '--no-discovery', '--no-admin-api'],
    childArgs: ['--hub', `127.0.0.1:${port}`, '--no-discovery', '--retry-max', '1000', '--api-port', '0'],
    pairAddress: `127.0.0.1:${port}`,
    childWrites: 'api',
  });
  const node = o.target === 'hub' ? cluster.hub : (cluster.children[0] as ChaosNode);
  const other = o.target === 'hub' ? (cluster.children[0] as ChaosNode) : cluster.hub;
  const mounts: string[] = [];
  const violations: string[] = [];
  const files: Array<{ name: string; rev: string; sha: string }> = [];
  const fileFailures: string[] = [];
  const putFile = async (name: string, size: number): Promise<void> => {
    const path = join(o.dir, name);
    const bytes = noise(size, files.length + fileFailures.length + 1);
    writeFileSync(path, bytes);
    try {
      const v = await runCli(['files', 'put', path, '--data', node.data]);
      files.push({ name, rev: v.rev as string, sha: sha(bytes) });
    } catch (err) {
      fileFailures.push(errorCode(err));
    } finally {
      rmSync(path, { force: true });
    }
  };
  let filled = 0;
  let convergeMs = 0;
  try {
    // The node's data directory on a tmpfs of its own: 24 MiB, its agent's files and some room.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0700', 'tmpfs', node.data]);
    mounts.push(node.data);
    await cluster.start();
    cluster.phase = 'before';
    cluster.startWriters(rng, [20, 60]);
    await sleep(1_500);
    await putFile('before.bin', 512 * 1024);
    cluster.phase = 'fault';
    const failedBefore = cluster.failedWrites;
    if (o.fault === 'disk-full') {
      filled = fill(join(node.data, 'filler'));
    } else {
      // A read-only bind mount over the directory: every file opened from now on is
      // read-only (EROFS); files the agent already has open stay writable, as they do
      // when a running system's mount is made read-only under it.
      execFileSync('mount', ['--bind', node.data, node.data]);
      mounts.push(node.data);
      execFileSync('mount', ['-o', 'remount,bind,ro', node.data]);
    }
    o.log?.(`${o.fault} on ${node.name}${filled ? ` (${Math.round(filled / 1024)} KiB of filler)` : ''}`);
    // A full disk shows within a few seconds: the node's writes fail with a code. (A
    // read-only directory does not stop the agent's writes to the files it holds open.)
    const deadline = Date.now() + (o.fault === 'disk-full' ? 15_000 : 0);
    while (cluster.failedWrites === failedBefore && Date.now() < deadline) await sleep(100);
    if (o.fault === 'read-only' || node.role === 'hub') {
      // The agent keeps its open files: the CLI beside it is what meets the fault.
      await runCli(['put', COLLECTION, 'cli-while-faulty', '{"value":0}', '--data', node.data]).then(
        () => violations.push('a write through the CLI succeeded on the faulty directory'),
        (err: unknown) => fileFailures.push(errorCode(err)),
      );
    }
    await putFile('during.bin', 2 * 1024 * 1024);
    violations.push(...(await stillServing(cluster, node, o.fault)).map((v) => `during the fault: ${v}`));
    await sleep(o.faultMs);
    violations.push(...(await stillServing(cluster, node, o.fault)).map((v) => `late in the fault: ${v}`));

    // The fault clears; nothing is restarted.
    if (o.fault === 'disk-full') rmSync(join(node.data, 'filler'));
    else {
      // Lazily: files opened for reading through the read-only mount may still be open.
      execFileSync('umount', ['-l', node.data]);
      mounts.pop();
    }
    const clearedAt = Date.now();
    cluster.phase = 'after';
    await putFile('after.bin', 512 * 1024);
    await sleep(1_000);
    await cluster.stopWriters();
    convergeMs = await cluster.converge(o.convergeTimeoutMs ?? 60_000, `after the ${o.fault} cleared`);
    const clearedToConvergedMs = Date.now() - clearedAt;
    // Every file version acknowledged reaches the other side intact.
    for (const f of files) {
      const out = join(o.dir, `${other.name}-${f.name}`);
      const fileDeadline = Date.now() + 30_000;
      for (;;) {
        const got = await runCli([
          'files',
          'get',
          f.name,
          '--rev',
          f.rev,
          '-o',
          out,
          '--data',
          other.data,
        ]).catch(() => undefined);
        if (got && sha(readFileSync(out)) === f.sha) break;
        if (Date.now() > fileDeadline) {
          violations.push(`${f.name} never reached ${other.name} intact`);
          break;
        }
        await sleep(250);
      }
    }
    const stuck = await cluster.unconnected(15_000);
    violations.push(...stuck.map((n) => `${n} not connected after the fault cleared`));
    await cluster.stop();
    const check = cluster.verify();
    const codes = [...cluster.failureCodes.entries()]
      .filter(([k]) => k.startsWith(`${node.name}:`))
      .map(([k, n]) => [k.slice(node.name.length + 1), n] as const);
    const allowed = EXPECTED_CODES[o.fault];
    for (const [code, n] of codes)
      if (!allowed.includes(code)) violations.push(`${n} writes on ${node.name} failed with ${code}`);
    for (const code of fileFailures)
      if (!allowed.includes(code)) violations.push(`a command on ${node.name} failed with ${code}`);
    if (o.fault === 'disk-full' && codes.length === 0)
      violations.push(`no write on ${node.name} failed: the disk never filled`);
    if (files.length < 2) violations.push(`only ${files.length} of the file versions were recorded`);
    return {
      name: `${o.fault}-${o.target}`,
      seed: o.seed,
      faults: {
        [o.fault]: node.name,
        faultMs: o.faultMs,
        ...(filled > 0 && { fillerKiB: Math.round(filled / 1024) }),
      },
      ...outcome(cluster, check),
      convergeMs,
      durationMs: Date.now() - began,
      measured: {
        ackedDuringFault: cluster.acked.filter((w) => w.phase === 'fault').length,
        failureCodes: Object.fromEntries(cluster.failureCodes),
        commandFailures: fileFailures,
        fileVersions: files.length,
        clearedToConvergedMs,
      },
      violations,
    };
  } finally {
    await cluster.stopWriters();
    cluster.killAll();
    for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
  }
}
