/**
 * Network faults between namespaces: a hub, a relay host and children, each in a
 * network namespace of its own (test/netns/harness.ts). Children reach the hub
 * through a delaying TCP relay on the relay host (delay-proxy.mjs), so every fault
 * made there sits between each child and the hub:
 *
 *   loss       nftables drops 10 % of the packets arriving at the relay host, both ways
 *   delay      the relay holds each segment 100 ms +- 100 ms (in order, see the relay)
 *   partition  the relay host drops everything, silently (no RST), for a while
 *   flap       the relay host's link goes down and up every few seconds
 *
 * Writes go on on every node throughout (with the CLI, beside each agent). After
 * each fault the cluster must converge; for the partition, each child must notice
 * the silent hub within the heartbeat bound and reconnect once it heals.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Agent } from '../e2e/helpers.js';
import { type LabProcess, NetnsLab } from '../netns/harness.js';
import { type AckedWrite, Cluster } from './cluster.js';
import type { ExperimentResult } from './result.js';
import { SeededRandom } from './seeded.js';

const HUB_PORT = 17700;
const RELAY_PORT = 17701;
const NFT_TABLE = 'trosyn_chaos';
/** A child not connected this long after a fault healed has a stuck session (ms). */
const STUCK_MS = 15_000;
const RELAY = join(dirname(fileURLToPath(import.meta.url)), 'delay-proxy.mjs');

/** Options of {@link networkFaults}. */
export interface NetworkOptions {
  seed: number;
  /** A fresh directory for the nodes' data. */
  dir: string;
  /** Child agents. Default 3. */
  children?: number;
  /** The hub's heartbeat (`hub --heartbeat`), seconds. */
  heartbeatS: number;
  /** How long each fault lasts (ms). */
  lossMs: number;
  delayMs: number;
  partitionMs: number;
  /** Link flaps: down and up times drawn from these ranges (ms). */
  flap: { cycles: number; downMs: [number, number]; upMs: [number, number] };
  /** Time allowed to converge after each fault (ms). Default 90 s. */
  convergeTimeoutMs?: number;
  log?: (line: string) => void;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The first line after index `from` that `match` accepts, with the time it was seen. */
function nextLine(
  agent: Agent,
  from: number,
  match: (l: Record<string, unknown>) => boolean,
  timeoutMs: number,
  what: string,
): Promise<Record<string, unknown>> {
  return agent
    .waitFor((l) => agent.lines.indexOf(l) >= from && match(l), timeoutMs, what)
    .catch((err: Error) => {
      const since = agent.lines.slice(from).map((l) => JSON.stringify(l));
      throw new Error(`${err.message}\nits lines since: ${since.join(' ').slice(-2000)}`);
    });
}

/** Runs the four faults one after the other; resolves with one result per fault. */
export async function networkFaults(o: NetworkOptions): Promise<ExperimentResult[]> {
  const rng = new SeededRandom(o.seed);
  const flapRng = rng.fork('flap');
  const childCount = o.children ?? 3;
  const childLabels = Array.from({ length: childCount }, (_, i) => `c${i + 1}`);
  const convergeTimeoutMs = o.convergeTimeoutMs ?? 90_000;
  const lab = await NetnsLab.create({ hosts: ['hub', 'relay', ...childLabels], ipv6: false });
  let relay: LabProcess | undefined;
  let cluster: Cluster | undefined;
  try {
    const hubHost = lab.host('hub');
    const relayHost = lab.host('relay');
    const nft = async (rules: string): Promise<void> => {
      await relayHost.exec('nft', ['delete', 'table', 'inet', NFT_TABLE]);
      if (rules === '') return;
      const r = await relayHost.exec('nft', ['-f', '-'], { input: `table inet ${NFT_TABLE} {\n${rules}}\n` });
      if (r.code !== 0) throw new Error(`nft failed: ${r.stderr}`);
    };
    const link = async (state: 'up' | 'down'): Promise<void> => {
      const r = await relayHost.exec('ip', ['link', 'set', 'eth0', state]);
      if (r.code !== 0) throw new Error(`ip link set eth0 ${state} failed: ${r.stderr}`);
    };

    relay = relayHost.spawn(process.execPath, [
      RELAY,
      String(RELAY_PORT),
      hubHost.ipv4,
      String(HUB_PORT),
      String(rng.fork('relay').seed),
    ]);
    await relay.waitForLine(/^listening$/);
    const c = new Cluster(o.dir, childCount, {
      hubArgs: [
        '--host',
        hubHost.ipv4,
        '--port',
        String(HUB_PORT),
        '--no-discovery',
        '--no-admin-api',
        '--heartbeat',
        String(o.heartbeatS),
      ],
      childArgs: ['--hub', `${relayHost.ipv4}:${RELAY_PORT}`, '--no-discovery', '--retry-max', '1000'],
      // Paired through the relay too: a child also tries the address it paired with.
      pairAddress: `${relayHost.ipv4}:${RELAY_PORT}`,
      childWrites: 'cli',
      namespaces: Object.fromEntries([
        ['hub', hubHost.ns],
        ...childLabels.map((l) => [l, lab.host(l).ns]),
      ]) as Record<string, string>,
    });
    cluster = c;
    await c.start();
    await Promise.all(
      c.children.map((n) => n.agent?.waitFor((l) => l.event === 'connected', 30_000, `${n.name} connects`)),
    );

    const results: ExperimentResult[] = [];
    const phases: {
      name: string;
      faults: Record<string, number | string>;
      convergeMs: number;
      began: number;
      failed: number;
      measured?: Record<string, unknown>;
      violations: string[];
    }[] = [];

    /** One fault: writers on while it lasts; `underFault` converges before the fault is removed. */
    const phase = async (
      name: string,
      faults: Record<string, number | string>,
      during: () => Promise<Record<string, unknown> | undefined>,
      heal: () => Promise<void>,
      underFault: boolean,
    ): Promise<void> => {
      const began = Date.now();
      const failedBefore = c.failedWrites;
      const marks = c.children.map((n) => n.agent?.lines.length ?? 0);
      c.phase = name;
      o.log?.(`${name}: ${JSON.stringify(faults)}`);
      c.startWriters(rng.fork(name), [50, 200]);
      const measured = await during();
      if (!underFault) await heal();
      await c.stopWriters();
      const convergeMs = await c.converge(convergeTimeoutMs, `after ${name}`);
      if (underFault) await heal();
      const violations = (await c.unconnected(STUCK_MS)).map(
        (n) => `${n} not connected ${STUCK_MS / 1000} s after ${name}`,
      );
      // Sessions the fault broke (a child gave up its hub, or the hub its child), by code: what the fault did.
      const childDisconnects: Record<string, number> = {};
      for (const [i, n] of c.children.entries())
        for (const l of n.agent?.lines.slice(marks[i] ?? 0) ?? []) {
          const e = l as { event?: string; code?: string };
          if (e.event === 'disconnected')
            childDisconnects[e.code ?? 'none'] = (childDisconnects[e.code ?? 'none'] ?? 0) + 1;
        }
      // 100 ms +- 100 ms is far below three heartbeats: a session it breaks was broken by something else.
      if (name === 'net-delay' && Object.keys(childDisconnects).length > 0)
        violations.push(`sessions broke under delay alone: ${JSON.stringify(childDisconnects)}`);
      phases.push({
        name,
        faults,
        convergeMs,
        began,
        failed: c.failedWrites - failedBefore,
        violations,
        measured: { ...measured, childDisconnects },
      });
    };

    await phase(
      'net-loss',
      { loss: '10% of packets into the relay host', ms: o.lossMs },
      async () => {
        await nft(
          '  chain input {\n    type filter hook input priority -10; policy accept;\n' +
            '    iifname "eth0" counter\n    iifname "eth0" numgen random mod 100 < 10 counter drop\n  }\n',
        );
        await sleep(o.lossMs);
        // The rule's counters: what the fault did, not what it was asked to do.
        const listed = await relayHost.exec('nft', ['list', 'table', 'inet', NFT_TABLE]);
        const counts = [...listed.stdout.matchAll(/counter packets (\d+)/g)].map((m) => Number(m[1]));
        return { packetsIn: counts[0] ?? 0, packetsDropped: counts[1] ?? 0 };
      },
      () => nft(''),
      true,
    );

    await phase(
      'net-delay',
      { delay: '100 ms +- 100 ms per segment', ms: o.delayMs },
      async () => {
        const at = relay?.lines.length ?? 0;
        relay?.send('delay 100 100');
        await relay?.waitForLine(/^delay 100 100$/, { from: at });
        await sleep(o.delayMs);
        return undefined;
      },
      async () => {
        const at = relay?.lines.length ?? 0;
        relay?.send('delay 0 0');
        await relay?.waitForLine(/^delay 0 0$/, { from: at });
      },
      true,
    );

    const heartbeatMs = o.heartbeatS * 1000;
    await phase(
      'net-partition',
      { partition: 'relay host drops everything', ms: o.partitionMs, heartbeatMs },
      async () => {
        const marks = c.children.map((n) => n.agent?.lines.length ?? 0);
        const start = Date.now();
        await nft(
          '  chain input {\n    type filter hook input priority -10; policy drop;\n  }\n' +
            '  chain output {\n    type filter hook output priority -10; policy drop;\n  }\n',
        );
        const noticed = await Promise.all(
          c.children.map(async (n, i) => {
            const agent = n.agent;
            if (!agent) return { child: n.name, ms: null, code: null };
            try {
              const line = await nextLine(
                agent,
                marks[i] ?? 0,
                (l) => l.event === 'disconnected',
                o.partitionMs,
                `${n.name} notices`,
              );
              return {
                child: n.name,
                ms: Date.now() - start,
                code: (line.code as string | undefined) ?? null,
              };
            } catch {
              return { child: n.name, ms: null, code: null };
            }
          }),
        );
        await sleep(Math.max(0, o.partitionMs - (Date.now() - start)));
        const marks2 = c.children.map((n) => n.agent?.lines.length ?? 0);
        const healed = Date.now();
        await nft('');
        o.log?.(`partition noticed after ${JSON.stringify(noticed)} ms; healed`);
        const reconnected = await Promise.all(
          c.children.map(async (n, i) => {
            const agent = n.agent;
            // A child that never noticed kept its session: nothing to reconnect (a violation, counted below).
            if (!agent || noticed[i]?.ms === null) return null;
            await nextLine(
              agent,
              marks2[i] ?? 0,
              (l) => l.event === 'connected',
              60_000,
              `${n.name} reconnects`,
            );
            return Date.now() - healed;
          }),
        );
        return {
          noticedMs: noticed.map((x) => x.ms),
          noticedHeartbeats: noticed.map((x) =>
            x.ms === null ? null : Number((x.ms / heartbeatMs).toFixed(2)),
          ),
          disconnectCodes: noticed.map((x) => x.code),
          reconnectedMsAfterHeal: reconnected,
        };
      },
      async () => undefined,
      false,
    );

    let flaps = 0;
    await phase(
      'net-flap',
      { flaps: o.flap.cycles, downMs: o.flap.downMs.join('-'), upMs: o.flap.upMs.join('-') },
      async () => {
        for (let i = 0; i < o.flap.cycles; i++) {
          await link('down');
          await sleep(flapRng.between(...o.flap.downMs));
          await link('up');
          flaps++;
          await sleep(flapRng.between(...o.flap.upMs));
        }
        return undefined;
      },
      async () => undefined,
      false,
    );

    await c.stop();
    const check = c.verify();
    const integrity = check.integrity.length === 0 ? ('ok' as const) : check.integrity;
    for (const p of phases) {
      const acked = c.acked.filter((w) => w.phase === p.name);
      const lost = check.lost.filter((w: AckedWrite) => w.phase === p.name);
      const violations = [...p.violations];
      const noticed = p.measured?.noticedMs as (number | null)[] | undefined;
      if (noticed) {
        // Noticed three heartbeats of silence after the last frame, so at most three after the cut;
        // the margin is for a loaded machine (scheduling, the line reaching us).
        const bound = 3 * heartbeatMs + 500;
        for (const [i, ms] of noticed.entries())
          if (ms === null || ms > bound)
            violations.push(
              `c${i + 1} noticed the partition ${ms === null ? 'never' : `after ${ms} ms`} (bound ${bound} ms)`,
            );
      }
      if (p.name === 'net-flap' && flaps !== o.flap.cycles)
        violations.push(`${flaps} flaps of ${o.flap.cycles}`);
      results.push({
        name: p.name,
        seed: o.seed,
        faults: p.faults,
        ackedWrites: acked.length,
        failedWrites: p.failed,
        lost: lost.length,
        divergent: check.divergent.filter((id) => c.phaseOf(id) === p.name).length,
        duplicates: check.duplicates,
        integrity,
        convergeMs: p.convergeMs,
        durationMs: 0,
        ...(p.measured && { measured: p.measured }),
        violations,
      });
    }
    // Each phase runs until the next begins; the last until the stores were checked.
    const ends = [...phases.slice(1).map((p) => p.began), Date.now()];
    for (const [i, r] of results.entries()) r.durationMs = (ends[i] ?? 0) - (phases[i]?.began ?? 0);
    return results;
  } finally {
    await cluster?.stopWriters();
    cluster?.killAll();
    await lab.destroy();
  }
}
