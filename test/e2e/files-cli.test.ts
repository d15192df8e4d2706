/**
 * The files commands where content is not here yet, with real processes: a child
 * whose collection fetches on demand gets a file through its running agent, and
 * says FILE_CONTENT_UNAVAILABLE without one; content still to arrive is
 * FILE_CONTENT_MISSING, or waited for with --wait; progress shows on stderr.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, tempDir } from '../helpers.js';
import {
  CLI,
  freePort,
  hubArgs,
  runCli,
  runText,
  startAgent,
  startChildAgent,
  type Agent,
} from './helpers.js';
import { noise, sha } from '../fixtures/bytes.js';

const dir = tempDir('trosyn-e2e-files-cli-');
const MiB = 1024 * 1024;

function writeConfig(data: string, collections: Record<string, { files: 'eager' | 'on-demand' }>): void {
  writeFileSync(join(data, 'config.json'), `${JSON.stringify({ collections }, null, 2)}\n`);
}

describe('files get when the content is not here yet', () => {
  let port = 0;
  let hub: Agent | undefined;
  let child: Agent | undefined;
  const hubData = join(dir.path, 'hub');
  const childData = join(dir.path, 'child');
  const bytes = noise(12 * MiB + 7, 31);
  const other = noise(12 * MiB + 7, 32);
  const source = join(dir.path, 'survey.pdf');
  const otherSource = join(dir.path, 'q3-source.pdf');

  async function startChild(): Promise<void> {
    ({ agent: child } = await startChildAgent(childData, port, 'desk'));
  }

  /** Waits until the child holds the current version's record of `name`. */
  async function recordOnChild(collection: string, name: string, rev: string): Promise<void> {
    await eventually(
      async () => {
        const list = (await runCli([
          'files',
          'ls',
          '--collection',
          collection,
          '--data',
          childData,
        ])) as unknown as Array<{ name: string; rev: string }> | undefined;
        return (list ?? []).some((f) => f.name === name && f.rev === rev);
      },
      30_000,
      `${collection}/${name} on the child`,
    );
  }

  before(async () => {
    port = await freePort();
    mkdirSync(hubData, { recursive: true });
    mkdirSync(childData, { recursive: true });
    writeConfig(hubData, { drawings: { files: 'eager' }, reports: { files: 'eager' } });
    writeConfig(childData, { drawings: { files: 'on-demand' }, reports: { files: 'on-demand' } });
    writeFileSync(source, bytes);
    hub = startAgent([...hubArgs(hubData, port), '--no-admin-api']);
    await hub.waitFor((l) => l.event === 'started', 20_000, 'hub starts');
    const code = (await runCli(['pairing-code', '--data', hubData])).code as string;
    await runCli(['pair', code, '--hub', `127.0.0.1:${port}`, '--data', childData, '--name', 'desk']);
  });

  after(async () => {
    await child?.kill('SIGKILL');
    await hub?.kill('SIGKILL');
    dir.remove();
  });

  it('on demand: fetched through the running agent with progress; without the agent, FILE_CONTENT_UNAVAILABLE', async () => {
    await startChild();
    const v = (await runCli([
      'files',
      'put',
      source,
      '--collection',
      'drawings',
      '--name',
      'site/plan.pdf',
      '--data',
      hubData,
    ])) as {
      rev: string;
    };
    await recordOnChild('drawings', 'site/plan.pdf', v.rev);
    await child?.kill('SIGTERM');

    const out = join(dir.path, 'plan-offline.pdf');
    const refused = await runText([
      'files',
      'get',
      'site/plan.pdf',
      '--collection',
      'drawings',
      '--out',
      out,
      '--data',
      childData,
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /FILE_CONTENT_UNAVAILABLE: .*no agent runs/);
    assert.equal(existsSync(out), false, 'nothing written');
    assert.equal(existsSync(`${out}.trosyn-partial`), false);

    await startChild();
    const cwd = join(dir.path, 'cwd');
    mkdirSync(cwd);
    const got = await runText(
      ['files', 'get', 'site/plan.pdf', '--collection', 'drawings', '--progress', '--data', childData],
      60_000,
      cwd,
    );
    assert.equal(got.code, 0, got.stderr);
    // Written under the last part of its name, in the current directory.
    assert.equal(sha(readFileSync(join(cwd, 'plan.pdf'))), sha(bytes));
    const lines = got.stderr.trim().split('\n');
    assert.match(lines.at(-1) ?? '', /plan\.pdf +\[#+\] +100% +13 MB \/ 13 MB/, got.stderr);
    assert.match(got.stdout, /plan\.pdf written \(13 MB\)/);
  });

  it('eager: FILE_CONTENT_MISSING while the content is not here, and --wait waits for the agent to bring it', async () => {
    // The record arrives while the child fetches reports on demand; then the
    // collection becomes eager, with the agent stopped: the content is missing.
    writeFileSync(otherSource, other);
    // Put with progress asked for: the JSON result on stdout, the bar on stderr.
    const put = await runText(
      [
        'files',
        'put',
        otherSource,
        '--collection',
        'reports',
        '--name',
        'q3.pdf',
        '--json',
        '--progress',
        '--data',
        hubData,
      ],
      60_000,
    );
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stderr.trim().split('\n').at(-1) ?? '', /^q3\.pdf +\[#+\] +100% +13 MB \/ 13 MB/);
    const v = JSON.parse(put.stdout) as { rev: string };
    await recordOnChild('reports', 'q3.pdf', v.rev);
    await child?.kill('SIGTERM');
    writeConfig(childData, { drawings: { files: 'on-demand' }, reports: { files: 'eager' } });

    const out = join(dir.path, 'q3.pdf');
    const missing = await runText([
      'files',
      'get',
      'q3.pdf',
      '--collection',
      'reports',
      '-o',
      out,
      '--data',
      childData,
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /FILE_CONTENT_MISSING: .*0 B of 13 MB.*add --wait/);
    const json = await runText([
      'files',
      'get',
      'q3.pdf',
      '--collection',
      'reports',
      '--json',
      '--data',
      childData,
    ]);
    assert.equal(json.code, 1);
    assert.equal(json.stderr.includes('%'), false, 'no progress with --json');

    const noAgent = await runText([
      'files',
      'get',
      'q3.pdf',
      '--collection',
      'reports',
      '--wait',
      '--data',
      childData,
    ]);
    assert.equal(noAgent.code, 1);
    assert.match(
      noAgent.stderr,
      /FILE_CONTENT_UNAVAILABLE: .*no agent runs/,
      'waiting without an agent would never end',
    );

    // The agent runs but cannot reach the hub: the wait shows nothing arriving yet.
    await hub?.kill('SIGTERM');
    await startChild();
    // `files get --wait` of the file, in the background: its exit status and what it said.
    const waitFor = () => {
      const proc = spawn(
        process.execPath,
        [
          CLI,
          'files',
          'get',
          'q3.pdf',
          '--collection',
          'reports',
          '--wait',
          '--progress',
          '-o',
          out,
          '--data',
          childData,
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const said = { stderr: '' };
      proc.stderr.setEncoding('utf8').on('data', (d: string) => (said.stderr += d));
      return { proc, said, exited: new Promise<number | null>((r) => proc.once('exit', r)) };
    };
    const { proc: wait, said, exited } = waitFor();
    await eventually(
      async () => /q3\.pdf \(arriving\) +\[\.+\] +0% +0 B \/ 13 MB/.test(said.stderr),
      20_000,
      'the wait shows 0%',
    );
    assert.equal(wait.exitCode, null, 'still waiting');

    // A wait with a time limit ends with what is here, and the agent's word when it has one.
    const limited = await runText([
      'files',
      'get',
      'q3.pdf',
      '--collection',
      'reports',
      '--wait',
      '--timeout',
      '1.5',
      '-o',
      out,
      '--data',
      childData,
    ]);
    assert.equal(limited.code, 1, limited.stderr);
    assert.match(limited.stderr, /FILE_CONTENT_MISSING: .*still not all here after 1\.5 s \(0 B of 13 MB\)/);
    const stray = await runText(['files', 'get', 'q3.pdf', '--timeout', '5', '--data', childData]);
    assert.equal(stray.code, 2, 'a time limit without --wait is a usage error');
    assert.match(stray.stderr, /--timeout goes with --wait/);

    // The agent stops under the wait: it ends instead of waiting for nobody.
    await child?.kill('SIGTERM');
    assert.equal(await exited, 1, said.stderr);
    assert.match(
      said.stderr,
      /FILE_CONTENT_UNAVAILABLE: the agent for this data directory stopped before all of "q3\.pdf" arrived/,
    );

    await startChild();
    const again = waitFor();
    hub = startAgent([...hubArgs(hubData, port), '--no-admin-api']);
    await hub.waitFor((l) => l.event === 'started', 20_000, 'hub starts again');
    assert.equal(await again.exited, 0, again.said.stderr);
    assert.equal(sha(readFileSync(out)), sha(other));
    assert.match(again.said.stderr, /q3\.pdf \(arriving\) +\[#+\] +100% +13 MB \/ 13 MB/);
  });
});
