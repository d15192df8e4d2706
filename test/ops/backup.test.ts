/**
 * Backup and restore with real processes: a hub backed up while it runs and writes
 * go on, restored into a new directory and into its own after a loss, and every
 * refusal (a running node, a directory in use, a partial, corrupt or foreign
 * backup, another device) with its code.
 */
import assert from 'node:assert/strict';
import {
  readFileSync,
  writeFileSync,
  mkdirSync,
  rmSync,
  openSync,
  readSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { JsonObject } from '../../src/store/types.js';
import { eventually, seededBytes, tempDir } from '../helpers.js';
import {
  type Agent,
  freePort,
  hubArgs,
  openNode,
  runCli,
  runText,
  startAgent,
  startChildAgent,
} from '../e2e/helpers.js';

const dir = tempDir('trosyn-backup-');
after(() => dir.remove());

async function put(data: string, id: string, body: JsonObject = { id }): Promise<string> {
  const replica = await openNode(data);
  try {
    return (await replica.put('notes', id, body)).rev;
  } finally {
    await replica.stop();
  }
}

async function revOf(data: string, id: string): Promise<string | undefined> {
  const replica = await openNode(data);
  try {
    return (await replica.get('notes', id))?.rev;
  } finally {
    await replica.stop();
  }
}

describe('backup and restore', () => {
  const hubData = join(dir.path, 'hub');
  const childData = join(dir.path, 'child');
  let port = 0;
  let hub: Agent | undefined;
  let child: Agent | undefined;
  after(async () => {
    await child?.kill();
    await hub?.kill();
  });

  async function startHub(): Promise<void> {
    hub = startAgent([...hubArgs(hubData, port), '--no-admin-api']);
    await hub.waitFor((l) => l.event === 'started', 20_000, 'hub starts');
  }

  it('backs up a running hub while writes go on: every write made before is in it, and it restores into a new directory', async () => {
    port = await freePort();
    await startHub();
    const code = String((await runCli(['pairing-code', '--data', hubData])).code);
    await runCli(['pair', code, '--hub', `127.0.0.1:${port}`, '--data', childData, '--name', 'desk']);
    child = (await startChildAgent(childData, port, 'desk')).agent;
    await child.waitFor((l) => l.event === 'connected', 20_000, 'child connects');

    const before: Record<string, string> = {};
    for (let i = 0; i < 20; i++) before[`before-${i}`] = await put(hubData, `before-${i}`);
    const content = seededBytes('backup-file', 3 * 1024 * 1024 + 17);
    const file = join(dir.path, 'plan.bin');
    writeFileSync(file, content);
    await runCli(['files', 'put', file, '--data', hubData]);

    // Writes go on, in another process, while the backup runs.
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 200; i++) await put(hubData, `during-${i}`);
    })();
    const out = join(dir.path, 'backup-1');
    const made = await runText(['backup', '--out', out, '--data', hubData, '--json']);
    writing = false;
    await writer;
    assert.equal(made.code, 0, made.stderr);
    const manifest = JSON.parse(made.stdout) as {
      role: string;
      format: string;
      files: { path: string }[];
      schemas: Record<string, number>;
      changeLog: { id: string; latestSeq: number };
    };
    assert.equal(manifest.role, 'hub');
    assert.equal(manifest.format, 'trosyn-sync-backup/1');
    const paths = manifest.files.map((f) => f.path);
    for (const p of ['trosyn.db', 'hub.db', 'chunks/index.db', 'identity/key.pem', 'identity/cert.pem'])
      assert.ok(paths.includes(p), `the backup holds ${p}`);
    assert.ok(
      paths.some((p) => p.startsWith('chunks/packs/')),
      'and the file content',
    );
    assert.ok(manifest.changeLog.latestSeq >= 21);

    const restored = join(dir.path, 'restored');
    const back = await runText(['restore', out, '--data', restored]);
    assert.equal(back.code, 0, back.stderr);
    for (const [id, rev] of Object.entries(before)) assert.equal(await revOf(restored, id), rev);
    const got = join(dir.path, 'plan-back.bin');
    await runCli(['files', 'get', 'plan.bin', '--out', got, '--data', restored]);
    assert.ok(readFileSync(got).equals(content), 'the file content came back byte for byte');
    // The restored node runs: an agent starts on it.
    const again = startAgent([...hubArgs(restored, await freePort()), '--no-admin-api']);
    try {
      await again.waitFor((l) => l.event === 'started', 20_000, 'the restored hub starts');
    } finally {
      await again.kill();
    }
  });

  it('refuses, each with its code: a used target, a running node, a partial, corrupt or foreign backup, another device', async () => {
    const out = join(dir.path, 'backup-1');
    const fails = async (args: string[], code: string) => {
      const r = await runText(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`${code}: `), args.join(' '));
    };
    await fails(['backup', '--out', out, '--data', hubData], 'BACKUP_TARGET_NOT_EMPTY');
    await fails(['restore', out, '--data', hubData, '--force'], 'DATA_DIR_LOCKED');
    await fails(['restore', out, '--data', childData], 'DATA_DIR_LOCKED');
    const used = join(dir.path, 'used');
    mkdirSync(used);
    writeFileSync(join(used, 'notes.txt'), 'mine');
    await fails(['restore', out, '--data', used], 'RESTORE_TARGET_NOT_EMPTY');
    assert.equal(readFileSync(join(used, 'notes.txt'), 'utf8'), 'mine', 'nothing was touched');

    const copy = (name: string) => {
      const to = join(dir.path, name);
      rmSync(to, { recursive: true, force: true });
      mkdirSync(to);
      for (const f of JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')).files as {
        path: string;
      }[]) {
        mkdirSync(join(to, f.path, '..'), { recursive: true });
        writeFileSync(join(to, f.path), readFileSync(join(out, f.path)));
      }
      writeFileSync(join(to, 'manifest.json'), readFileSync(join(out, 'manifest.json')));
      return to;
    };
    const corrupt = copy('corrupt');
    const fd = openSync(join(corrupt, 'trosyn.db'), 'r+');
    // Flipped, not overwritten: a fixed byte would be no damage where it was there already.
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, 5000);
    writeSync(fd, Buffer.of((byte[0] as number) ^ 0xff), 0, 1, 5000);
    closeSync(fd);
    await fails(['restore', corrupt, '--data', join(dir.path, 'r-corrupt')], 'BACKUP_CORRUPT');
    await fails(['verify-backup', corrupt], 'BACKUP_CORRUPT');
    const partial = copy('partial');
    rmSync(join(partial, 'manifest.json'));
    await fails(['restore', partial, '--data', join(dir.path, 'r-partial')], 'BACKUP_INCOMPLETE');
    await fails(['verify-backup', partial], 'BACKUP_INCOMPLETE');
    // The backup itself checks out, file by file.
    const verified = await runCli(['verify-backup', out]);
    assert.equal(verified.ok, true);
    assert.equal(verified.role, 'hub');
    assert.ok((verified.files as unknown[]).length >= 4);
    const lacking = copy('lacking');
    rmSync(join(lacking, 'hub.db'));
    await fails(['restore', lacking, '--data', join(dir.path, 'r-lacking')], 'BACKUP_INCOMPLETE');
    const foreign = join(dir.path, 'foreign');
    mkdirSync(foreign);
    writeFileSync(join(foreign, 'photo.jpg'), 'not a backup');
    await fails(['restore', foreign, '--data', join(dir.path, 'r-foreign')], 'BACKUP_FOREIGN');
    await fails(
      ['restore', join(dir.path, 'nowhere'), '--data', join(dir.path, 'r-nowhere')],
      'BACKUP_NOT_FOUND',
    );
    // The child is another device: the hub's backup does not replace it, even with --force.
    await child?.kill();
    child = undefined;
    await fails(['restore', out, '--data', childData, '--force'], 'RESTORE_OTHER_DEVICE');
  });

  it('a hub restored from an older backup gets back from its child what it lost, and loses no write after', async () => {
    child = (await startChildAgent(childData, port, 'desk')).agent;
    await child.waitFor((l) => l.event === 'connected', 20_000, 'child connects');
    const early = await put(childData, 'from-child-early');
    await eventually(async () => (await revOf(hubData, 'from-child-early')) === early, 15_000, 'hub has it');
    const out = join(dir.path, 'backup-2');
    const made = await runText(['backup', '--out', out, '--data', hubData]);
    assert.equal(made.code, 0, made.stderr);
    const late = await put(childData, 'from-child-late');
    const hubLate = await put(hubData, 'from-hub-late');
    await eventually(async () => (await revOf(hubData, 'from-child-late')) === late, 15_000, 'hub has it');
    await eventually(
      async () => (await revOf(childData, 'from-hub-late')) === hubLate,
      15_000,
      'child has it',
    );

    // The hub's disk dies: its directory goes back to the backup.
    await hub?.kill();
    const back = await runText(['restore', out, '--data', hubData, '--force']);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(await revOf(hubData, 'from-child-late'), undefined, 'the restored store is the older copy');
    await startHub();
    await eventually(
      async () =>
        (await revOf(hubData, 'from-child-late')) === late &&
        (await revOf(hubData, 'from-hub-late')) === hubLate,
      30_000,
      'the child gave the hub back what it lost, its own write and the hub’s',
    );
    const after = await put(childData, 'after-restore');
    await eventually(
      async () => (await revOf(hubData, 'after-restore')) === after,
      15_000,
      'a new write syncs',
    );
    assert.equal(await revOf(childData, 'from-child-early'), early);
  });

  it('a child restored from an older backup gets everything back, and its new writes reach the hub', async () => {
    const out = join(dir.path, 'backup-child');
    const early = await put(childData, 'child-before-backup');
    await eventually(
      async () => (await revOf(hubData, 'child-before-backup')) === early,
      15_000,
      'hub has it',
    );
    const made = await runText(['backup', '--out', out, '--data', childData]);
    assert.equal(made.code, 0, made.stderr);
    const late = await put(childData, 'child-after-backup');
    const fromHub = await put(hubData, 'hub-after-child-backup');
    await eventually(async () => (await revOf(hubData, 'child-after-backup')) === late, 15_000, 'hub has it');
    await eventually(
      async () => (await revOf(childData, 'hub-after-child-backup')) === fromHub,
      15_000,
      'child has it',
    );

    await child?.kill();
    const back = await runText(['restore', out, '--data', childData, '--force']);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(await revOf(childData, 'child-after-backup'), undefined, 'the older copy');
    child = (await startChildAgent(childData, port, 'desk')).agent;
    await eventually(
      async () =>
        (await revOf(childData, 'child-after-backup')) === late &&
        (await revOf(childData, 'hub-after-child-backup')) === fromHub,
      30_000,
      'the child got back its own lost write and the hub’s',
    );
    const fresh = await put(childData, 'child-after-restore');
    await eventually(
      async () => (await revOf(hubData, 'child-after-restore')) === fresh,
      15_000,
      'its new write reaches the hub',
    );
  });
});
