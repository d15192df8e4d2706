/**
 * The short form of the abuse experiment `npm run chaos` runs in full: a hub and
 * three children on loopback while, for a few seconds, one address floods the hub
 * with TLS connection attempts, others hold handshakes that never finish, a paired
 * child writes as fast as it can and a paired identity sends garbage frames. The
 * latency figures are printed, never asserted here (no wall-clock assertions in
 * `npm test`); what is asserted: the hub stays up, the well-behaved children stay
 * connected and converge with nothing lost, and the limits that acted are named in
 * the hub's log and counted in its metrics. Replay with TROSYN_CHAOS_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers.js';
import { abuse, type PhaseFigures, type ThrottleLog } from './abuse.js';
import { ABUSE_FORMS } from './forms.js';
import { problems, summary } from './result.js';
import { seedOf } from './seeded.js';

const dir = tempDir('trosyn-chaos-');
after(() => dir.remove());

describe('chaos, short form: abuse', () => {
  it('a connection flood, stalled handshakes, a fast writer and garbage frames leave the other children syncing, the limits logged', async () => {
    const seed = seedOf(process.env.TROSYN_CHAOS_SEED);
    const replay = `seed ${seed} (replay: TROSYN_CHAOS_SEED=${seed})`;
    const r = await abuse({ ...ABUSE_FORMS.short, seed, dir: join(dir.path, 'abuse') }).catch(
      (err: Error) => {
        throw new Error(`${err.message}\n${replay}`);
      },
    );
    console.log(summary(r));
    // Hub up, children connected and converged, nothing lost, every limit that acted in the log.
    assert.deepEqual(problems(r), [], replay);
    const measured = r.measured as {
      phases: PhaseFigures[];
      hubLog: { codes: Record<string, number>; refusals: Record<string, number>; throttled: ThrottleLog };
      metricsMoved: Record<string, number>;
    };
    const phase = measured.phases[0] as PhaseFigures;
    assert.equal(phase.lateProbes, 0, 'every probe reached the other children');
    assert.ok(phase.latency.samples > 0, 'the latency was measured during the abuse');
    const flood = phase.attacks.flood;
    assert.equal(flood?.attempts, ABUSE_FORMS.short.attempts, 'every planned attempt was made');
    // The attempt limit (a burst of 30) turned most of the flood away before any TLS work.
    assert.ok((flood?.refused ?? 0) > flood!.attempts / 2, `the flood was refused: ${JSON.stringify(flood)}`);
    // The log names the limit and accounts for every refusal the metrics counted.
    assert.ok(measured.hubLog.codes.RATE_LIMITED, 'RATE_LIMITED is in the log');
    assert.equal(
      measured.hubLog.refusals.RATE_LIMITED,
      measured.metricsMoved['trosyn_rate_limited_total{limit="connection"}'],
      'the log counts as many rate-limited connections as the metrics',
    );
    // Garbage after a valid handshake ends that connection with a protocol code, logged and counted.
    const garbage = phase.attacks.garbage;
    assert.ok((garbage?.closedWith.FRAME_TOO_LARGE ?? 0) > 0, JSON.stringify(garbage));
    assert.ok(measured.hubLog.codes.FRAME_TOO_LARGE, 'FRAME_TOO_LARGE is in the log');
    assert.ok(measured.metricsMoved['trosyn_protocol_errors_total{reason="FRAME_TOO_LARGE"}']);
    // Breaking the protocol spends the connection attempt: the garbage loop is held to the
    // hub's attempt limit (a burst of 30, then 120 a minute) like any stranger.
    const allowed = 30 + Math.ceil((phase.durationMs / 60_000) * 120) + 5;
    assert.ok(
      (garbage?.handshakes ?? 0) <= allowed,
      `the garbage loop completed at most ${allowed} handshakes: ${JSON.stringify(garbage)}`,
    );
    // The fast writer's writes all reached everyone (checked in problems) and there were many;
    // every one it was told was written is in the hub's store, whatever the write limit held.
    assert.ok((phase.writer?.acked ?? 0) > 0, 'the fast writer wrote');
    assert.equal(phase.writer?.stored, phase.writer?.acked, "the fast writer's writes are all on the hub");
    // What the per-device write limit held (if the writer got past its burst in this short
    // phase) the log and the metrics count alike (also a violation in problems).
    assert.equal(
      measured.hubLog.throttled.revisions,
      measured.metricsMoved.trosyn_device_writes_throttled_total ?? 0,
      'the log counts as many held revisions as the metrics',
    );
  });
});
