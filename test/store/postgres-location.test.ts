import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadNodeConfig } from '../../src/config.js';
import { hubStorage, rememberHubStorage } from '../../src/ops/hub-store.js';
import {
  looksLikePostgres,
  parsePostgresLocation,
  PostgresLocationError,
  withPassword,
} from '../../src/store/postgres-location.js';
import { tempDir } from '../helpers.js';

describe('a PostgreSQL location', () => {
  it('splits the password out of a URL, in the user part or as a parameter', () => {
    assert.deepEqual(parsePostgresLocation('postgres://trosyn:p%40ss%3Aw@db.office.lan:5433/trosyn'), {
      url: 'postgres://trosyn@db.office.lan:5433/trosyn',
      password: 'p@ss:w',
    });
    assert.deepEqual(parsePostgresLocation('postgresql://trosyn@db/trosyn?sslmode=require&password=x%26y'), {
      url: 'postgresql://trosyn@db/trosyn?sslmode=require',
      password: 'x&y',
    });
    assert.deepEqual(parsePostgresLocation('postgres://trosyn:pw@/trosyn?host=%2Frun%2Fpostgresql'), {
      url: 'postgres://trosyn@/trosyn?host=%2Frun%2Fpostgresql',
      password: 'pw',
    });
    assert.deepEqual(parsePostgresLocation('postgres://trosyn@[::1]:5432/trosyn'), {
      url: 'postgres://trosyn@[::1]:5432/trosyn',
      password: undefined,
    });
  });

  it("reads libpq's keyword/value form, a socket directory as host", () => {
    assert.deepEqual(parsePostgresLocation('host=/run/postgresql dbname=trosyn user=trosyn port=5433'), {
      url: 'postgres://trosyn@/trosyn?host=%2Frun%2Fpostgresql&port=5433',
      password: undefined,
    });
    assert.deepEqual(
      parsePostgresLocation(
        "host=db.office.lan port=5432 dbname=trosyn user=trosyn password='it\\'s x' sslmode=require",
      ),
      { url: 'postgres://trosyn@db.office.lan:5432/trosyn?sslmode=require', password: "it's x" },
    );
    assert.ok(looksLikePostgres('host=/tmp dbname=x'));
    assert.ok(!looksLikePostgres('/var/lib/trosyn/hub'));
  });

  it('refuses what is no location without repeating it', () => {
    for (const text of [
      'sqlite:///tmp/x.db',
      'mysql://root:hunter2@db/x',
      'host=/tmp dbname=x garbage-hunter2',
    ]) {
      assert.throws(
        () => parsePostgresLocation(text),
        (err: unknown) => err instanceof PostgresLocationError && !(err as Error).message.includes('hunter2'),
      );
    }
  });

  it('adds the password back as a parameter for the connection only', () => {
    assert.equal(withPassword('postgres://u@h/db', 'a b&c'), 'postgres://u@h/db?password=a%20b%26c');
    assert.equal(
      withPassword('postgres://u@/db?host=%2Ftmp', 'x'),
      'postgres://u@/db?host=%2Ftmp&password=x',
    );
    assert.equal(withPassword('postgres://u@h/db', undefined), 'postgres://u@h/db');
  });
});

describe("a hub's storage", () => {
  it('takes the password from the location, the option, the environment, or the remembered file, in that order', () => {
    const dir = tempDir('trosyn-storage-');
    try {
      const data = join(dir.path, 'hub');
      mkdirSync(data);
      const file = (name: string, text: string) => {
        writeFileSync(join(dir.path, name), text);
        return join(dir.path, name);
      };
      const given = file('given', 'from-option\n');
      const envFile = file('env', 'from-env-file\r\nsecond line ignored\n');
      const store = 'postgres://trosyn@db/trosyn';
      const password = (s: ReturnType<typeof hubStorage>) =>
        s.kind === 'postgres' ? new URL(s.connection).searchParams.get('password') : 'sqlite';
      assert.equal(password(hubStorage(data, {}, {})), 'sqlite');
      assert.equal(password(hubStorage(data, { store: 'postgres://trosyn:inline@db/trosyn' }, {})), 'inline');
      const env = { TROSYN_STORE_PASSWORD_FILE: envFile, PGPASSWORD: 'from-pgpassword' };
      assert.equal(password(hubStorage(data, { store, storePasswordFile: given }, env)), 'from-option');
      assert.equal(password(hubStorage(data, { store }, env)), 'from-env-file');
      assert.equal(
        password(hubStorage(data, { store }, { PGPASSWORD: 'from-pgpassword' })),
        'from-pgpassword',
      );
      assert.equal(password(hubStorage(data, { store }, {})), null);

      // Remembered: the URL without its password, and the option's file.
      writeFileSync(join(data, 'config.json'), JSON.stringify({ requireApproval: true }));
      rememberHubStorage(
        data,
        hubStorage(data, { store: 'postgres://trosyn:inline@db/trosyn', storePasswordFile: given }, {}),
      );
      const text = readFileSync(join(data, 'config.json'), 'utf8');
      assert.ok(!text.includes('inline') && !text.includes('from-option'), text);
      assert.deepEqual(loadNodeConfig(data), {
        requireApproval: true,
        store: 'postgres://trosyn@db/trosyn',
        storePasswordFile: given,
      });
      const later = hubStorage(data, {}, {});
      assert.equal(later.kind === 'postgres' && later.url, 'postgres://trosyn@db/trosyn');
      assert.equal(password(later), 'from-option');

      writeFileSync(given, '');
      assert.throws(() => hubStorage(data, {}, {}), { code: 'STORE_PASSWORD_UNREADABLE' });
      assert.throws(() => hubStorage(data, {}, { TROSYN_STORE_PASSWORD_FILE: join(dir.path, 'none') }), {
        code: 'STORE_PASSWORD_UNREADABLE',
      });
    } finally {
      dir.remove();
    }
  });

  it('a config.json that holds the password is refused with INVALID_CONFIG', () => {
    const dir = tempDir('trosyn-storage-');
    try {
      writeFileSync(join(dir.path, 'config.json'), JSON.stringify({ store: 'postgres://u:hunter2@db/x' }));
      assert.throws(
        () => loadNodeConfig(dir.path),
        (err: unknown) =>
          (err as { code?: string }).code === 'INVALID_CONFIG' && /store: holds a password/.test(String(err)),
      );
    } finally {
      dir.remove();
    }
  });
});
